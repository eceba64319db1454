"""The plumbing every fake server of the tests shares (fake n8n, fake OpenAI, browser stack)."""

from __future__ import annotations

from typing import Any


async def read_request(scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
    """Serve the ASGI lifespan protocol, or read a whole HTTP request body.

    Returns the body of an HTTP request; None when the scope was the lifespan (now finished) or
    anything else but HTTP, so the caller simply returns."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    if scope["type"] != "http":
        return None
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body
