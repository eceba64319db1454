"""The gateway's own protocol edge, straight at a real Hypercorn (no proxy in front): h2c
upgrades, ambiguous request framing, and the WebSocket message bound — the guards of
quartproxy/overrides/hypercorn_guards.py and the limit of server.apply_settings."""

from __future__ import annotations

import json
import logging
import struct
import tracemalloc

import pytest
import trio
from trio_websocket import ConnectionClosed

from quartproxy.overrides import hypercorn_guards
from tests.integration.test_ws import WS_BROWSER_HEADERS, WS_PATH, authed, socket
from tests.raw_http import (
    connect,
    h2c_attempt,
    read_head,
    read_until_closed,
    status_of,
)
from tests.support import FINGERPRINT, ORIGIN, Proxy

# -- h2c -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", WS_PATH, "/api/v1/session/create"])
async def test_h2c_upgrade_is_answered_over_http11(proxy: Proxy, path: str) -> None:
    """Never `101`: the request is answered as HTTP/1.1, and nothing can be tunnelled after it
    (the attacker's HTTP/2 requests, here /metrics, are never read as requests)."""
    outcome = await h2c_attempt(proxy.url, path, [("GET", "/metrics", [])])
    assert outcome.status != 101
    assert outcome.tunnelled == []
    if path == "/health":
        assert outcome.status in (200, 503)


async def test_after_an_ignored_h2c_upgrade_the_connection_stays_http11(proxy: Proxy) -> None:
    stream = await connect(proxy.url)
    async with stream:
        await stream.send_all(
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
            b"GET /api/v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.1 503")
    assert answer.count(b"HTTP/1.1 ") == 2  # the second request was served as HTTP/1.1 too
    assert b"HTTP/1.1 404" in answer


# -- request framing -------------------------------------------------------------------------

PIPELINED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/v1/session/create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n",
        b"POST /api/v1/session/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 0\r\n",
        b"POST /api/v1/session/create HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["cl-te", "te-cl", "te-http10"],
)
async def test_ambiguous_framing_is_refused_and_the_connection_closed(
    proxy: Proxy, head: bytes
) -> None:
    """RFC 9112 §6.1: the connection must be closed after such a request; the pipelined request
    behind it is never served (it could be a smuggled one)."""
    stream = await connect(proxy.url)
    async with stream:
        await stream.send_all(
            head + b"Origin: " + ORIGIN.encode() + b"\r\n\r\n0\r\n\r\n" + PIPELINED
        )
        answer = await read_until_closed(stream)  # the server closes: no hang
    assert status_of(answer) == 400
    assert answer.count(b"HTTP/1.") == 1, answer


async def test_refusals_cannot_flood_the_log(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(5):
        stream = await connect(proxy.url)
        async with stream:
            await stream.send_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            assert status_of(await read_until_closed(stream)) == 400
    lines = [r for r in caplog.records if r.name == "quartproxy.overrides"]
    assert len(lines) <= 1  # one line a minute, with a count


async def test_pipelining_itself_still_works(proxy: Proxy) -> None:
    """The control for the test above: two clean pipelined requests get two answers."""
    stream = await connect(proxy.url)
    async with stream:
        await stream.send_all(
            PIPELINED + PIPELINED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
        answer = await read_until_closed(stream)
    assert answer.count(b"HTTP/1.1 ") == 2


# -- WebSocket message bound -----------------------------------------------------------------


async def closed_code(ws) -> int:  # type: ignore[no-untyped-def]
    with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.get_message()
    return int(closed.value.reason.code)


async def test_a_message_over_the_body_limit_is_closed_with_1009_before_auth(proxy: Proxy) -> None:
    async with socket(proxy) as ws:
        await ws.send_message("x" * (proxy.settings.max_body_bytes + 1))
        assert await closed_code(ws) == 1009


async def test_a_message_over_the_body_limit_is_closed_with_1009_after_auth(proxy: Proxy) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        await ws.send_message(b"\0" * (proxy.settings.max_body_bytes + 1))
        assert await closed_code(ws) == 1009


async def test_a_message_at_the_limit_still_gets_the_apps_answer(proxy: Proxy) -> None:
    """Exactly MAX_BODY_BYTES is read whole and answered by the app (an error frame for a
    message too long in characters), the socket stays."""
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        body = json.dumps({"type": "message", "message": ""})
        frame = body[:-2] + "x" * (proxy.settings.max_body_bytes - len(body)) + body[-2:]
        assert len(frame) == proxy.settings.max_body_bytes
        await ws.send_message(frame)
        with trio.fail_after(10):
            error = json.loads(await ws.get_message())
        assert (error["type"], error["code"]) == ("error", "bad_request")


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None
) -> bytes:
    """A masked client frame header (+ payload), with an all-zero mask so the payload is sent
    as is; `length` may announce more than `payload` (the rest follows separately)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    return head + b"\0\0\0\0" + payload


async def server_frames(
    stream: trio.SocketStream, out: trio.MemorySendChannel[tuple[int, bytes]]
) -> None:
    """Pass on the server's (unmasked) frames as (opcode, payload) until it closes."""
    buf = bytearray()
    async with out:
        await _read_frames(stream, buf, out)


async def _read_frames(
    stream: trio.SocketStream, buf: bytearray, out: trio.MemorySendChannel[tuple[int, bytes]]
) -> None:
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        buf += data
        while len(buf) >= 2:
            size, at = buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    break
                size, at = struct.unpack("!H", buf[2:4])[0], 4
            elif size == 127:
                if len(buf) < 10:
                    break
                size, at = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < at + size:
                break
            await out.send((buf[0] & 0x0F, bytes(buf[at : at + size])))
            del buf[: at + size]


async def test_a_peer_ignoring_the_1009_cannot_grow_the_servers_memory(proxy: Proxy) -> None:
    """The review's attack: one unfinished 12 MiB fragment. The server closes with 1009 after
    MAX_BODY_BYTES and keeps nothing of what the peer still sends (Hypercorn alone appends it
    all to its buffer). Measured in this process, where the server runs: the peak of traced
    memory while the 12 MiB go through stays far below them."""
    s = await proxy.session()
    total, piece = 12 * 1024 * 1024, b"x" * 65536
    stream = await connect(proxy.url)
    async with stream:
        headers = "".join(f"{k}: {v}\r\n" for k, v in WS_BROWSER_HEADERS.items())
        await stream.send_all(
            (
                f"GET {WS_PATH} HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n{headers}"
                "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode()
        )
        buf = bytearray()
        assert status_of(await read_head(stream, buf)) == 101
        auth = json.dumps({"type": "auth", "token": s["token"], "fingerprint": FINGERPRINT})
        await stream.send_all(client_frame(0x1, auth.encode()))
        found: list[tuple[int, bytes]] = []
        send, frames = trio.open_memory_channel[tuple[int, bytes]](100)

        async def until(opcode: int, needle: bytes = b"") -> None:
            with trio.fail_after(60):
                async for op, payload in frames:
                    found.append((op, payload))
                    if op == opcode and needle in payload:
                        return

        tracemalloc.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_frames, stream, send)
                await until(0x1, b'"ready"')
                base, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                async with trio.open_nursery() as sending:
                    sending.start_soon(until, 0x8)  # the server's close, while we still send
                    with trio.fail_after(60):
                        await stream.send_all(client_frame(0x1, b"", fin=False, length=total))
                        for _ in range(total // len(piece)):
                            await stream.send_all(piece)
                        await stream.send_all(client_frame(0x8, struct.pack("!H", 1000)))
                _, peak = tracemalloc.get_traced_memory()
                nursery.cancel_scope.cancel()
        finally:
            tracemalloc.stop()
    closes = [struct.unpack("!H", payload[:2])[0] for op, payload in found if op == 0x8]
    assert closes == [1009]
    assert peak - base < 4 * 1024 * 1024, f"{(peak - base) / 2**20:.1f} MiB held"


async def test_permessage_deflate_is_not_negotiated(proxy: Proxy) -> None:
    """An inflated frame has no output bound in wsproto (a small read can become a huge
    message before any limit sees it): compression is simply not offered."""
    stream = await connect(proxy.url)
    async with stream:
        await stream.send_all(
            (
                f"GET {WS_PATH} HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n"
                "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        head = await read_head(stream, bytearray())
    assert status_of(head) == 101
    assert b"sec-websocket-extensions" not in head.lower()


def test_the_guards_are_installed_by_the_app() -> None:
    from quartproxy.factory import create_app
    from tests.support import settings_for

    create_app(settings_for("http://127.0.0.1:9/webhook"))
    assert hypercorn_guards.installed()


# -- no redirect built from the client's Host ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("POST", "/api//v1/session/create", "/api/v1/session/create"),
        ("GET", "/api//v1/chat/history/abc?x=1", "/api/v1/chat/history/abc?x=1"),
        ("GET", "/api/v1//chat/message/abc", "/api/v1/chat/message/abc"),
        ("GET", "/static//widget.js", "/static/widget.js"),
    ],
)
async def test_slash_merge_redirects_are_relative(
    proxy: Proxy, method: str, path: str, target: str
) -> None:
    """Werkzeug's `//` merge answers 308 with an absolute URL built from the Host header
    (issue 13, finding 10): the Location is a path on this server instead."""
    r = await proxy.client.request(method, path, headers={"Host": "evil.example", "Origin": ORIGIN})
    assert r.status_code == 308
    assert r.headers["location"] == target
    assert "evil.example" not in str(r.headers)


# -- static files: nothing outside static/ ------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/static/../quartproxy/config.py",
        "/static/%2e%2e/quartproxy/config.py",
        "/static/..%2fquartproxy%2fconfig.py",
        "/static/..%5cquartproxy%5cconfig.py",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/widget.js%00.txt",
    ],
)
async def test_static_paths_never_leave_the_static_folder(proxy: Proxy, target: str) -> None:
    stream = await connect(proxy.url)
    async with stream:
        await stream.send_all(
            f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await read_until_closed(stream)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(head) in (308, 400, 404), (target, head)
    assert b"SECRET" not in body and b"root:" not in body, target
    if status_of(head) == 308:  # only the slash merge, to a path under /static/
        location = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"location:")
        )
        assert location.startswith(b"/static/"), location
