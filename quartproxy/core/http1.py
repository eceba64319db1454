"""HTTP/1.1 for the one client the proxy is: requests out, responses in. Sans-IO.

Why by hand and not h11: the upstream call is the proxy's hot path, and httpx's default stack
(httpcore + h11) cost about 30 % of a worker's CPU per chat turn on the benchmark
(docs/benchmarks.md), much of it per-event object churn in h11 and per-chunk bookkeeping in
httpcore, plus a pool whose cost grows with the square of its open connections. The proxy only ever
talks to one kind of peer (n8n, or a reverse proxy in front of it) with one kind of exchange
(a request with a known body, a response read to its end), which is a small, well-specified
part of RFC 9112. This module is that part, strict where framing is at stake, tested against
h11 as an oracle (tests/unit/test_http1*.py).

`ResponseReader` takes bytes as they arrive and gives back the head, then the body already
de-chunked — everything decodable so far in one piece, so a burst of n8n chunks becomes one
read for the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE = 1024  # a chunk-size line with extensions; anything longer is an attack
MAX_TRAILER_BYTES = 16 * 1024

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing; the connection cannot be trusted any more."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values stripped, in order

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


def encode_request(
    method: str,
    target: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    *,
    length: int | None = None,
) -> bytes:
    """One request as bytes. The caller supplies Host; Content-Length is set from the body
    (any given one is replaced) and Transfer-Encoding is never sent. Header names and values
    are checked: a CR or LF in them would let a value smuggle a second request. `length`:
    only the head is encoded (`body` must be empty), for a body of that many bytes sent after."""
    if length is not None and body:
        raise ValueError("a streamed body is sent after the head")
    if not _TOKEN.fullmatch(method.encode("ascii", "replace")):
        raise ValueError("invalid method")
    if not target or any(c in target for c in b" \r\n\0"):
        raise ValueError("invalid request target")
    out = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target)]
    for name, value in headers:
        lname = name.lower()
        if lname in (b"content-length", b"transfer-encoding"):
            continue
        if not _TOKEN.fullmatch(name):
            raise ValueError("invalid header name")
        if any(c in value for c in b"\r\n\0"):
            raise ValueError("invalid header value")
        out.append(b"%s: %s\r\n" % (name, value))
    if length is not None:
        out.append(b"content-length: %d\r\n" % length)
    elif body or method not in ("GET", "HEAD"):
        out.append(b"content-length: %d\r\n" % len(body))
    out.append(b"\r\n")
    out.append(body)
    return b"".join(out)


# body framing
_NONE, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
# chunked sub-states
_SIZE, _DATA, _DATA_CRLF, _TRAILERS = range(4)


class ResponseReader:
    """One response. Call `feed` with bytes as they arrive, `head()` until it returns the
    head (interim 1xx responses are skipped), then `body()` for the de-chunked bytes available
    so far; `complete` says the body has ended, and `eof()` tells the reader the peer closed
    the connection. For the answer to a HEAD request pass `head_request=True`: it has no body,
    whatever its Content-Length says."""

    # one per open answer stream (thousands per worker): no per-instance dict
    __slots__ = (
        "_buf",
        "_chunk_state",
        "_complete",
        "_eof",
        "_framing",
        "_head",
        "_head_request",
        "_keep_alive",
        "_left",
    )

    def __init__(self, *, head_request: bool = False) -> None:
        self._head_request = head_request
        self._buf = bytearray()
        self._head: Head | None = None
        self._framing = _NONE
        self._left = 0  # bytes left in a sized body or in the current chunk
        self._chunk_state = _SIZE
        self._complete = False
        self._eof = False
        self._keep_alive = True

    # -- input -----------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray) -> None:
        if self._eof:
            raise ProtocolError("data after end of input")
        self._buf += data

    def eof(self) -> None:
        """The peer closed its side. Ends a body read until close; anything else that was
        not complete was cut off (ProtocolError on the next `head()`/`body()` call)."""
        self._eof = True

    # -- output ----------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def reusable(self) -> bool:
        """The connection can carry another request: this response ended cleanly, framed by
        length or chunks, the peer did not ask to close, and it sent nothing more."""
        return self._complete and self._keep_alive and not self._buf and not self._eof

    def head(self) -> Head | None:
        if self._head is not None:
            return self._head
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                # up to 3 bytes of the terminator may already be here: a head at the limit
                # must not be refused only because a read cut its final CRLFCRLF
                if len(self._buf) > MAX_HEAD_BYTES + 3:
                    raise ProtocolError("response head too large")
                if self._eof:
                    raise ProtocolError("connection closed before the response head")
                return None
            if end > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            raw = bytes(self._buf[:end])
            del self._buf[: end + 4]
            head, http10 = _parse_head(raw)
            if 100 <= head.status < 200:
                if head.status == 101:
                    raise ProtocolError("unexpected protocol switch")
                continue  # interim response (100 Continue, 103 Early Hints): the real one follows
            self._head = head
            self._set_framing(head, http10)
            return head

    def body(self) -> bytes:
        """De-chunked body bytes available now (b"" if none yet, or the body has ended)."""
        if self._head is None:
            raise RuntimeError("body() before head()")
        if self._complete:
            return b""
        if self._framing == _UNTIL_CLOSE:
            out = bytes(self._buf)
            self._buf.clear()
            if self._eof:
                self._complete = True
            return out
        if self._framing == _LENGTH:
            n = min(self._left, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            self._left -= n
            if self._left == 0:
                self._complete = True
            elif self._eof:
                raise ProtocolError("connection closed before the end of the body")
            return out
        out = self._dechunk()
        if not self._complete and self._eof:
            raise ProtocolError("connection closed inside a chunked body")
        return out

    # -- internals -------------------------------------------------------------------------

    def _set_framing(self, head: Head, http10: bool) -> None:
        connection = b",".join(head.get_all(b"connection")).lower()
        tokens = {t.strip() for t in connection.split(b",")}
        # "close" ends the connection in either version (RFC 9112 9.6); HTTP/1.0 also needs
        # the opt-in "keep-alive"
        self._keep_alive = b"close" not in tokens and (not http10 or b"keep-alive" in tokens)
        if self._head_request or head.status in (204, 304):
            self._framing = _NONE
            self._complete = True
            return
        te = head.get_all(b"transfer-encoding")
        if te:
            if http10:
                # RFC 9112 6.1: HTTP/1.0 has no transfer codings, so the framing is faulty and
                # the response must be discarded (read raw, it would hand chunk sizes on as body)
                raise ProtocolError("Transfer-Encoding in an HTTP/1.0 response")
            codings = [c.strip().lower() for c in b",".join(te).split(b",") if c.strip()]
            if not codings or codings[-1] != b"chunked":
                # RFC 9112 6.3: a final coding other than chunked means "read until close"
                self._framing = _UNTIL_CLOSE
                self._keep_alive = False
            else:
                if b"chunked" in codings[:-1]:
                    raise ProtocolError("chunked applied twice")
                if len(codings) > 1:
                    raise ProtocolError("unsupported transfer coding")
                self._framing = _CHUNKED
            # A Content-Length beside Transfer-Encoding is ignored, and the connection is not
            # reused: the two framings disagreeing is how responses get smuggled.
            if head.get(b"content-length") is not None:
                self._keep_alive = False
            return
        lengths = head.get_all(b"content-length")
        if lengths:
            values = {v.strip() for v in b",".join(lengths).split(b",")}
            if len(values) != 1:
                raise ProtocolError("conflicting Content-Length values")
            (value,) = values
            if not value.isdigit() or len(value) > 18:
                raise ProtocolError("invalid Content-Length")
            self._framing = _LENGTH
            self._left = int(value)
            if self._left == 0:
                self._complete = True
            return
        self._framing = _UNTIL_CLOSE
        self._keep_alive = False

    def _dechunk(self) -> bytes:
        out: list[bytes] = []
        buf = self._buf
        pos = 0
        try:
            while True:
                state = self._chunk_state
                if state == _DATA:
                    n = min(self._left, len(buf) - pos)
                    if n == 0:
                        break
                    out.append(bytes(buf[pos : pos + n]))
                    pos += n
                    self._left -= n
                    if self._left == 0:
                        self._chunk_state = _DATA_CRLF
                elif state == _SIZE:
                    end = buf.find(b"\r\n", pos)
                    # the limit holds for a line that arrived whole as for one still arriving
                    # (which may already hold the CR of its CRLF)
                    if end < 0:
                        if len(buf) - pos > MAX_CHUNK_LINE + 1:
                            raise ProtocolError("chunk size line too long")
                        break
                    if end - pos > MAX_CHUNK_LINE:
                        raise ProtocolError("chunk size line too long")
                    m = _CHUNK_SIZE.fullmatch(buf, pos, end)
                    if m is None:
                        raise ProtocolError("invalid chunk size line")
                    size = int(m.group(1), 16)
                    pos = end + 2
                    if size == 0:
                        self._chunk_state = _TRAILERS
                    else:
                        self._left = size
                        self._chunk_state = _DATA
                elif state == _DATA_CRLF:
                    if len(buf) - pos < 2:
                        break
                    if buf[pos : pos + 2] != b"\r\n":
                        raise ProtocolError("chunk not followed by CRLF")
                    pos += 2
                    self._chunk_state = _SIZE
                else:  # _TRAILERS: header lines until an empty line; their content is dropped
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        if len(buf) - pos > MAX_TRAILER_BYTES + 1:
                            raise ProtocolError("trailers too large")
                        break
                    if end - pos > MAX_TRAILER_BYTES:
                        raise ProtocolError("trailers too large")
                    line_empty = end == pos
                    pos = end + 2
                    if line_empty:
                        self._complete = True
                        break
        finally:
            del buf[:pos]
        return b"".join(out)


def _parse_head(raw: bytes) -> tuple[Head, bool]:
    lines = raw.split(b"\r\n")
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        raise ProtocolError("invalid status line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            # also refuses obsolete line folding (a line starting with whitespace)
            raise ProtocolError("invalid header line")
        value = value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ProtocolError("invalid header value")
        headers.append((name.lower(), value))
    return Head(int(m.group(2)), headers), m.group(1) == b"0"
