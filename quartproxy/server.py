"""Serving the app with Hypercorn, with a drain before Hypercorn's own shutdown (lifecycle.py).

`run(config)`:
- one worker (and no DEBUG reload): this process serves; SIGTERM or SIGINT starts the drain, a
  second one cuts it short (answers still end with `shutting_down`). When it dies, the process
  manager (Docker, systemd) restarts it.
- several workers, or DEBUG reload: this process supervises spawned workers (supervisor.py):
  it replaces a worker that dies, drains every worker on SIGTERM, and in DEBUG replaces the
  workers when a file changes.

`worker()` is the body of one serving process, spawned or called directly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from functools import partial
from multiprocessing.synchronize import Event as EventType
from typing import Any

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import check_multiprocess_shutdown_event, load_application

from .config import Settings

log = logging.getLogger("quartproxy.server")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def apply_settings(config: Config, settings: Settings) -> Config:
    """What Hypercorn must enforce for the app's settings. A WebSocket message may be no larger
    than an HTTP body (MAX_BODY_BYTES): Hypercorn closes the socket with 1009 while reading,
    before the message is buffered whole (with quartproxy/overrides/hypercorn_guards.py).
    Hypercorn counts a text message in characters, so the app's own check (in bytes, an
    error frame) still answers a message of fewer characters but more bytes."""
    config.websocket_max_message_size = settings.max_body_bytes
    return config


def worker(
    config: Config,
    sockets: Sockets | None = None,
    shutdown_event: EventType | None = None,
    restarts: Any = None,
    ready: Any = None,
    supervisor: int | None = None,
) -> None:
    """One serving process. `shutdown_event` (set by a supervisor) asks for a drain, like a
    SIGTERM; `restarts` is the supervisor's shared count and `ready` the pipe on which the
    app says it has started (supervision.py); `supervisor` its pid."""
    # A SIGHUP (sites reload, site_reload.py) before the app listens must not end the worker
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if supervisor is not None:
        _drain_when_orphaned(supervisor)
    if restarts is not None:
        from . import supervision

        supervision.attach(restarts, ready)
    if sockets is not None:
        for sock in sockets.secure_sockets:
            sock.listen(config.backlog)
        for sock in sockets.insecure_sockets:
            sock.listen(config.backlog)
    app = load_application(config.application_path, config.wsgi_max_body_size)
    _build_now(app)
    trigger = partial(shutdown_trigger, config.graceful_timeout, shutdown_event)
    trio.run(partial(worker_serve, app, config, sockets=sockets, shutdown_trigger=trigger))


def _drain_when_orphaned(supervisor: int) -> None:
    """Linux: get a SIGTERM (a drain) when the supervisor dies, rather than serving on as an
    orphan that holds the port (a supervisor killed with SIGKILL cannot tell its workers; outside
    a container or a systemd cgroup nothing else would)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: no such call
    if os.getppid() != supervisor:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def _build_now(app: Any) -> None:
    """Build the lazy app (quartproxy:app) before serving, so that a broken import or setting
    ends this worker at start with its error, rather than later: Hypercorn catches an exception
    raised in the lifespan start-up, warns "continuing without Lifespan support" and then
    serves a 500 for every request."""
    load = getattr(getattr(app, "app", None), "load", None)
    if load is None:
        return
    try:
        load()
    except Exception:
        log.critical("worker %d cannot load the app", os.getpid(), exc_info=True)
        raise SystemExit(3) from None


async def shutdown_trigger(grace: float, master: EventType | None) -> None:
    """Returns (letting Hypercorn shut down) once a shutdown was asked for — SIGTERM, SIGINT or
    the supervisor's event — and the apps have drained."""
    asked = trio.Event()
    force = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signals() -> None:
                async for signum in signals:
                    if asked.is_set():
                        log.warning("second %s: ending the drain now", signal.Signals(signum).name)
                        force.set()
                    asked.set()

            async def on_master() -> None:
                assert master is not None
                # A multiprocessing Event cannot be awaited: Hypercorn's own poll.
                await check_multiprocess_shutdown_event(master, trio.sleep)
                asked.set()

            nursery.start_soon(on_signals)
            if master is not None:
                nursery.start_soon(on_master)
            await asked.wait()
            log.info("shutdown requested (pid %d)", os.getpid(), extra={"event": "shutdown"})
            # Imported here: the supervisor must not create metric files of its own.
            from . import lifecycle

            await lifecycle.drain_all(grace, force)
            nursery.cancel_scope.cancel()
    log.info("closing connections", extra={"event": "closing"})


def run(config: Config, *, reload: Any = None) -> int:
    """Serve until shut down; the exit code. `reload` (DEBUG): a reload.Reload to watch."""
    if config.workers <= 1 and reload is None:
        worker(config)
        return 0
    from .supervisor import Supervisor

    return Supervisor(config, reload=reload).run()
