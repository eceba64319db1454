"""The transport under the n8n client: HTTP/1.1 keep-alive connections on trio streams.

It plugs into httpx as an `AsyncBaseTransport`, so the client code, its error mapping and the
tests' mock transports stay plain httpx; only the bytes on the wire are handled here, by
core.http1. Why not httpx's default transport: see core/http1.py — on the benchmark it was the
largest single cost of a chat turn, and its pool bookkeeping grows with the square of the open
connections (encode/httpcore#1035), which this project first had to work around by sharding the
pool (gone since this transport replaced httpcore; docs/benchmarks.md, "What was done").

The pool (idle stacks, the cap, expiry, hand-over to waiting requests) is pool.py.

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
from collections.abc import AsyncIterator

import httpx
import trio

from .. import metrics
from ..core.http1 import Head, ProtocolError, ResponseReader, encode_request
from .pool import Connection, ConnectionPool, Origin
from .upload_body import UploadBody

__all__ = ["Connection", "PooledTransport"]

log = logging.getLogger("quartproxy.upstream")

READ_SIZE = 65536
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 §9.2.2


def _replayable(request: httpx.Request) -> bool:
    return request.method in IDEMPOTENT or any(
        name in request.headers for name in ("idempotency-key", "x-idempotency-key")
    )


class PooledTransport(ConnectionPool, httpx.AsyncBaseTransport):
    """The pool (pool.py) as an httpx transport: one request/response exchange."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        pool_timeout = timeouts.get("pool") or self.pool_timeout
        # A body with files is streamed after the head (upload_body.py), never read whole.
        streamed = request.stream if isinstance(request.stream, UploadBody) else None
        try:
            if streamed is not None:
                fields, size = request.headers.raw, streamed.length
                wire = encode_request(request.method, url.raw_path, fields, b"", length=size)
            else:
                body = await request.aread()
                wire = encode_request(request.method, url.raw_path, request.headers.raw, body)
        except ValueError as exc:  # an httpx error, as h11 gave, not a bare ValueError
            raise httpx.LocalProtocolError(str(exc)) from None
        conn, reused = await self._acquire(origin, pool_timeout)
        resent = False
        while True:
            reader = ResponseReader(head_request=request.method == "HEAD")
            try:
                head = await _exchange(conn, wire, reader, streamed)
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


async def _receive(stream: trio.abc.Stream) -> bytes | bytearray:
    """`receive_some(READ_SIZE)`, without its exception on plain TCP. trio's `receive_some`
    tries recv(2) first, which on a streamed answer finds nothing yet (n8n writes one token
    every ~20 ms): a BlockingIOError raised and caught inside two context managers, then the
    wait for readability and a second recv(2), per delta. Here: wait for readability (a full
    checkpoint: cancellable, always yields), then one read. A few µs per delta (within the
    noise of bench/paced.py's delta_cost). Only one task ever reads a connection (the pool
    hands it to one exchange at a time), which is what trio's conflict detector checks."""
    if _RAW_READ and type(stream) is trio.SocketStream:
        sock = stream.socket
        await trio.lowlevel.wait_readable(sock)
        try:
            return os.read(sock.fileno(), READ_SIZE)
        except BlockingIOError:  # woken without data (spurious): trio's own path
            pass
    return await stream.receive_some(READ_SIZE)


_RAW_READ = os.name == "posix"  # os.read on a socket's descriptor


async def _exchange(
    conn: Connection, wire: bytes, reader: ResponseReader, body: UploadBody | None = None
) -> Head:
    got_any = False
    try:
        await _send(conn.stream, wire)
        if body is not None:
            async for chunk in body:
                await conn.stream.send_all(chunk)
        while True:
            head = reader.head()
            if head is not None:
                return head
            data = await _receive(conn.stream)
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
                got = await _receive(conn.stream)
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
