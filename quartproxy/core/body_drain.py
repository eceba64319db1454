"""How much of a request body an early answer may still read to keep the connection. Pure.

An answer given before the request body was read (a 401, 403, 404, 405, 413 ...) leaves the
rest of the body on the connection. Hypercorn's HTTP/1.1 protocol then closes the keep-alive
connection once the answer ends (`H11Protocol._maybe_recycle`: the request is not DONE), and a
client that already sent its next request on it sees "Server disconnected"
(docs/upstream/hypercorn-early-answer-closes-keep-alive.md). http/keepalive.py reads such a
body to its end before the answer's last message, within the bounds decided here: a body
declared small (Content-Length up to DRAIN_MAX_BYTES) or chunked (read up to the same count).
A bigger declared body is not read: the answer is sent and the connection closed, as before.

Only HTTP/1.x is concerned: an HTTP/2 stream ends on its own without closing the connection.
"""

from __future__ import annotations

from collections.abc import Iterable

DRAIN_MAX_BYTES = 64 * 1024  # read at most this much of a body nobody wants
DRAIN_SECONDS = 1.0  # a client that declared a body and does not send it holds nothing longer
HTTP1 = frozenset({"1.0", "1.1"})


def drain_budget(http_version: str, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The most body bytes worth reading after an early answer, or None when there is no body
    to wait for (none declared, HTTP/2) or it is declared too big to read (answer and close).

    Framing was checked before (h11 and overrides/hypercorn_guards.py refuse a request with
    both Content-Length and Transfer-Encoding, or an invalid Content-Length); anything odd
    left here reads as "do not drain"."""
    if http_version not in HTTP1:
        return None
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            length = value.strip()
        elif key == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
    if chunked:
        return DRAIN_MAX_BYTES
    if length is None or not length.isdigit():
        return None
    try:
        declared = int(length)
    except ValueError:  # more digits than Python converts (h11 refuses more than 20 anyway)
        return None
    return declared if 0 < declared <= DRAIN_MAX_BYTES else None
