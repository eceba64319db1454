"""The app factory: wires settings, store, upstream client and turn runner into one QuartTrio
app. The only place that looks at DEPLOYMENT_MODE (through store.open_store)."""

from __future__ import annotations

import gc
import logging
import time
import traceback
from functools import partial

import httpx
import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import lifecycle, metrics, supervision
from .config import Settings
from .core.attachments import AttachmentPolicy
from .core.leases import lease_timing
from .errors import ApiError, from_status, store_unavailable
from .http import assets as widget_assets
from .http import (
    chat,
    compat,
    cors,
    docs,
    headers,
    lean,
    operators,
    ops,
    sessions,
    sites,
    status,
    ws,
)
from .http.common import bind_request_id, request_id
from .http.h2c import refuse_cleartext_h2
from .http.keepalive import shield_final_send
from .http.uploads import upload_request_class
from .leases import keep_leases
from .overrides import (
    hypercorn_app_queue,
    hypercorn_body,
    hypercorn_guards,
    hypercorn_h2,
    hypercorn_read,
    hypercorn_send,
    quart_trio_connection,
    werkzeug_headers,
)
from .retention import purge_history_forever
from .services import Services
from .shipped import STATIC
from .site_reload import reload_on_sighup
from .store import open_store
from .store.base import StoreUnavailable
from .turns import TurnRunner
from .upstream import N8nClient

log = logging.getLogger("quartproxy")


def create_app(
    settings: Settings, *, upstream_transport: httpx.AsyncBaseTransport | None = None
) -> QuartTrio:
    # h2c upgrade, ambiguous framing, WebSocket message bound: before any connection is served
    hypercorn_guards.install()
    app = QuartTrio(__name__, static_folder=str(STATIC), static_url_path="/static")
    # overrides/: library internals, each version-checked (falls back to the library's own)
    app.request_class, app.websocket_class = werkzeug_headers.request_classes()
    # a multipart chat message gets the attachments' body ceiling (http/uploads.py)
    policy = AttachmentPolicy.from_settings(settings)
    ceiling = policy.body_ceiling(settings.max_body_bytes) if policy.enabled else None
    app.request_class = upload_request_class(app.request_class, ceiling)
    app.asgi_http_class = quart_trio_connection.connection_class()  # one task fewer per request
    app.session_interface = lean.NoSessions()  # lean.py: less memory per open request
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        BODY_TIMEOUT=30,
        DEBUG=settings.debug,
        PROPAGATE_EXCEPTIONS=False,
    )
    if upstream_transport is None and settings.demo:
        from .demo import EchoTransport

        upstream_transport = EchoTransport(settings.session_secret_key)

    app.asgi_app = shield_final_send(  # type: ignore[method-assign]
        app.asgi_app, lean.share_response_headers, lean.share_request_header_names
    )
    hypercorn_h2.install()  # overrides/hypercorn_h2.py: h2 backpressure, GOAWAY on idle close
    hypercorn_read.install()  # overrides/hypercorn_read.py: ≈3 KB less per waiting connection
    # overrides/hypercorn_app_queue.py: a request's receive queue without a memory channel, and
    # (with quart_trio_connection.py) no listener task once the body is read: ≈3.5 KB per stream
    hypercorn_app_queue.install()
    hypercorn_body.install()  # overrides/hypercorn_body.py: a streamed HTTP/1.1 chunk framed once
    # overrides/hypercorn_send.py: a socket write without Hypercorn's two yields (≈25 % less CPU
    # per streamed write). It made an early answer (a 401/403 before the body was read) finish
    # ahead of the connection's reader more often, and Hypercorn closed the keep-alive connection
    # under the client; shield_final_send above now reads a small body to its end before the
    # answer's last message (core/body_drain.py), which closes that race for every server path.
    hypercorn_send.install()
    if not settings.allow_h2c:  # http/h2c.py: cleartext HTTP/2 is a tunnel past the proxy
        app.asgi_app = refuse_cleartext_h2(app.asgi_app)  # type: ignore[method-assign]
    blueprints = (sessions.bp, chat.bp, ws.bp, compat.bp, sites.bp, ops.bp, operators.bp, status.bp)
    for bp in (*blueprints, docs.bp):
        app.register_blueprint(bp)
    widget_assets.install(app, STATIC)  # compressed once, here, not per request
    metrics.check_multiprocess_dir()  # set after the import, it would be silently ignored
    registered = settings.sites.sites if settings.sites else ()
    exact = [o for s in registered for o in s.origins.exact] or settings.allowed_origins.exact
    metrics.configure(exact, [s.id for s in registered] or ["default"])

    install_hooks(app, settings)
    install_error_handlers(app, settings)

    stop = trio.Event()
    stopped = trio.Event()

    @app.before_serving
    async def startup() -> None:
        app.extensions["quartproxy"] = await app.nursery.start(
            partial(own_services, settings, upstream_transport, stop, stopped)
        )
        freeze_startup_heap()

    @app.after_serving
    async def shutdown() -> None:
        stop.set()
        await stopped.wait()

    return app


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, the app, its routes and services: ~72,000 objects,
    all alive until the process ends) out of the cyclic garbage collector. A full collection
    traversed all of them: ~30 ms on the benchmark machine, during which every stream of the
    worker stalls — a tail on every delta and first delta (issue 20). Frozen, a full collection
    traverses only what requests created since. Garbage is collected first, so none is kept."""
    gc.collect()
    gc.freeze()


def install_hooks(app: QuartTrio, settings: Settings) -> None:
    """Every request gets its id, CORS answers preflights, every response its id, CORS and
    security headers."""

    @app.before_request
    async def bind_id() -> None:
        bind_request_id()

    app.before_request(cors.preflight)

    @app.after_request
    async def finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id()
        return headers.secure(cors.decorate(response), settings.trusted_proxies)


def install_error_handlers(app: QuartTrio, settings: Settings) -> None:
    """One place renders every error: the contract's JSON shape, counted; a store outage is
    the contract's 503 and one log line; anything unexpected is `internal` (with the traceback
    only under DEBUG)."""

    @app.errorhandler(ApiError)
    async def api_error(err: ApiError) -> tuple[Response, int, dict[str, str]]:
        metrics.rejected(err, request.headers.get("Origin"))
        return jsonify(err.body()), err.status, err.all_headers()

    @app.errorhandler(HTTPException)
    async def http_error(err: HTTPException) -> tuple[Response, int, dict[str, str]]:
        return await api_error(from_status(err.code or 500))

    @app.errorhandler(StoreUnavailable)
    async def store_down(err: StoreUnavailable) -> tuple[Response, int, dict[str, str]]:
        # The one mapping of a store outage, for every route: the contract's 503 and one log
        # line (the store's own reason; no traceback: the cause is outside the process).
        metrics.store_error("request")
        log.warning("store unavailable on %s %s: %s", request.method, request.path, err)
        return await api_error(store_unavailable())

    @app.errorhandler(Exception)
    async def crash(err: Exception) -> tuple[Response, int, dict[str, str]]:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=err)
        if settings.debug:  # DEBUG=true only: readable errors for the developer
            body = from_status(500).body()
            body["debug"] = {
                "exception": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exception(err),
            }
            metrics.rejected(from_status(500), request.headers.get("Origin"))
            return jsonify(body), 500, {}
        return await api_error(from_status(500))


async def own_services(
    settings: Settings,
    upstream_transport: httpx.AsyncBaseTransport | None,
    stop: trio.Event,
    stopped: trio.Event,
    *,
    task_status: trio.TaskStatus[Services] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The app's long-lived resources — store, n8n client, the turn runner and its background
    tasks — from start-up until `stop`; `stopped` is set once all are closed."""
    # Long-lived resources live in one task of the app nursery, started with
    # app.nursery.start and ended by an event set in after_serving: entering them in
    # before_serving and leaving in after_serving gives "Nursery misnesting" errors
    # (coredis's client owns an anyio task group).
    try:
        async with open_store(settings) as store:
            upstream = N8nClient(settings, upstream_transport)
            try:
                async with trio.open_nursery() as turn_nursery:
                    leases = lease_timing(settings.turn_lease_seconds)
                    runner = TurnRunner(
                        store,
                        upstream,
                        turn_nursery,
                        buffer_seconds=settings.stream_buffer_seconds,
                        busy_seconds=leases.ttl,  # renewed while the turn runs
                        fail_open=settings.rate_limit_fail_mode == "open",
                        heartbeat_seconds=settings.heartbeat_seconds,
                    )
                    await turn_nursery.start(runner.run_heartbeat)
                    await turn_nursery.start(keep_leases, runner, leases)
                    days = (
                        settings.sites.retention_days
                        if settings.sites
                        else settings.history_retention_days
                    )
                    if store.keeps_history and days > 0:
                        await turn_nursery.start(
                            purge_history_forever, store, days * 86400.0, time.time
                        )
                    svc = Services(settings, store, upstream, runner)
                    await turn_nursery.start(reload_on_sighup, svc)  # site_reload.py
                    task_status.started(svc)
                    unregister = lifecycle.register(partial(lifecycle.drain, svc))
                    metrics.worker_started()
                    supervision.started()
                    try:
                        await stop.wait()
                    finally:
                        unregister()
                        metrics.worker_stopped()
                        metrics.draining(False)
                    # Hypercorn has already given open requests graceful_timeout; answers
                    # whose clients left are cancelled now and end with `shutting_down`.
                    runner.accepting = False
                    turn_nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await upstream.aclose()
    finally:
        stopped.set()
