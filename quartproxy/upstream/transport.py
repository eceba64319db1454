"""The transport under the n8n client: HTTP/1.1 keep-alive connections on trio streams.

It plugs into httpx as an `AsyncBaseTransport`, so the client code, its error mapping and the
tests' mock transports stay plain httpx; only the bytes on the wire are handled here, by
core.http1. Why not httpx's default transport: see core/http1.py — on the benchmark it was the
largest single cost of a chat turn, and its pool bookkeeping grows with the square of the open
connections (encode/httpcore#1035), which had to be worked around with 32 sharded pools.

The pool: idle connections per origin on a LIFO stack (the warmest one is reused), a cap on
all connections (idle + busy) enforced by a semaphore, an idle expiry below the 5 s keep-alive
timeout of Node's HTTP server (n8n), and a check that an idle connection has not been closed
by the peer before it is reused.

Re-sending (RFC 9110 §9.2.2, and the rule of Go's net/http): when a reused connection closes
before any byte of the answer, nobody can tell whether the server closed it while idle (the
request never arrived) or read the request and died running it. So a request is sent again,
once, on a new connection only when that is safe:
- its method is idempotent (or it carries an Idempotency-Key, as Go allows), or
- it provably never reached the server: the connection refused the very first send(2) of the
  request, so not one byte left this host. A write that fails later proves nothing (bytes the
  kernel accepted may have arrived), and a TLS stream may have sent records before failing.
The chat POST to n8n is neither: it is not re-sent, it fails as `upstream_error` (counted in
quartproxy_n8n_resends_total{action="refused"}), and a workflow never runs twice. Stale
connections are avoided before sending instead: the idle expiry below n8n's 5 s keep-alive
and the readability check just before reuse.
"""

from __future__ import annotations

import logging
import os
import select
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import trio

from .. import metrics
from ..core.http1 import Head, ProtocolError, ResponseReader, encode_request

log = logging.getLogger("quartproxy.upstream")

READ_SIZE = 65536
Origin = tuple[str, str, int]
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 §9.2.2


def _replayable(request: httpx.Request) -> bool:
    return request.method in IDEMPOTENT or any(
        name in request.headers for name in ("idempotency-key", "x-idempotency-key")
    )


@dataclass(eq=False)
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


class PooledTransport(httpx.AsyncBaseTransport):
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

    # -- pool ------------------------------------------------------------------------------

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

    # -- one exchange ----------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        pool_timeout = timeouts.get("pool") or self.pool_timeout
        body = await request.aread()
        try:
            wire = encode_request(request.method, url.raw_path, request.headers.raw, body)
        except ValueError as exc:  # an httpx error, as h11 gave, not a bare ValueError
            raise httpx.LocalProtocolError(str(exc)) from None
        conn, reused = await self._acquire(origin, pool_timeout)
        resent = False
        while True:
            reader = ResponseReader(head_request=request.method == "HEAD")
            try:
                head = await _exchange(conn, wire, reader)
            except _StaleConnection as stale:
                await self._discard(conn)
                if not reused or resent:
                    raise httpx.RemoteProtocolError(
                        "the upstream closed the connection without answering"
                    ) from None
                if not (stale.nothing_sent or _replayable(request)):
                    metrics.n8n_resend(False)
                    log.warning(
                        "upstream closed a reused connection before answering a %s; not "
                        "re-sent: it may have been processed",
                        request.method,
                    )
                    raise httpx.RemoteProtocolError(
                        "the upstream closed the connection without answering"
                    ) from None
                metrics.n8n_resend(True)
                log.info("upstream closed an idle connection as it was reused; retrying once")
                conn, reused = await self._connect(origin, pool_timeout)
                resent = True
                continue
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._discard(conn)
                raise
            break
        # No request=, like httpx's own transports (its client sets it): an open answer would
        # keep the request (headers, JWT, body) for as long as it streams.
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=_Body(self, conn, reader),
            extensions={"http_version": b"HTTP/1.1"},
        )


class _StaleConnection(Exception):
    """Closed before any byte of the answer; `nothing_sent`: not one byte of the request left."""

    def __init__(self, nothing_sent: bool = False) -> None:
        super().__init__()
        self.nothing_sent = nothing_sent


async def _send(stream: trio.abc.Stream, wire: bytes) -> None:
    """send_all, but on plain TCP the first send(2) is made here: if it fails, the kernel
    took no byte of the request, which proves the server never saw it (see the module doc)."""
    if isinstance(stream, trio.SocketStream):
        try:
            sent = await stream.socket.send(wire)
        except OSError as exc:
            raise _StaleConnection(nothing_sent=True) from exc
        if sent == len(wire):
            return
        wire = wire[sent:]
    await stream.send_all(wire)


async def _exchange(conn: Connection, wire: bytes, reader: ResponseReader) -> Head:
    got_any = False
    try:
        await _send(conn.stream, wire)
        while True:
            head = reader.head()
            if head is not None:
                return head
            data = await conn.stream.receive_some(READ_SIZE)
            if not data:
                if not got_any:
                    raise _StaleConnection()
                reader.eof()
                continue
            got_any = True
            reader.feed(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        if not got_any:
            raise _StaleConnection() from exc
        raise httpx.ReadError(f"upstream connection failed: {type(exc).__name__}") from None
    except ProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from None


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives: everything decodable from one socket read in one
    piece. At its end the connection goes back to the pool; closed early, failed or
    cancelled, it is closed."""

    def __init__(self, pool: PooledTransport, conn: Connection, reader: ResponseReader) -> None:
        self._pool = pool
        self._conn: Connection | None = conn
        self._reader = reader

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, reader = self._conn, self._reader
        if conn is None:
            return
        try:
            data = reader.body()  # what came with the head
            while True:
                if data:
                    yield data
                if reader.complete:
                    break
                got = await conn.stream.receive_some(READ_SIZE)
                if got:
                    reader.feed(got)
                else:
                    reader.eof()
                data = reader.body()
        except BaseException as exc:
            # failed, cancelled or abandoned mid-body: the connection is in an unknown state,
            # so it is closed and its slot freed now, not only when the response is closed
            await self.aclose()
            if isinstance(exc, ProtocolError):
                raise httpx.RemoteProtocolError(str(exc)) from None
            if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
                raise httpx.ReadError(f"upstream connection failed: {type(exc).__name__}") from None
            raise
        self._conn = None
        if not self._pool._release(conn, reader.reusable):
            await conn.close()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:  # not read to its end: the connection is in an unknown state
            await self._pool._discard(conn)
