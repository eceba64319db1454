"""Operations endpoints: health, metrics, and the demo page."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

import trio
from quart import Blueprint, Response, current_app, jsonify, request, send_from_directory

from .. import metrics, supervision
from ..core.origins import client_ip, is_local
from ..errors import ApiError
from ..services import Services
from ..store.base import StoreUnavailable
from .common import services

log = logging.getLogger("quartproxy.ops")

bp = Blueprint("ops", __name__)


@bp.get("/health")
async def health() -> tuple[Response, int]:
    """Status for everyone; what failed and why (addresses, exception text) only for
    operators (`operator_access`), and always in the log. The status code is the same for
    both, so load balancers and the container's healthcheck need no token."""
    svc = services()
    checks: dict[str, dict[str, Any]] = {}
    if svc.settings.demo:
        checks["n8n"] = {"status": "ok", "detail": "demo echo upstream"}
    else:
        checks["n8n"] = await svc.upstream.health()
    try:
        await svc.store.ping()
        checks["store"] = {"status": "ok", "backend": svc.store.name}
    except StoreUnavailable as exc:
        checks["store"] = {"status": "fail", "backend": svc.store.name, "detail": str(exc)[:200]}
    failing = [name for name, check in checks.items() if check["status"] != "ok"]
    _log_failures(svc, checks)
    if not operator_access(svc, required=False):
        checks = {name: {"status": check["status"]} for name, check in checks.items()}
    body: dict[str, Any] = {"status": "degraded" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    restarts = supervision.restarts()
    if restarts is not None:  # served by a supervised worker: how many were replaced, and why
        body["workers"] = {"restarts": restarts}
    if not svc.turns.accepting:
        body["status"] = "shutting_down"
        return jsonify(body), 503
    return jsonify(body), 503 if failing else 200


HEALTH_LOG_SECONDS = 60.0


def _log_failures(svc: Services, checks: dict[str, dict[str, Any]]) -> None:
    """The detail of a failing check goes to the log: when it changes, else once a minute
    (/health is polled every few seconds; an outage must not flood the log)."""
    now = time.monotonic()
    logged = svc.health_logged
    for name, check in checks.items():
        if check["status"] == "ok":
            logged.pop(name, None)
            continue
        detail = str(check.get("detail", ""))
        last = logged.get(name)
        if last is None or last[1] != detail or now - last[0] >= HEALTH_LOG_SECONDS:
            logged[name] = (now, detail)
            log.warning("health: %s check failing: %s", name, detail or "no detail")


def operator_access(svc: Services, *, required: bool) -> bool:
    """Whether this request may see operator data (/metrics, /health detail).

    With METRICS_TOKEN set: only `Authorization: Bearer <METRICS_TOKEN>` (compared in constant
    time). Without it: only a client on this host or inside TRUSTED_PROXIES — the address as
    the rate limits resolve it (core.origins.client_ip), so a request relayed by a trusted
    proxy counts as its real client, not as the proxy. With `required`, a refusal raises
    (401 without the token, 403 for a remote client) instead of returning False."""
    settings = svc.settings
    token = settings.metrics_token
    if token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
        if required:
            raise ApiError(401, "unauthorized", "A valid metrics token is required.")
        return False
    address = client_ip(
        request.remote_addr,
        request.headers.getlist("X-Forwarded-For"),
        settings.trusted_proxies,
    )
    if is_local(address, settings.trusted_proxies):
        return True
    if required:
        raise ApiError(
            403,
            "forbidden",
            "The metrics are served to this host and trusted proxies only (or set METRICS_TOKEN).",
        )
    return False


@bp.get("/metrics")
async def prometheus() -> Response:
    """Prometheus text exposition, summed over all workers, for operators only
    (`operator_access`: the METRICS_TOKEN bearer when set, else local callers)."""
    operator_access(services(), required=True)
    body = await trio.to_thread.run_sync(metrics.render)
    response = Response(body, status=200, content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
async def index() -> Response:
    """The demo page (demo mode only); elsewhere the root is not part of the API."""
    if not services().settings.demo:
        return jsonify({"service": "quartproxy", "health": "/health"})
    static = current_app.static_folder
    assert static is not None
    return await send_from_directory(static, "demo.html")
