"""upstream.transport.PooledTransport against real sockets on 127.0.0.1.

The server is a few lines of raw trio TCP (TLS by trio.SSLStream and a trustme CA) whose
behaviour each test scripts per connection, so the pool's choices can be watched from the
server's side: how many connections were accepted, which connection carried which request,
when the client closed one. Waiting is on trio Events and on the kernel (a socket becoming
readable), never on sleeps; the only time limits are bounds (the pool timeout).

N8nClient over this transport is covered end to end by the other integration tests."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
import trustme

from quartproxy.upstream.transport import PooledTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
# A bound on each test, not a timing assertion: a transport that never gives a connection back
# or retries forever would otherwise hang the suite instead of failing it.
BOUND = 30


@dataclass
class Seen:
    conn: int  # which accepted connection carried it, from 0
    line: bytes  # the request line
    head: bytes
    body: bytes


class Peer:
    """The server's side of one connection."""

    def __init__(self, up: Upstream, stream: trio.abc.Stream, number: int) -> None:
        self.up = up
        self.stream = stream
        self.number = number
        self._buf = b""

    async def _receive(self) -> bytes:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.up.client_closed[self.number].set()
        return data

    async def request(self) -> Seen | None:
        """The next whole request, or None once the client closed the connection."""
        while b"\r\n\r\n" not in self._buf:
            data = await self._receive()
            if not data:
                return None
            self._buf += data
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = await self._receive()
            if not data:
                return None
            rest += data
        self._buf = rest[length:]
        seen = Seen(self.number, head.split(b"\r\n")[0], head, rest[:length])
        self.up.seen.append(seen)
        return seen

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def until_closed(self) -> None:
        """Read (and drop) whatever comes until the client closes the connection."""
        while await self._receive():
            pass

    async def serve(self, answer: bytes = OK) -> None:
        """Answer every request with `answer` until the client closes."""
        while await self.request() is not None:
            await self.send(answer)

    def reset_on_close(self) -> None:
        """Make the close send a TCP RST instead of a FIN."""
        sock = self.up.sockets[self.number]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class Upstream:
    script: Script
    tls: ssl.SSLContext | None = None
    port: int = 0
    accepted: int = 0
    seen: list[Seen] = field(default_factory=list)
    sockets: dict[int, trio.socket.SocketType] = field(default_factory=dict)
    client_closed: defaultdict[int, trio.Event] = field(
        default_factory=lambda: defaultdict(trio.Event)
    )
    server_closed: defaultdict[int, trio.Event] = field(
        default_factory=lambda: defaultdict(trio.Event)
    )
    tls_failures: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def lines(self) -> list[tuple[int, bytes]]:
        return [(s.conn, s.line) for s in self.seen]

    async def _connection(self, tcp: trio.SocketStream) -> None:
        number = self.accepted
        self.accepted += 1
        self.sockets[number] = tcp.socket
        stream: trio.abc.Stream = tcp
        try:
            if self.tls is not None:
                stream = trio.SSLStream(tcp, self.tls, server_side=True, https_compatible=True)
                try:
                    await stream.do_handshake()
                except trio.BrokenResourceError:
                    self.tls_failures += 1
                    return
            await self.script(Peer(self, stream, number))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)
            self.server_closed[number].set()


@asynccontextmanager
async def upstream(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    up = Upstream(script, tls)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, up._connection, 0, host="127.0.0.1")
        )
        up.port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(BOUND):
            yield up
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def pool(**options: Any) -> AsyncIterator[PooledTransport]:
    transport = PooledTransport(**options)
    try:
        yield transport
    finally:
        await transport.aclose()


async def fetch(
    transport: PooledTransport, url: str, method: str = "GET", content: bytes = b""
) -> httpx.Response:
    """One request, its body read to the end."""
    response = await transport.handle_async_request(
        httpx.Request(method, url, content=content or None)
    )
    await response.aread()
    return response


async def open_response(transport: PooledTransport, url: str) -> httpx.Response:
    """One request; the body is left to the caller (and the connection busy until then)."""
    return await transport.handle_async_request(httpx.Request("GET", url))


async def until_idle_connection_readable(transport: PooledTransport) -> None:
    """Until the kernel has something to read on the pool's one idle connection (the server's
    FIN, RST or stray bytes): the state the pool's check before reuse looks at."""
    ((conn,),) = [c for c in transport._idle.values() if c]
    assert isinstance(conn.stream, trio.SocketStream)
    await trio.lowlevel.wait_readable(conn.stream.socket)


@contextmanager
def upstream_log() -> Iterator[list[str]]:
    """The transport's log lines while inside (whatever logging set-up ran before)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("quartproxy.upstream")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def serve(peer: Peer) -> None:
    await peer.serve()


# -- keep-alive -------------------------------------------------------------------------------


async def test_sequential_requests_share_one_connection() -> None:
    async with upstream(serve) as up, pool() as transport:
        client = httpx.AsyncClient(transport=transport)
        first = await client.get(f"{up.url}/one")
        second = await client.post(f"{up.url}/two", content=b"payload")
        assert (first.status_code, first.content) == (200, b"ok")
        assert (second.status_code, second.content) == (200, b"ok")
        assert up.accepted == 1
        assert up.lines() == [(0, b"GET /one HTTP/1.1"), (0, b"POST /two HTTP/1.1")]
        assert up.seen[1].body == b"payload"
        assert (transport.open_connections, transport.idle_connections) == (1, 1)
        await client.aclose()  # closes the transport and its idle connection
        await up.client_closed[0].wait()
        assert transport.open_connections == 0


async def test_a_chunked_body_arrives_whole_and_the_connection_is_reused() -> None:
    pieces = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nfirs"]
    pieces += [b"t\r\n", b"7;x=1\r\n second\r\n0\r\nX-T: 1\r\n", b"\r\n"]

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            for piece in pieces:
                await peer.send(piece)

    async with upstream(script) as up, pool() as transport:
        for _ in range(2):
            response = await fetch(transport, up.url)
            assert response.content == b"first second"
        assert up.accepted == 1


async def test_the_connection_idle_the_shortest_time_is_reused_first() -> None:
    """LIFO: the warmest connection is reused, the others age out (n8n closes them at 5 s)."""
    held = Held(2)
    async with upstream(held) as up, pool() as transport:
        first = await open_response(transport, f"{up.url}/first")
        second = await open_response(transport, f"{up.url}/second")
        for n, response in ((0, first), (1, second)):
            held.release[n].set()
            await response.aread()
        assert transport.idle_connections == 2
        await fetch(transport, f"{up.url}/third")
        assert up.lines()[-1] == (1, b"GET /third HTTP/1.1")


async def test_the_request_arrives_as_sent() -> None:
    async with upstream(serve) as up, pool() as transport:
        client = httpx.AsyncClient(transport=transport)
        response = await client.post(
            f"{up.url}/webhook/chat?x=1", json={"a": "é"}, headers={"X-Request-ID": "req-1"}
        )
        assert response.status_code == 200
        (seen,) = up.seen
        assert seen.line == b"POST /webhook/chat?x=1 HTTP/1.1"
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in seen.head.split(b"\r\n")[1:])
        )
        assert headers[b"host"] == f"127.0.0.1:{up.port}".encode()
        assert headers[b"x-request-id"] == b"req-1"
        assert headers[b"content-length"] == str(len(seen.body)).encode()
        assert b"transfer-encoding" not in headers
        assert seen.body == '{"a":"é"}'.encode()


async def test_an_answer_to_head_has_no_body_and_keeps_the_connection() -> None:
    async def script(peer: Peer) -> None:
        while (seen := await peer.request()) is not None:
            if seen.line.startswith(b"HEAD "):
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                await peer.send(OK)

    async with upstream(script) as up, pool() as transport:
        head = await fetch(transport, up.url, "HEAD")  # it used to wait for 1234 bytes
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "1234"
        assert (await fetch(transport, up.url)).content == b"ok"
        assert up.accepted == 1


# -- connections the server closed ----------------------------------------------------------


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(OK)  # keep-alive by the headers, then the server closes

    async with upstream(script) as up, pool() as transport:
        assert (await fetch(transport, up.url)).content == b"ok"
        await up.server_closed[0].wait()
        await until_idle_connection_readable(transport)
        with upstream_log() as log:
            response = await fetch(transport, up.url)
        assert response.content == b"ok"
        assert up.accepted == 2
        assert up.lines() == [(0, b"GET / HTTP/1.1"), (1, b"GET / HTTP/1.1")]
        assert not any("retrying" in line for line in log)  # seen before use: nothing to retry


async def test_stray_bytes_on_an_idle_connection_make_it_unusable() -> None:
    poke = trio.Event()

    async def script(peer: Peer) -> None:
        if peer.number == 0:
            await peer.request()
            await peer.send(OK)
            await poke.wait()
            await peer.send(OK)  # an answer nobody asked for
            await peer.until_closed()
        else:
            await peer.serve()

    async with upstream(script) as up, pool() as transport:
        await fetch(transport, up.url)
        poke.set()
        await until_idle_connection_readable(transport)
        assert (await fetch(transport, up.url)).content == b"ok"
        await up.client_closed[0].wait()  # the pool closed the connection it did not trust
        assert up.accepted == 2


def closes_after_reading_the_second_request(close: str) -> Script:
    """Connection 0 answers one request, reads the next and closes without answering (the
    race the peer check cannot see: its keep-alive timer fired, or it died running it); every
    other connection serves normally."""

    async def script(peer: Peer) -> None:
        if peer.number == 0:
            await peer.request()
            await peer.send(OK)
            await peer.request()
            if close == "rst":
                peer.reset_on_close()
        else:
            await peer.serve()

    return script


def resends() -> dict[str, float]:
    from quartproxy import metrics

    return {a: metrics.N8N_RESENDS.labels(a)._value.get() for a in ("resent", "refused")}


@pytest.mark.parametrize("close", ["fin", "rst"])
async def test_an_idempotent_request_on_a_reused_connection_closed_unanswered_is_resent_once(
    close: str,
) -> None:
    async with upstream(closes_after_reading_the_second_request(close)) as up, pool() as transport:
        await fetch(transport, f"{up.url}/one")
        before = resends()
        with upstream_log() as log:
            response = await fetch(transport, f"{up.url}/two", "PUT", b"body")
        assert (response.status_code, response.content) == (200, b"ok")
        assert up.lines() == [
            (0, b"GET /one HTTP/1.1"),
            (0, b"PUT /two HTTP/1.1"),  # taken, never answered
            (1, b"PUT /two HTTP/1.1"),  # the one re-send: PUT is idempotent
        ]
        assert up.seen[2].body == b"body"
        assert sum("retrying" in line for line in log) == 1
        assert resends()["resent"] - before["resent"] == 1
        assert (transport.open_connections, transport.idle_connections) == (1, 1)


@pytest.mark.parametrize("close", ["fin", "rst"])
async def test_a_post_the_server_may_have_read_is_never_resent(close: str) -> None:
    """The workflow must run once: a POST whose bytes left this host on a reused connection
    that then closed unanswered fails (the visitor gets upstream_error), counted and logged."""
    async with upstream(closes_after_reading_the_second_request(close)) as up, pool() as transport:
        await fetch(transport, f"{up.url}/one")
        before = resends()
        with upstream_log() as log, pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, f"{up.url}/run", "POST", b"run the workflow")
        posts = [line for _, line in up.lines() if line.startswith(b"POST")]
        assert posts == [b"POST /run HTTP/1.1"]  # the server saw it once
        assert up.accepted == 1
        assert resends()["refused"] - before["refused"] == 1
        assert sum("not re-sent" in line for line in log) == 1
        assert transport.open_connections == 0


async def test_a_post_that_provably_never_left_is_resent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one safe re-send of a POST: the reused connection refused the first send(2) (the
    server's RST had arrived), so no byte of the request reached the server. The check
    before reuse, which would have seen the RST, is switched off to open the race."""

    async def script(peer: Peer) -> None:
        if peer.number == 0:
            await peer.request()
            await peer.send(OK)
            peer.reset_on_close()  # and close: an RST while the client's side is idle
        else:
            await peer.serve()

    async with upstream(script) as up, pool() as transport:
        await fetch(transport, f"{up.url}/one")
        await up.server_closed[0].wait()
        await until_idle_connection_readable(transport)
        monkeypatch.setattr("quartproxy.upstream.transport.Connection.peer_closed", lambda _: False)
        before = resends()
        response = await fetch(transport, f"{up.url}/run", "POST", b"run the workflow")
        assert response.content == b"ok"
        assert up.lines() == [(0, b"GET /one HTTP/1.1"), (1, b"POST /run HTTP/1.1")]
        assert resends()["resent"] - before["resent"] == 1


async def test_a_retry_that_fails_the_same_way_is_an_error_not_another_retry() -> None:
    async def script(peer: Peer) -> None:
        if peer.number == 0:
            await peer.request()
            await peer.send(OK)
        await peer.request()  # then close without answering, on every connection

    async with upstream(script) as up, pool() as transport:
        await fetch(transport, up.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, up.url)
        assert up.accepted == 2
        assert [conn for conn, _ in up.lines()] == [0, 0, 1]
        assert transport.open_connections == 0


@pytest.mark.parametrize("close", ["fin", "rst"])
async def test_a_new_connection_closed_without_an_answer_is_an_error(close: str) -> None:
    """On a fresh connection the server did see the request: sending it again could run the
    workflow twice."""

    async def script(peer: Peer) -> None:
        await peer.request()
        if close == "rst":
            peer.reset_on_close()

    async with upstream(script) as up, pool() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, up.url, "POST", b"run the workflow")
        assert up.accepted == 1
        assert len(up.seen) == 1
        assert transport.open_connections == 0


@pytest.mark.parametrize(
    "partial",
    [b"HTTP/1.1 2", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
    ids=["in-the-head", "in-the-body"],
)
async def test_a_reused_connection_cut_after_the_first_byte_is_not_retried(partial: bytes) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)
        await peer.request()
        await peer.send(partial)

    async with upstream(script) as up, pool() as transport:
        await fetch(transport, up.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, up.url)  # never closes the response: the body read did
        assert up.accepted == 1
        assert transport.open_connections == 0


# -- the cap on connections -----------------------------------------------------------------


class Held:
    """A script whose first `count` connections send a head and half a body, then wait for
    `release[n]` before sending the rest (and serving on), or for the client to close."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.release: defaultdict[int, trio.Event] = defaultdict(trio.Event)

    async def __call__(self, peer: Peer) -> None:
        if peer.number < self.count:
            await peer.request()
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    await peer.until_closed()  # the client sends nothing before the body ends
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                await self.release[peer.number].wait()
                nursery.cancel_scope.cancel()
            if peer.up.client_closed[peer.number].is_set():
                return
            await peer.send(b"cd")
        await peer.serve()


async def test_at_the_cap_a_request_waits_then_gets_pool_timeout() -> None:
    held = Held(2)
    async with upstream(held) as up, pool(max_connections=2, pool_timeout=0.2) as transport:
        first = await open_response(transport, up.url)
        second = await open_response(transport, up.url)
        assert transport.open_connections == 2
        with pytest.raises(httpx.PoolTimeout):
            await open_response(transport, up.url)
        assert up.accepted == 2  # the third never reached the server

        await first.aclose()  # closed early: its connection is closed, its slot free
        await up.client_closed[0].wait()
        assert transport.open_connections == 1
        assert (await fetch(transport, up.url)).content == b"ok"
        assert up.accepted == 3

        held.release[1].set()
        assert await second.aread() == b"abcd"
        assert transport.open_connections == 2
        assert transport.idle_connections == 2


async def test_a_waiting_request_gets_the_connection_a_finished_body_gives_back() -> None:
    held = Held(1)
    async with upstream(held) as up, pool(max_connections=1, pool_timeout=20) as transport:
        first = await open_response(transport, up.url)
        got: list[httpx.Response] = []

        async def waiter() -> None:
            got.append(await fetch(transport, up.url))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert transport.waiting == 1  # for the one connection
            held.release[0].set()
            assert await first.aread() == b"abcd"  # read to its end: the connection is free
        assert got[0].content == b"ok"  # and not PoolTimeout after its 20 s
        assert transport.open_connections == 1


async def test_at_the_cap_under_load_connections_are_handed_on_not_reopened() -> None:
    """Peak load at the cap: a freed connection goes to the request waiting for one, so the
    number of TCP connects stays at the cap (it used to be one new connection per request)."""
    async with upstream(serve) as up, pool(max_connections=3, pool_timeout=20) as transport:
        answers: list[bytes] = []

        async def one(i: int) -> None:
            answers.append((await fetch(transport, f"{up.url}/{i}", "POST", b"x")).content)

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(one, i)
        assert answers == [b"ok"] * 60
        assert len(up.seen) == 60  # every request ran once
        assert up.accepted == 3
        assert (transport.open_connections, transport.idle_connections) == (3, 3)


async def test_a_cancelled_waiter_is_not_handed_the_freed_connection() -> None:
    held = Held(1)
    async with upstream(held) as up, pool(max_connections=1, pool_timeout=20) as transport:
        first = await open_response(transport, up.url)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch, transport, up.url)
            await trio.testing.wait_all_tasks_blocked()
            assert transport.waiting == 1
            nursery.cancel_scope.cancel()  # the visitor left while waiting for a connection
        assert transport.waiting == 0
        held.release[0].set()
        assert await first.aread() == b"abcd"
        # kept for the next request, not handed to the request that is gone
        assert transport.open_connections == transport.idle_connections == 1
        assert (await fetch(transport, up.url)).content == b"ok"
        assert up.accepted == 1


async def test_idle_connections_to_another_origin_give_way_at_the_cap() -> None:
    async with (
        upstream(serve) as one,
        upstream(serve) as other,
        pool(max_connections=1, pool_timeout=20) as transport,
    ):
        assert (await fetch(transport, one.url)).content == b"ok"
        assert transport.idle_connections == 1
        assert (await fetch(transport, other.url)).content == b"ok"
        await one.client_closed[0].wait()  # the idle one was closed to make room
        assert (transport.open_connections, transport.idle_connections) == (1, 1)


# -- bodies closed early, cancellation ------------------------------------------------------


async def half_then_wait(peer: Peer) -> None:
    await peer.request()
    await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
    await peer.until_closed()


async def test_closing_a_response_early_closes_its_connection() -> None:
    async with upstream(half_then_wait) as up, pool() as transport:
        response = await open_response(transport, up.url)
        async for chunk in response.aiter_raw():
            assert chunk == b"0123456789"
            break
        await response.aclose()
        await up.client_closed[0].wait()
        assert (transport.open_connections, transport.idle_connections) == (0, 0)


async def test_cancelling_a_body_read_frees_the_connection_at_once() -> None:
    """Cancelled mid-body, the connection is closed and its slot freed there and then, even
    before (or without) the response being closed; closing it afterwards changes nothing."""
    async with upstream(half_then_wait) as up, pool() as transport:
        response = await open_response(transport, up.url)
        first = trio.Event()
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                async for _ in response.aiter_raw():
                    first.set()

            nursery.start_soon(read)
            await first.wait()
            await trio.testing.wait_all_tasks_blocked()  # blocked reading the rest
            nursery.cancel_scope.cancel()
        assert transport.open_connections == 0
        await up.client_closed[0].wait()
        await response.aclose()  # what N8nClient does in `finally`: no second release
        assert transport.open_connections == 0


async def test_cancelling_a_streamed_response_frees_the_connection() -> None:
    """The httpx way: `client.stream(...)` closes the response on the way out."""
    async with upstream(half_then_wait) as up, pool() as transport:
        client = httpx.AsyncClient(transport=transport)
        with trio.CancelScope() as scope:
            async with client.stream("GET", up.url) as response:
                async for _ in response.aiter_raw():
                    scope.cancel()  # the next read of the body is cancelled
        assert scope.cancelled_caught
        await up.client_closed[0].wait()
        assert transport.open_connections == 0


async def test_cancelling_the_wait_for_the_head_frees_the_connection() -> None:
    asked = trio.Event()

    async def silent(peer: Peer) -> None:
        await peer.request()
        asked.set()
        await peer.until_closed()

    async with upstream(silent) as up, pool() as transport:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch, transport, up.url)
            await asked.wait()  # the request went out; no answer comes
            nursery.cancel_scope.cancel()
        await up.client_closed[0].wait()
        assert transport.open_connections == 0


# -- responses that end the connection ------------------------------------------------------


async def test_connection_close_is_honoured() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

    async def script(peer: Peer) -> None:
        await peer.serve(answer)  # the server would carry on: the client must not

    async with upstream(script) as up, pool() as transport:
        assert (await fetch(transport, up.url)).content == b"ok"
        await up.client_closed[0].wait()
        assert (transport.open_connections, transport.idle_connections) == (0, 0)
        await fetch(transport, up.url)
        assert up.lines() == [(0, b"GET / HTTP/1.1"), (1, b"GET / HTTP/1.1")]


async def test_a_body_delimited_by_the_close_is_read_whole_and_not_reused() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await peer.send(b"part two")

    async with upstream(script) as up, pool() as transport:
        response = await fetch(transport, up.url)
        assert response.content == b"part one, part two"
        assert (transport.open_connections, transport.idle_connections) == (0, 0)
        await fetch(transport, up.url)
        assert up.accepted == 2


async def test_bytes_after_the_body_make_the_connection_unusable() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK + b"HTTP/1.1 200 OK\r\n")  # a second answer nobody asked for
        await peer.until_closed()

    async with upstream(script) as up, pool() as transport:
        assert (await fetch(transport, up.url)).content == b"ok"
        await up.client_closed[0].wait()
        assert transport.open_connections == 0


async def test_an_expired_idle_connection_is_closed_not_reused() -> None:
    async with upstream(serve) as up, pool(keepalive_expiry=0) as transport:
        await fetch(transport, up.url)
        await fetch(transport, up.url)
        await up.client_closed[0].wait()
        assert up.accepted == 2


async def test_closing_the_transport_closes_idle_and_finishing_connections() -> None:
    held = Held(1)
    async with upstream(held) as up:
        transport = PooledTransport()
        busy = await open_response(transport, up.url)
        await fetch(transport, up.url)  # a second connection, now idle
        await transport.aclose()
        await up.client_closed[1].wait()
        held.release[0].set()
        assert await busy.aread() == b"abcd"  # the body still arrives whole ...
        await up.client_closed[0].wait()  # ... and its connection is closed, not kept
        assert transport.open_connections == 0


# -- errors ---------------------------------------------------------------------------------


async def test_a_refused_connection_is_a_connect_error() -> None:
    with trio.socket.socket() as sock:  # bound, not listening: the kernel answers RST
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with pool() as transport:
            with pytest.raises(httpx.ConnectError):
                await fetch(transport, f"http://127.0.0.1:{port}/")
            assert transport.open_connections == 0


async def test_a_header_that_would_smuggle_a_request_is_refused_before_sending() -> None:
    async with upstream(serve) as up, pool() as transport:
        request = httpx.Request("GET", up.url, headers={"X-Id": "a\r\nGET /admin HTTP/1.1"})
        with pytest.raises(httpx.LocalProtocolError):
            await transport.handle_async_request(request)
        assert up.accepted == 0 and transport.open_connections == 0


async def test_an_unsupported_scheme() -> None:
    async with pool() as transport:
        with pytest.raises(httpx.UnsupportedProtocol):
            await fetch(transport, "ftp://127.0.0.1/")


# -- TLS ------------------------------------------------------------------------------------


@cache
def authority() -> trustme.CA:
    return trustme.CA()


def server_tls(*names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority().issue_cert(*names).configure_cert(context)
    return context


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority().configure_trust(context)
    return context


async def test_https_with_a_trusted_certificate_and_reuse() -> None:
    async with (
        upstream(serve, server_tls("127.0.0.1")) as up,
        pool(ssl_context=client_tls()) as transport,
    ):
        assert up.url.startswith("https://")
        for _ in range(3):
            assert (await fetch(transport, up.url)).content == b"ok"
        assert up.accepted == 1  # TLS records after the handshake do not look like a close


async def test_https_trusts_the_bundle_named_by_ssl_cert_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority().cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with upstream(serve, server_tls("127.0.0.1")) as up, pool() as transport:
        assert (await fetch(transport, up.url)).content == b"ok"


@pytest.mark.parametrize(
    ("names", "trusted"),
    [(("n8n.example.test",), True), (("127.0.0.1",), False)],
    ids=["wrong-host", "unknown-ca"],
)
async def test_https_with_a_certificate_not_for_us_is_a_connect_error(
    names: tuple[str, ...], trusted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    options: dict[str, Any] = {"ssl_context": client_tls()} if trusted else {}
    async with upstream(serve, server_tls(*names)) as up, pool(**options) as transport:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await fetch(transport, up.url)
        assert up.seen == []
        assert transport.open_connections == 0
