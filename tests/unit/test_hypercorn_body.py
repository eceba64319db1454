"""overrides/hypercorn_body.py leaves h11's connection exactly as h11's own send would.

Hypercorn's HTTP/1.1 protocol and h11 connection in this process (the protocol's socket send
recorded), one response streamed through `HTTPStream.app_send` on Hypercorn's path and on the
fast path, from every client state a chunk can be sent in: the request body still arriving
(an early answer), `Expect: 100-continue` unanswered, `Connection: close`, HTTP/1.0, a client
gone into ERROR. After every chunk and after the end, every piece of state h11 keeps must be
the same, and so must the bytes. (The wire on a real socket: tests/integration/
test_hypercorn_body.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h11
import pytest
from hypercorn.config import Config
from hypercorn.events import RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.trio.worker_context import WorkerContext

from quartproxy.overrides import hypercorn_body

CHUNKS = [b"event: delta\ndata: 1\n\n", b"", b"y" * 4096, bytearray(b"z"), b"last"]


def snapshot(connection: h11.Connection) -> dict[str, Any]:
    """Everything h11 keeps about the connection (the writer by type: a fresh object is made
    on every state change, so its type and, for Content-Length, its count are what matter)."""
    state = connection._cstate
    writer = connection._writer
    return {
        "states": dict(state.states),
        "keep_alive": state.keep_alive,
        "pending_switch_proposals": set(state.pending_switch_proposals),
        "our_state": connection.our_state,
        "their_state": connection.their_state,
        "writer": (type(writer), vars(writer) if writer is not None else None),
        "reader": type(connection._reader),
        "request_method": connection._request_method,
        "their_http_version": connection.their_http_version,
        "waiting_for_100_continue": connection.client_is_waiting_for_100_continue,
        "trailing_data": connection.trailing_data,
    }


async def stream_one(request: bytes, *, client_error: bool = False) -> list[Any]:
    """Serve one streamed response to `request`; a trace of (wire bytes, h11 state) after the
    start, after each chunk and after the end."""
    wire: list[bytes] = []

    async def send(event: Any) -> None:
        if type(event) is RawData:
            wire.append(event.data)

    config = Config()
    config.include_date_header = False
    config.accesslog = None
    protocol = H11Protocol(None, config, WorkerContext(None), None, None, False, None, None, send)  # type: ignore[arg-type]
    connection = protocol.connection
    assert isinstance(connection, h11.Connection)
    connection.receive_data(request)
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    connection.next_event()  # the body's first part, or the end, or NEED_DATA
    if client_error:
        connection.receive_data(b"\x00garbage that is no chunk size\r\n")
        with pytest.raises(h11.RemoteProtocolError):
            connection.next_event()
    stream = HTTPStream(
        None, config, WorkerContext(None), None, False, None, None, protocol.stream_send, 1
    )  # type: ignore[arg-type]
    stream.scope = {"method": event.method.decode().upper(), "http_version": "1.1"}  # type: ignore[typeddict-item]
    stream.start_time = 0.0  # read by the access log (none here) at the end
    trace = []
    await stream.app_send({"type": "http.response.start", "status": 200, "headers": []})
    trace.append((b"".join(wire), snapshot(connection)))
    for chunk in CHUNKS:
        wire.clear()
        message = {"type": "http.response.body", "body": chunk, "more_body": True}
        await stream.app_send(message)  # type: ignore[arg-type]
        trace.append((b"".join(wire), snapshot(connection)))
    wire.clear()
    await stream.app_send({"type": "http.response.body", "body": b"", "more_body": False})
    trace.append((b"".join(wire), snapshot(connection)))
    return trace


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    was = bool(hypercorn_body.ORIGINALS)
    yield
    if was:
        assert hypercorn_body.install()
    else:
        hypercorn_body.uninstall()


HOST = b"Host: t.example\r\n"
CASES = {
    "request done": b"GET / HTTP/1.1\r\n" + HOST + b"\r\n",
    "request body still arriving": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\nabc",
    "chunked request body arriving": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    "100-continue unanswered": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    "connection close": b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
    "HTTP/1.0": b"GET / HTTP/1.0\r\n" + HOST + b"\r\n",
    "HEAD": b"HEAD / HTTP/1.1\r\n" + HOST + b"\r\n",
    "lower-case head": b"head / HTTP/1.1\r\n" + HOST + b"\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_h11_state_and_bytes_are_the_same_on_both_paths(name: str) -> None:
    hypercorn_body.uninstall()
    stock = await stream_one(CASES[name])
    assert hypercorn_body.install()
    fast = await stream_one(CASES[name])
    assert fast == stock


async def test_a_client_in_error_changes_nothing_either() -> None:
    request = CASES["chunked request body arriving"]
    hypercorn_body.uninstall()
    stock = await stream_one(request, client_error=True)
    assert stock[1][1]["their_state"] is h11.ERROR
    assert hypercorn_body.install()
    assert await stream_one(request, client_error=True) == stock


async def test_the_chunks_are_framed_as_h11_frames_them() -> None:
    assert hypercorn_body.install()
    trace = await stream_one(CASES["request done"])
    assert [wire for wire, _ in trace[1:]] == [
        b"16\r\nevent: delta\ndata: 1\n\n\r\n",
        b"",
        b"1000\r\n" + b"y" * 4096 + b"\r\n",
        b"1\r\nz\r\n",
        b"4\r\nlast\r\n",
        b"0\r\n\r\n",
    ]
    # both DONE, so Hypercorn recycled the connection for the next request
    assert trace[-1][1]["states"] == {h11.CLIENT: h11.IDLE, h11.SERVER: h11.IDLE}
