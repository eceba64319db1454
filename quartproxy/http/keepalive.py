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
"""

from __future__ import annotations

from typing import Any

import trio

Send = Any


def shield_final_send(asgi_app: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await asgi_app(scope, receive, send)
            return

        async def send_shielded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await asgi_app(scope, receive, send_shielded)

    return app
