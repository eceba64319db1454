"""overrides/hypercorn_read.py: Hypercorn's connection reader on plain TCP. The protocol must see
exactly the bytes the client sent, in order, then EOF and Closed; a reset or a socket closed
while waiting ends the reader with Closed (never an exception, never a hang); and a waiting
reader holds neither the previous read's bytes nor trio's receive machinery (the saving)."""

from __future__ import annotations

import socket
import types
from typing import Any

import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.trio.tcp_server import TCPServer

from quartproxy.overrides import hypercorn_read


class Server:
    """The attributes of Hypercorn's TCPServer that _read_data reads."""

    def __init__(self, stream: trio.abc.Stream, read_timeout: float | None = None) -> None:
        self.stream = stream
        self.config = Config()
        self.config.read_timeout = read_timeout
        self.events: list[Any] = []
        self.protocol = self
        self.handled = trio.Event()

    async def handle(self, event: Any) -> None:
        self.events.append(event)
        self.handled.set()

    def received(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, RawData))


def pair(read_timeout: float | None = None, tcp: bool = False) -> tuple[Server, socket.socket]:
    if tcp:  # loopback TCP: a reset is a reset (a Unix socketpair only ever ends with EOF)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            b = socket.create_connection(listener.getsockname())
            a, _ = listener.accept()
    else:
        a, b = socket.socketpair()
    return Server(trio.SocketStream(trio.socket.from_stdlib_socket(a)), read_timeout), b


async def read_data(server: Server) -> None:
    assert hypercorn_read.install()
    await TCPServer._read_data(server)  # type: ignore[arg-type]


async def handled(server: Server, count: int) -> None:
    with trio.fail_after(10):
        while len(server.events) < count:
            server.handled = trio.Event()
            await server.handled.wait()


def awaiting(coro: Any) -> list[str]:
    """The names of the coroutines and generators a task is suspended in, outermost first."""
    names = []
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is None:
            break
        names.append(code.co_name)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return names


async def test_bytes_arrive_in_order_then_eof_then_closed() -> None:
    server, peer = pair()
    big = bytes(range(256)) * 1024  # more than one 64 KiB read
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_data, server)
            peer.sendall(b"GET / HTTP/1.1\r\n\r\n")
            await handled(server, 1)
            assert server.received() == b"GET / HTTP/1.1\r\n\r\n"
            await trio.to_thread.run_sync(peer.sendall, big)
            peer.shutdown(socket.SHUT_WR)
    assert server.received() == b"GET / HTTP/1.1\r\n\r\n" + big
    assert server.events[-2:] == [RawData(b""), Closed()]
    peer.close()


async def test_a_reset_ends_the_reader_with_closed() -> None:
    server, peer = pair(tcp=True)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_data, server)
            peer.sendall(b"x")
            await handled(server, 1)
            peer.close()  # linger 0: RST
    assert server.events == [RawData(b"x"), Closed()]  # no EOF: the read failed


async def test_a_socket_closed_while_the_reader_waits_ends_it_with_closed() -> None:
    """Hypercorn's idle timer closes the stream from another task: the waiting reader must end
    (trio's notify_closing), as the original did with ClosedResourceError."""
    server, peer = pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_data, server)
            await trio.testing.wait_all_tasks_blocked()
            await server.stream.aclose()
    assert server.events == [Closed()]
    peer.close()


async def test_a_cancelled_reader_ends_at_once() -> None:
    server, peer = pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_data, server)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert server.events == []
    peer.close()


async def test_a_waiting_reader_keeps_no_bytes_and_no_receive_machinery() -> None:
    """What the override saves: Hypercorn's reader waits in fail_after(inf) → receive_some →
    recv → _nonblocking_helper with the last read's bytes still bound; this one waits in
    wait_readable, with `data` cleared."""
    server, peer = pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_data, server)
        peer.sendall(b"POST /api/v1/chat HTTP/1.1\r\n\r\n")
        await handled(server, 1)
        await trio.testing.wait_all_tasks_blocked()
        (task,) = [t for t in nursery.child_tasks if t.coro.cr_code.co_name == "read_data"]
        chain = awaiting(task.coro)
        assert "receive_some" not in chain and "_nonblocking_helper" not in chain, chain
        assert "wait_readable" in chain, chain
        frames = [task.coro.cr_await]
        while frames[-1] is not None and getattr(frames[-1], "cr_await", None) is not None:
            frames.append(frames[-1].cr_await)
        reader = frames[0]
        assert isinstance(reader, types.CoroutineType)
        assert reader.cr_frame.f_locals.get("data") is None  # the request is not kept
        nursery.cancel_scope.cancel()
    peer.close()


async def test_a_read_timeout_keeps_hypercorns_own_reader() -> None:
    """read_timeout set (not ours): the original, whose fail_after enforces it."""
    server, peer = pair(read_timeout=0.05)
    with trio.fail_after(10):
        await read_data(server)  # the timeout ends it
    assert server.events == [Closed()]
    peer.close()
