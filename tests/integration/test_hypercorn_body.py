"""overrides/hypercorn_body.py: a streamed HTTP/1.1 body chunk framed once, past h11.

What a client reads must be byte for byte what Hypercorn and h11 would have sent, on one
keep-alive connection through every kind of response the fast path must leave alone (a
Content-Length body, HEAD, a lower-case `head`, 204, an HTTP/1.0 client, a body that is not
`bytes`, an empty chunk, the last message), and the connection must be reusable after it. A
real Hypercorn on loopback, raw bytes on the socket, both paths in one test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import h11
import pytest
import trio

from quartproxy.overrides import hypercorn_body
from tests.raw_http import READ_SECONDS, connect, read_until_closed
from tests.support import served

CHUNKS: list[bytes | bytearray] = [
    b"event: delta\ndata: first\n\n",
    b"",  # an empty chunk: nothing on the wire (it would read as the end)
    bytearray(b"data: not bytes\n\n"),  # not `bytes`: Hypercorn's path converts it
    b"x" * 70000,  # a length of five hex digits
    b"data: last delta\n\n",
]
TAIL = b"data: tail\n\n"  # the final message carries a body too
SIZE = sum(len(c) for c in CHUNKS) + len(TAIL)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-type", b"text/event-stream")]
    if scope["path"] == "/sized":
        headers.append((b"content-length", str(SIZE).encode()))
    status = 204 if scope["path"] == "/nothing" else 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for body in CHUNKS:
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": TAIL, "more_body": False})


# (method, path) on one keep-alive connection, then an HTTP/1.0 request that closes it
REQUESTS = [
    (b"GET", b"/stream"),
    (b"GET", b"/sized"),
    (b"HEAD", b"/stream"),
    (b"head", b"/stream"),  # h11 frames by the method as sent, Hypercorn by the upper-cased one
    (b"GET", b"/nothing"),
    (b"GET", b"/stream"),  # and streaming again on the same connection
]


@pytest.fixture
def count_h11_data(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many body chunks went through h11's `Connection.send` (one count per request)."""
    counts = [0]
    original = h11.Connection.send_with_data_passthrough

    def counting(self: h11.Connection, event: Any) -> Any:
        if type(event) is h11.Data and self.our_role is h11.SERVER:
            counts[-1] += 1
        return original(self, event)

    monkeypatch.setattr(h11.Connection, "send_with_data_passthrough", counting)
    return counts


@pytest.fixture
def restore() -> Iterator[None]:
    """The app factory installs the fast path for the whole process: leave it as found."""
    was = bool(hypercorn_body.ORIGINALS)
    yield
    if was:
        assert hypercorn_body.install()
    else:
        hypercorn_body.uninstall()


async def one_response(stream: trio.SocketStream, client: h11.Connection) -> bytes:
    """The raw bytes of one response, ended where an HTTP/1.1 client ends it."""
    wire = bytearray()
    with trio.fail_after(READ_SECONDS):
        while True:
            event = client.next_event()
            if type(event) is h11.EndOfMessage:
                return bytes(wire)
            if event is h11.NEED_DATA:
                data = await stream.receive_some(1 << 20)
                assert data, f"closed mid-response: {bytes(wire)!r}"
                wire += data
                client.receive_data(data)


async def conversation(url: str, counts: list[int]) -> list[bytes]:
    """Every response of REQUESTS on one connection, then the HTTP/1.0 one until the close."""
    stream = await connect(url)
    client = h11.Connection(h11.CLIENT)
    wires = []
    async with stream:
        for method, path in REQUESTS:
            counts.append(0)
            request = h11.Request(method=method, target=path, headers=[("Host", "t.example")])
            await stream.send_all(client.send(request) + client.send(h11.EndOfMessage()))
            wires.append(await one_response(stream, client))
            client.start_next_cycle()  # raises unless the server kept the connection open
        counts.append(0)
        await stream.send_all(b"GET /stream HTTP/1.0\r\nHost: t.example\r\n\r\n")
        wires.append(await read_until_closed(stream))
    return wires


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with served(app, include_date_header=False) as base:
        yield base


async def test_the_fast_path_sends_what_hypercorn_and_h11_send(
    url: str, count_h11_data: list[int], restore: None
) -> None:
    hypercorn_body.uninstall()
    stock = await conversation(url, count_h11_data)
    stock_counts = count_h11_data[1:]
    count_h11_data[:] = [0]
    assert hypercorn_body.install()
    fast = await conversation(url, count_h11_data)
    fast_counts = count_h11_data[1:]

    assert fast == stock
    streamed = stock[0]
    assert streamed.startswith(b"HTTP/1.1 200 \r\n")
    assert b"Transfer-Encoding: chunked\r\n" in streamed
    assert streamed.endswith(
        b"\r\n\r\n1a\r\nevent: delta\ndata: first\n\n\r\n11\r\ndata: not bytes\n\n\r\n"
        + b"11170\r\n"
        + b"x" * 70000
        + b"\r\n12\r\ndata: last delta\n\n\r\n"
        + b"c\r\ndata: tail\n\n\r\n0\r\n\r\n"
    )
    assert stock[1].endswith(b"\r\n\r\n" + b"".join(CHUNKS) + TAIL)  # Content-Length: as is
    assert stock[2].endswith(b"\r\n\r\n") and b"\r\n\r\n" not in stock[2][:-4]  # HEAD: no body
    assert stock[3].endswith(b"\r\n\r\n0\r\n\r\n")  # `head`: an empty chunked body
    assert stock[4].startswith(b"HTTP/1.1 204 ")
    assert stock[5] == stock[0]
    assert stock[6].endswith(b"\r\n\r\n" + b"".join(CHUNKS) + TAIL)  # HTTP/1.0: until close

    # h11 framed every non-empty chunk on Hypercorn's path; on the fast path only what it must
    # (the bytearray and the last message of each chunked stream, the Content-Length and
    # HTTP/1.0 bodies): the `bytes` chunks of a chunked stream never reached it.
    assert stock_counts == [5, 5, 0, 0, 0, 5, 5]
    assert fast_counts == [2, 5, 0, 0, 0, 2, 5]
