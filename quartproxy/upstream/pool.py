"""The connection pool under the upstream transport (transport.py).

Idle connections per origin on a LIFO stack (the warmest one is reused); a cap on all
connections (idle + busy + being opened); an idle expiry below the 5 s keep-alive timeout of
Node's HTTP server (n8n); and a check that an idle connection has not been closed by the peer
before it is reused. At the cap, requests wait in FIFO order, and a finished keep-alive
connection goes to the first one waiting for its origin: peak load keeps its connections
instead of paying a new TCP (and TLS) handshake per request.
"""

from __future__ import annotations

import os
import select
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
import trio

Origin = tuple[str, str, int]


@dataclass(eq=False, slots=True)  # one per open answer: no per-instance dict
class Connection:
    stream: trio.abc.Stream
    origin: Origin
    idle_since: float = field(default_factory=time.monotonic)

    def peer_closed(self) -> bool:
        """An idle connection that is readable has been closed by the peer (or carries bytes
        nobody asked for): either way it must not carry another request."""
        sock = _socket_of(self.stream)
        if sock is None:
            return False
        poller = select.poll()  # not select.select: it fails on descriptors above 1023
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


def _close_now(conn: Connection) -> None:
    """Close without waiting (no checkpoint): for the paths that cannot await."""
    stream = conn.stream
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    sock = _socket_of(stream)
    if sock is not None:
        sock.close()


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket if isinstance(stream, trio.SocketStream) else None


@dataclass(eq=False)
class _Waiter:
    """A request waiting at the cap: it is handed a connection to its origin, or a free slot."""

    origin: Origin
    done: trio.Event = field(default_factory=trio.Event)
    conn: Connection | None = None
    slot: bool = False


class ConnectionPool:
    """Keep-alive connections per origin under one cap (see the module doc)."""

    def __init__(
        self,
        *,
        max_connections: int = 1000,
        keepalive_expiry: float = 4.0,
        connect_timeout: float = 10.0,
        pool_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self._ssl_context = ssl_context
        self._open = 0  # connections (idle + busy + being opened), at most max_connections
        self._waiters: deque[_Waiter] = deque()  # FIFO: first come, first handed
        self._idle: dict[Origin, list[Connection]] = {}
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return sum(len(v) for v in self._idle.values())

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def _acquire(self, origin: Origin, wait: float) -> tuple[Connection, bool]:
        """A connection to `origin`: (connection, reused)."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self.keepalive_expiry and not conn.peer_closed():
                return conn, True
            await self._discard(conn)
        return await self._connect(origin, wait)

    async def _connect(self, origin: Origin, wait: float) -> tuple[Connection, bool]:
        """A new connection once one of `max_connections` is free, or a connection to `origin`
        that another request finished with meanwhile (PoolTimeout after `wait`)."""
        if self._closed:
            raise httpx.PoolTimeout("the transport is closed")
        if self._open >= self.max_connections:
            # idle connections hold slots too: at the cap the longest idle one (another
            # origin's: _acquire takes this origin's first) makes room instead of a wait that
            # no released slot would ever end
            idle = [conns for conns in self._idle.values() if conns]
            if idle:
                oldest = min(idle, key=lambda conns: conns[0].idle_since)
                await self._discard(oldest.pop(0))
        if self._open < self.max_connections and not self._waiters:
            self._open += 1
        else:
            waiter = _Waiter(origin)
            self._waiters.append(waiter)
            with trio.move_on_after(wait):
                try:
                    await waiter.done.wait()
                except BaseException:
                    self._abandon(waiter)
                    raise
            if not waiter.done.is_set():  # timed out (the scope caught the cancel)
                raise httpx.PoolTimeout("every upstream connection is busy")
            if waiter.conn is not None:
                return waiter.conn, True
            if not waiter.slot:  # woken by aclose
                raise httpx.PoolTimeout("the transport is closed")
        try:
            return Connection(await self._open_stream(origin), origin), False
        except BaseException:
            self._free_slot()
            raise

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter cancelled or timed out: out of the queue. If it was handed something in
        the same instant (trio does not interrupt a woken task, so this is defensive), that
        goes on to the next waiter: nothing is lost, nothing leaks."""
        if not waiter.done.is_set():
            self._waiters.remove(waiter)
            waiter.done.set()
        elif waiter.conn is not None:
            conn, waiter.conn = waiter.conn, None
            if not self._release(conn, True):
                _close_now(conn)  # cannot be kept (its slot is already freed): no await here
        elif waiter.slot:
            waiter.slot = False
            self._free_slot()

    async def _open_stream(self, origin: Origin) -> trio.abc.Stream:
        scheme, host, port = origin
        try:
            with trio.fail_after(self.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                if scheme == "https":
                    tls = trio.SSLStream(
                        stream, self._tls(), server_hostname=host, https_compatible=True
                    )
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    stream = tls
        except trio.TooSlowError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except (OSError, trio.BrokenResourceError) as exc:
            # trio wraps TLS failures in a BrokenResourceError with no text of its own: say why
            why = exc.__cause__ or exc
            raise httpx.ConnectError(
                f"cannot connect to {host}:{port}: {str(why) or type(why).__name__}"
            ) from None
        return stream

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            # httpx's defaults: certifi's bundle unless SSL_CERT_FILE names another
            import certifi

            self._ssl_context = ssl.create_default_context(
                cafile=os.environ.get("SSL_CERT_FILE") or certifi.where()
            )
        return self._ssl_context

    def _release(self, conn: Connection, reusable: bool) -> bool:
        """Give a finished connection back (True), else the caller must close it (its slot is
        freed here). A reusable one goes to the first request waiting for its origin (no new
        handshake at the cap), else to the idle stack; one that cannot be reused frees its
        slot for the first waiter."""
        if reusable and not self._closed:
            conn.idle_since = time.monotonic()
            for waiter in self._waiters:
                if waiter.origin == conn.origin:
                    self._waiters.remove(waiter)
                    waiter.conn = conn
                    waiter.done.set()
                    return True
            if not self._waiters:
                self._idle.setdefault(conn.origin, []).append(conn)
                return True
        # cannot be reused, or only requests to other origins wait: they need the slot
        self._free_slot()
        return False

    def _free_slot(self) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()  # the slot changes hands: _open stays
            waiter.slot = True
            waiter.done.set()
        else:
            self._open -= 1

    async def _discard(self, conn: Connection) -> None:
        self._free_slot()
        await conn.close()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await self._discard(conn)
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:  # neither a connection nor a slot: PoolTimeout
            waiter.done.set()
