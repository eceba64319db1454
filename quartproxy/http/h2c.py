"""HTTP/2 without TLS (h2c) is refused unless `ALLOW_H2C=true` (docs/http2.md, issue 13).

Hypercorn speaks h2c on every plain-HTTP bind, reached two ways: prior knowledge (the client
opens with the HTTP/2 preface) and `Upgrade: h2c`. Browsers never use h2c. Behind a proxy that
relays an upgrade (or any byte stream) to this port, h2c is a tunnel: every request in it
arrives from the proxy's address, so a client's own `X-Forwarded-For` is believed and per-IP
limits and the proxy's deny rules are bypassed. So the class is closed here, at the one place
every request passes whatever way the connection became HTTP/2: a request whose connection is
HTTP/2 (`http_version` "2") but not TLS (`scheme` http/ws) gets `403 forbidden` (a WebSocket
is refused before it is accepted, which Hypercorn answers with 403).

`ALLOW_H2C=true` is for a load balancer that speaks h2c to its backends over a private network
(and forwards no client bytes raw); HTTP/2 over TLS (`--certfile`) is never affected.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..errors import ApiError

log = logging.getLogger("quartproxy.h2c")
WARN_EVERY_SECONDS = 60.0  # one warning line per minute at most: a flood must not flood the log

REFUSED = ApiError(
    403, "forbidden", "HTTP/2 without TLS is not accepted here: use HTTPS or HTTP/1.1."
)


def is_cleartext_h2(scope: dict[str, Any]) -> bool:
    return scope.get("http_version") == "2" and scope.get("scheme") in ("http", "ws")


def refuse_cleartext_h2(asgi_app: Any) -> Any:
    last_warning = [-WARN_EVERY_SECONDS]
    refused = [0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not is_cleartext_h2(scope):
            await asgi_app(scope, receive, send)
            return
        refused[0] += 1
        now = time.monotonic()
        if now - last_warning[0] >= WARN_EVERY_SECONDS:
            last_warning[0] = now
            log.warning(
                "refused %d cleartext HTTP/2 (h2c) request(s); set ALLOW_H2C=true only for a "
                "load balancer that speaks h2c",
                refused[0],
                extra={"event": "h2c_refused", "count": refused[0]},
            )
            refused[0] = 0
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(REFUSED.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": REFUSED.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app
