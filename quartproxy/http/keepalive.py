"""Make Hypercorn's keep-alive handling work under quart-trio.

Measured (Hypercorn 0.18 with quart-trio 0.12 and 0.13): after every response, quart-trio
cancels its request nursery as soon as Hypercorn reports `http.disconnect`, which Hypercorn
does *inside* the app's final `send` - so the rest of that send (where Hypercorn re-arms the
connection's idle timer) is cancelled. The connection then never times out:
`keep_alive_timeout` is not enforced, and on shutdown idle keep-alive connections are not
closed, so every worker waits the full `graceful_timeout` for clients that will never send
another request.

Shielding the final body send lets Hypercorn finish its bookkeeping. The send itself is already
shielded inside Hypercorn (socket writes), so this adds no new way to hang.

The same wrapper marks the scope while the app runs the request, so that the access log writes
one line per request (logs.AccessLogger explains the race with Hypercorn's early line).

`headers`, when given, rewrites the response headers of `http.response.start` on the way
(lean.share_response_headers); `request_headers`, when given, sees the scope's request headers
first (lean.share_request_header_names): one wrapper, so one closure and one frame per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

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

        async def send_shielded(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                if kind == "http.response.start" and headers is not None:
                    message["headers"] = headers(message.get("headers", []))
                await send(message)

        scope[ACCESS_PENDING] = None
        try:
            await asgi_app(scope, receive, send_shielded)
        finally:
            flush_pending_access(scope)

    return app
