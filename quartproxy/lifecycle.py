"""Graceful shutdown: the drain between SIGTERM and Hypercorn's own shutdown.

Hypercorn alone, on SIGTERM, stops accepting, closes idle connections, gives open requests
`graceful_timeout` and then cancels them — an SSE stream cut that way ends without a final
event. `python -m quartproxy` (see server.py) runs this drain *before* it lets Hypercorn shut
down:

1. every app of the process stops taking new turns (`503 shutting_down`, `/health` 503) while
   Hypercorn still serves, so callers get a clear answer instead of a hanging connection;
2. running answers get up to `grace` seconds to finish normally;
3. answers still running then end with an `error` event `shutting_down` (recorded in the
   resume buffer), so every open stream ends with a final event and the widget knows to
   resume or retry; open WebSockets send their last frames and close with 1001;
4. only then does Hypercorn's shutdown start (its graceful window then only has to flush those
   last events).

Apps register a drain function while they serve; the server's shutdown trigger calls
`drain_all`. A second signal during the drain skips to step 3 (`force`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from . import metrics
from .services import Services

log = logging.getLogger("quartproxy.lifecycle")

Drainer = Callable[[float, trio.Event], Awaitable[None]]
# Per process, not per app: SIGTERM is delivered to the process, and server.py's shutdown trigger
# does not hold the app (Hypercorn loads `quartproxy:app` itself). Each app adds itself while it
# serves and removes itself when it stops, so nothing outlives the app that registered it.
_drainers: set[Drainer] = set()
FINAL_EVENT_SECONDS = 5.0  # how long cancelled answers get to record their final event


def register(drainer: Drainer) -> Callable[[], None]:
    """Add an app's drain function; returns the function that removes it."""
    _drainers.add(drainer)
    return lambda: _drainers.discard(drainer)


async def drain_all(grace: float, force: trio.Event | None = None) -> None:
    """Drain every registered app concurrently (normally one per process)."""
    if force is None:
        force = trio.Event()
    async with trio.open_nursery() as nursery:
        for drainer in list(_drainers):
            nursery.start_soon(drainer, grace, force)


async def drain(services: Services, grace: float, force: trio.Event) -> None:
    runner = services.turns
    runner.accepting = False
    metrics.draining(True)
    running = len(runner.live)
    log.info(
        "draining: new turns refused; %d answer(s) running, waiting up to %ss",
        running,
        grace,
        extra={"event": "drain_started", "running": running, "grace": grace},
    )
    async with trio.open_nursery() as nursery:

        async def forced() -> None:
            await force.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(forced)
        with trio.move_on_after(grace):
            await runner.wait_idle()
        nursery.cancel_scope.cancel()
    left = len(runner.live)
    if left:
        log.warning(
            "drain deadline: ending %d answer(s) with shutting_down",
            left,
            extra={"event": "drain_deadline", "running": left},
        )
        runner.cancel_all()
        with trio.move_on_after(FINAL_EVENT_SECONDS):
            await runner.wait_idle()
    services.closing.set()
    log.info("drained", extra={"event": "drained", "cut": left})
