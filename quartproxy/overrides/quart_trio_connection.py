"""One task fewer per open request: quart-trio's HTTP connection `__call__`, copied and changed.

Library: quart-trio, verified against 0.12.0 (Python 3.11) and 0.13.0 (Python 3.13); on any other
version this is not applied (a loud warning, quart-trio's own connection serves: overrides/
versions.py). tests/unit/test_overrides.py fingerprints the copied method. Upstream proposal,
ready to send: docs/upstream/quart-trio-one-task-per-request.md.

quart-trio runs every request as two tasks in a nursery of its own: one sends the response, one
listens for the client going away. Here the first runs in the nursery's own task instead (same
cancellation, same exception groups): one task and its frames fewer, ~1.3 KB per open answer
stream (measured with bench/memory_profile.py; docs/benchmarks.md, idle streams).

The second, the listener, ends once the request body is complete when Hypercorn's receive is an
`AppQueue` (overrides/hypercorn_app_queue.py): from then on the only message left is
`http.disconnect`, and the queue calls what the listener would have done (mark the request
disconnected, cancel the nursery) when Hypercorn puts it: ~1.8 KB less per open answer stream.
On any other receive the listener runs as quart-trio's. `handle_messages` of both versions is
fingerprinted too (the per-message steps are theirs).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from quart_trio import asgi as quart_trio_asgi
from quart_trio.asgi import TrioASGIHTTPConnection

from .hypercorn_app_queue import app_queue_of
from .versions import supported

TESTED_VERSIONS = ("0.12.", "0.13.")

# 0.13 wraps `send` so that an OSError from it becomes ClientDisconnectedError; 0.12 has no such
# wrapper. The copy does what the installed version does.
_convert_os_error = getattr(quart_trio_asgi, "_convert_os_error", None)


class HTTPConnection(TrioASGIHTTPConnection):
    """quart-trio's HTTP connection with the response sent from the nursery's own task.

    quart-trio: `start_soon(handle_messages)` and `start_soon(handle_request)`, each ending with
    `nursery.cancel_scope.cancel()`; here `handle_request` is the nursery's body. Either one
    finishing cancels the other exactly as before, and an exception from either leaves the
    nursery the same way (trio wraps a body's exception in the same ExceptionGroup)."""

    async def __call__(self, receive: Any, send: Any) -> None:
        if _convert_os_error is not None:
            send = _convert_os_error(send)
        request = self._create_request_from_scope(send)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.handle_messages, nursery, request, receive)
                await self.handle_request(nursery, request, send)
        finally:
            queue = app_queue_of(receive)
            if queue is not None:  # the request is over: its nursery and request not kept
                queue.when_disconnected(None)

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Any, receive: Any
    ) -> None:
        """quart-trio's listener until the body is complete, then the queue's callback."""
        queue = app_queue_of(receive)
        if queue is None:
            await super().handle_messages(nursery, request, receive)
            return
        put = getattr(request.body, "put", None)  # quart-trio 0.13 (Quart 0.23); 0.12: append
        while True:
            message = await receive()
            if message["type"] == "http.request":
                if put is not None:
                    await put(message.get("body", b""))
                else:
                    request.body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    request.body.set_complete()
                    break
            elif message["type"] == "http.disconnect":
                self._client_left(nursery, request)
                return
        queue.when_disconnected(partial(self._client_left, nursery, request))

    def _client_left(self, nursery: trio.Nursery, request: Any) -> None:
        """What quart-trio's listener does on `http.disconnect` (0.13 also marks the request)."""
        if hasattr(request.body, "disconnect"):
            self._disconnected = True
            request.body.disconnect()
        nursery.cancel_scope.cancel()


def connection_class() -> type[TrioASGIHTTPConnection]:
    """The class for `app.asgi_http_class`: the copy on a verified quart-trio, else its own."""
    if supported("quart-trio", TESTED_VERSIONS, "quart_trio_connection.py", required=False):
        return HTTPConnection
    return TrioASGIHTTPConnection
