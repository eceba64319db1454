"""Less memory per open request: an answer stream holds its whole request stack (Hypercorn's
connection, Quart's request and response, the upstream call) for as long as the answer takes,
and a worker is meant to hold thousands of them (docs/benchmarks.md: idle streams).

Measured with bench/memory_profile.py, per idle SSE stream, before these changes:

- Quart encodes the response headers into fresh bytes for every response, and Hypercorn keeps
  that list until the response ends (for its access log): ~2.4 KB per stream, the largest
  single allocation site. `share_response_headers` swaps the (name, value) pairs whose values
  are fixed by this app (security, CORS, content type) for one shared copy of each.
- quart-trio runs every request as two tasks; overrides/quart_trio_connection.py runs the
  response in the nursery's own task: one task fewer, ~1.3 KB.
- Quart opens a session for every request; with no secret key that is a new NullSession
  (a dict that refuses writes), ~0.6 KB. The proxy has no cookie sessions at all:
  `NoSessions` hands every request one shared NullSession.
"""

from __future__ import annotations

from typing import Any

from flask.sessions import NullSession
from quart.sessions import SecureCookieSessionInterface

# Response headers whose values come from this app's own small, fixed set (never from a client,
# never one per request): safe to share. Anything else (X-Request-ID, Content-Length,
# Retry-After, rate-limit headers...) keeps its own bytes.
SHAREABLE = frozenset(
    {
        b"access-control-allow-headers",
        b"access-control-allow-methods",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
        b"access-control-max-age",
        b"cache-control",
        b"content-security-policy",
        b"content-type",
        b"cross-origin-opener-policy",
        b"cross-origin-resource-policy",
        b"permissions-policy",
        b"referrer-policy",
        b"strict-transport-security",
        b"vary",
        b"x-accel-buffering",
        b"x-content-type-options",
        b"x-frame-options",
    }
)
MAX_SHARED = 1024  # a bound in any case (ACAO takes one value per allowed origin)
# Per process, not per app, on purpose: the pairs are immutable bytes, equal whichever app of the
# process sends them, and one copy per process is the point; bounded by MAX_SHARED.
_shared: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}


def share_response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same headers, in order, with every shareable pair replaced by its shared copy."""
    out = []
    for pair in headers:
        if pair[0] in SHAREABLE:
            shared = _shared.get(pair)
            if shared is None:
                if len(_shared) < MAX_SHARED:
                    _shared[pair] = pair
                shared = pair
            pair = shared
        out.append(pair)
    return out


# Request header names: h11 lowercases every name into new bytes for every request, and the ASGI
# scope keeps them (Hypercorn's stream and Quart's request hold it for as long as an answer
# streams): ~45 bytes per header per open stream. The first copy of each name is kept and shared
# (values never: they are the client's). Bounded against clients inventing names.
MAX_SHARED_NAMES = 512
_names: dict[bytes, bytes] = {}


def share_request_header_names(headers: list[tuple[bytes, bytes]]) -> None:
    """In place (the scope's own list, so Hypercorn's copy is the same one): each name replaced
    by the first equal name seen; same order, same values. Anything but a list: left alone."""
    if type(headers) is not list:
        return
    for i, (name, value) in enumerate(headers):
        shared = _names.get(name)
        if shared is None:
            if len(_names) < MAX_SHARED_NAMES:
                _names[name] = name
        elif shared is not name:
            headers[i] = (shared, value)


class NoSessions(SecureCookieSessionInterface):
    """No cookie sessions: every request gets the same empty, read-only session."""

    _null = NullSession()

    async def open_session(self, app: Any, request: Any) -> None:
        return None

    async def make_null_session(self, app: Any) -> NullSession:
        return self._null
