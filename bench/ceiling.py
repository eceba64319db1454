"""The fixed stack's own ceiling: Quart on trio under Hypercorn, with none of the gateway.

`python -m bench.run` serves this app with the same Hypercorn config as the proxy and drives it
with the load generator's `direct` mode, so the report shows what the framework alone can do on
this machine for the same exchange (POST a chat message, stream back 20 chunks):

    static   the route answers a prebuilt 20-item NDJSON body from a streaming generator
    relay    the route relays the fake n8n's answer over a raw keep-alive socket (no parsing,
             no JWT, no checks, no store, no metrics), one write per upstream read; the posted
             body goes upstream as it came, so the message picks the answer as it does for
             the fake n8n (`bench:80:50`: paced; the `ceiling_cost` part measures the
             framework's own CPU per streamed write this way)

Nothing here is used by the gateway. Upstream URL from the env var CEILING_UPSTREAM
(`http://127.0.0.1:<port>/webhook/chat`), variant from CEILING_VARIANT. CEILING_OVERRIDES=1
installs the gateway's Hypercorn and quart-trio overrides (quartproxy/overrides/: the socket
write, the body chunk, the idle reader, the request queue, one task per request), so the floor
is measured with the same framework shortcuts the gateway takes (`ceiling_cost` runs both).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import trio
from quart import Response, request
from quart_trio import QuartTrio

VARIANT = os.environ.get("CEILING_VARIANT", "relay")
UPSTREAM = urlsplit(os.environ.get("CEILING_UPSTREAM", "http://127.0.0.1:9/webhook/chat"))
STATIC = (
    b"".join(b'{"type":"item","content":"tok%d "}\n' % i for i in range(20)) + b'{"type":"end"}\n'
)
HEAD = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % (
    UPSTREAM.path.encode(),
    (UPSTREAM.netloc or "x").encode(),
)


def upstream_request(body: bytes) -> bytes:
    return HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


app = QuartTrio(__name__)
if os.environ.get("CEILING_OVERRIDES") == "1":
    from quartproxy.overrides import (
        hypercorn_app_queue,
        hypercorn_body,
        hypercorn_read,
        hypercorn_send,
        quart_trio_connection,
    )

    for override in (hypercorn_send, hypercorn_body, hypercorn_read, hypercorn_app_queue):
        override.install()
    app.asgi_http_class = quart_trio_connection.connection_class()  # type: ignore[assignment]


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.s = stream
        self.buf = bytearray()

    async def more(self) -> None:
        data = await self.s.receive_some(65536)
        if not data:
            raise ConnectionError("upstream closed")
        self.buf += data


_idle: list[_Conn] = []


async def _answer(body: bytes) -> AsyncIterator[bytes]:
    conn = (
        _idle.pop()
        if _idle
        else _Conn(await trio.open_tcp_stream(UPSTREAM.hostname or "", UPSTREAM.port or 80))
    )
    await conn.s.send_all(upstream_request(body))
    while (i := conn.buf.find(b"\r\n\r\n")) < 0:
        await conn.more()
    del conn.buf[: i + 4]
    while True:  # chunked body: everything complete in the buffer goes out in one write
        out = []
        while True:
            i = conn.buf.find(b"\r\n")
            if i < 0:
                break
            size = int(conn.buf[:i], 16)
            if len(conn.buf) < i + 2 + size + 2:
                break
            if size == 0:
                del conn.buf[: i + 4]
                if out:
                    yield b"".join(out)
                _idle.append(conn)
                return
            out.append(bytes(conn.buf[i + 2 : i + 2 + size]))
            del conn.buf[: i + 2 + size + 2]
        if out:
            yield b"".join(out)
        await conn.more()


async def _static() -> AsyncIterator[bytes]:
    yield STATIC


@app.post("/webhook/chat")
async def chat() -> Response:
    posted = await request.get_data()
    body = _static() if VARIANT == "static" else _answer(posted)
    response = Response(body, headers={"Content-Type": "application/x-ndjson"})
    response.timeout = None
    return response
