"""Make Hypercorn's keep-alive handling work under quart-trio.

Measured (Hypercorn 0.18 with quart-trio 0.12 and 0.13): after every response, quart-trio
cancels its request nursery as soon as Hypercorn reports `http.disconnect`, which Hypercorn
does *inside* the app's final `send` - so the rest of that send (where Hypercorn re-arms the
connection's idle timer) is cancelled. The connection then never times out:
`keep_alive_timeout` is not enforced, and on shutdown idle keep-alive connections are not
closed, so every worker waits the full `graceful_timeout` for clients that will never send
another request.

Shielding the final body send lets Hypercorn finish its bookkeeping. The send itself is already
shielded inside Hypercorn (socket writes), so this adds no new way to hang (the body drain
below waits inside the same shield, DRAIN_SECONDS at most).

The same wrapper marks the scope while the app runs the request, so that the access log writes
one line per request (logs.AccessLogger explains the race with Hypercorn's early line).

An answer given before the request body was read (401, 403, 404, 405 ...) first reads the rest
of a small body, bounded in bytes and time (core/body_drain.py), right before its last message
(`http.response.body` without `more_body`): everything the client needs is on the wire by then
(Quart sends the body with `more_body` and ends with an empty message), and Hypercorn, which
recycles or closes the connection when that last message arrives, then finds the request
complete and keeps the connection for the client's next request. Without it Hypercorn closed
the connection under the client ("Server disconnected"; tests/integration/test_early_answers.py,
docs/upstream/hypercorn-early-answer-closes-keep-alive.md). The body is read through the same
`receive` the app has: whatever the app's own reader does not take, the drain takes and drops.
A body declared bigger than the bound, or one that does not come in time, is not waited for:
the answer ends and Hypercorn closes the connection, as before.

`headers`, when given, rewrites the response headers of `http.response.start` on the way
(lean.share_response_headers); `request_headers`, when given, sees the scope's request headers
first (lean.share_request_header_names): one wrapper, so one closure and one frame per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from ..core.body_drain import DRAIN_SECONDS, drain_budget
from ..logs import ACCESS_PENDING, flush_pending_access

Send = Any
HeaderList = list[tuple[bytes, bytes]]


def shield_final_send(
    asgi_app: Any,
    headers: Callable[[HeaderList], HeaderList] | None = None,
    request_headers: Callable[[HeaderList], None] | None = None,
) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await asgi_app(scope, receive, send)
            return
        if request_headers is not None:
            request_headers(scope["headers"])

        budget = drain_budget(scope.get("http_version", ""), scope["headers"])
        body = None if budget is None else RequestBody(receive, budget)

        async def send_shielded(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    if body is not None and not body.ended:
                        await body.drain()
                    await send(message)
            else:
                if kind == "http.response.start" and headers is not None:
                    message["headers"] = headers(message.get("headers", []))
                await send(message)

        scope[ACCESS_PENDING] = None
        try:
            await asgi_app(scope, receive if body is None else body, send_shielded)
        finally:
            flush_pending_access(scope)

    return app


class RequestBody:
    """The app's `receive`, counting the body that passed and noting its end; `drain()` reads
    the rest (up to `budget` bytes, DRAIN_SECONDS) when the app answered without it.

    The app's own reader may still be waiting in `receive` too (quart-trio's is, for the whole
    request): each message goes to one of them, both through here, and the drain stops as soon
    as either has seen the end (a cancelled `receive` of a trio channel loses no message)."""

    __slots__ = ("budget", "draining", "ended", "receive", "seen")

    def __init__(self, receive: Any, budget: int) -> None:
        self.receive = receive
        self.budget = budget
        self.seen = 0
        self.ended = False
        self.draining: trio.CancelScope | None = None

    async def __call__(self) -> dict[str, Any]:
        message: dict[str, Any] = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.ended = True
        else:  # http.disconnect: nothing more will come
            self.ended = True
        if self.draining is not None and (self.ended or self.seen > self.budget):
            self.draining.cancel()
        return message

    async def drain(self) -> None:
        with trio.move_on_after(DRAIN_SECONDS) as self.draining:
            while not self.ended and self.seen <= self.budget:
                await self()
        self.draining = None
