"""One task fewer per open request: quart-trio's HTTP connection `__call__`, copied and changed.

Library: quart-trio, verified against 0.12.0 (Python 3.11) and 0.13.0 (Python 3.13); on any other
version this is not applied (a loud warning, quart-trio's own connection serves: overrides/
versions.py). tests/unit/test_overrides.py fingerprints the copied method. Upstream proposal,
ready to send: docs/upstream/quart-trio-one-task-per-request.md.

quart-trio runs every request as two tasks in a nursery of its own: one sends the response, one
listens for the client going away. Here the first runs in the nursery's own task instead (same
cancellation, same exception groups): one task and its frames fewer, ~1.3 KB per open answer
stream (measured with bench/memory_profile.py; docs/benchmarks.md, idle streams).
"""

from __future__ import annotations

from typing import Any

import trio
from quart_trio import asgi as quart_trio_asgi
from quart_trio.asgi import TrioASGIHTTPConnection

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
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.handle_messages, nursery, request, receive)
            await self.handle_request(nursery, request, send)


def connection_class() -> type[TrioASGIHTTPConnection]:
    """The class for `app.asgi_http_class`: the copy on a verified quart-trio, else its own."""
    if supported("quart-trio", TESTED_VERSIONS, "quart_trio_connection.py", required=False):
        return HTTPConnection
    return TrioASGIHTTPConnection
