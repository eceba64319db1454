"""overrides/hypercorn_send.py: Hypercorn's socket write tried once directly. What a client
reads must be exactly what Hypercorn sent, in order, whatever the kernel takes at once; a write
in progress is never overtaken; a closed peer is reported to Hypercorn as before."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypercorn.events import Closed, RawData
from hypercorn.trio.tcp_server import TCPServer

from quartproxy.overrides import hypercorn_send


class Server:
    """The attributes of Hypercorn's TCPServer that protocol_send reads."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.send_lock = trio.Lock()
        self.closed: list[Any] = []
        self.protocol = self

    async def handle(self, event: Any) -> None:
        self.closed.append(event)


def pair(sndbuf: int | None = None) -> tuple[Server, socket.socket]:
    a, b = socket.socketpair()
    if sndbuf is not None:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return Server(trio.SocketStream(trio.socket.from_stdlib_socket(a))), b


async def read(peer: socket.socket, n: int) -> bytes:
    peer.setblocking(False)
    got = bytearray()
    with trio.fail_after(10):
        while len(got) < n:
            await trio.lowlevel.wait_readable(peer)
            got += peer.recv(1 << 20)
    return bytes(got)


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    """Installed for these tests, whatever ran before; Hypercorn's own send restored after (the
    app installs the fast path again when it is built: factory.py)."""
    assert hypercorn_send.install()
    yield
    TCPServer.protocol_send = hypercorn_send.ORIGINALS["TCPServer.protocol_send"]  # type: ignore[method-assign]


async def test_a_write_the_kernel_takes_is_made_at_once_and_never_reported_cancelled() -> None:
    """Hypercorn's path takes its lock first, which raises Cancelled in a cancelled scope; the
    fast path writes before any checkpoint, and its one yield is shielded."""
    server, peer = pair()
    with trio.CancelScope() as scope:
        scope.cancel()
        await TCPServer.protocol_send(server, RawData(data=b"event: delta\n\n"))  # type: ignore[arg-type]
    assert not scope.cancelled_caught
    assert await read(peer, 14) == b"event: delta\n\n"


async def test_the_fast_path_still_lets_the_connections_reader_run() -> None:
    """One pass through the scheduler per write: without it an app answering before its
    request body was read finished ahead of Hypercorn's reader, which then closed the
    keep-alive connection under the client (seen in tests/integration/test_api_clients.py)."""
    server, peer = pair()
    with pytest.raises(AssertionError, match="yielded"), trio.testing.assert_no_checkpoints():
        await TCPServer.protocol_send(server, RawData(data=b"x"))  # type: ignore[arg-type]
    assert await read(peer, 1) == b"x"


async def test_what_the_kernel_does_not_take_goes_through_hypercorns_path_in_order() -> None:
    server, peer = pair(sndbuf=4096)
    data = bytes(range(256)) * 4096  # 1 MiB: far more than the socket buffer
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await read(peer, len(data)))

    async with trio.open_nursery() as outer, trio.open_nursery() as senders:
        senders.start_soon(TCPServer.protocol_send, server, RawData(data=data))
        await trio.testing.wait_all_tasks_blocked()  # part written, the rest waits
        senders.start_soon(TCPServer.protocol_send, server, RawData(data=b"after"))
        await trio.testing.wait_all_tasks_blocked()
        senders.cancel_scope.cancel()  # the rest of the chunk is written even so
        outer.start_soon(reader)
    assert got == [data]
    await TCPServer.protocol_send(server, RawData(data=b"next"))  # type: ignore[arg-type]
    assert await read(peer, 4) == b"next"  # the framing is intact for what follows


async def test_a_write_in_progress_is_not_overtaken() -> None:
    server, peer = pair()
    await server.send_lock.acquire()  # another task is in the middle of a write
    async with trio.open_nursery() as nursery:
        nursery.start_soon(TCPServer.protocol_send, server, RawData(data=b"second"))
        await trio.testing.wait_all_tasks_blocked()
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)  # nothing written past the lock
        await server.stream.send_all(b"first ")
        server.send_lock.release()
    assert await read(peer, 12) == b"first second"


async def test_a_closed_peer_is_reported_to_hypercorn() -> None:
    server, peer = pair()
    peer.close()
    await TCPServer.protocol_send(server, RawData(data=b"x" * 100))  # type: ignore[arg-type]
    assert [type(e) for e in server.closed] == [Closed]
