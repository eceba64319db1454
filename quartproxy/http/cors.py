"""CORS for the allowed origins only: a preflight from an allowed origin is answered here
(204) before routing, one from any other origin gets the contract's 403 `origin_not_allowed`;
every answer to an allowed origin carries its canonical form, never an echo of another.

Written by hand, not with quart-cors (0.8, read for this; it is not a dependency), because:
- its origin test is `origin == allowed` or `pattern.match(origin)`: exact strings compare the
  raw header (`HTTPS://A.example:443` is not `https://a.example`), patterns are anchored at the
  start only (`https://.*\\.example\\.com` accepts `https://x.example.com.evil.net`), and
  `isinstance(allowed, re.Pattern)` admits no other matcher, so core.origins' anchored,
  canonicalising allowlist cannot be fed into it;
- a refused origin gets no CORS headers and the route runs anyway; its WebSocket check aborts
  with a bare 400 — the contract asks for 403 `origin_not_allowed` at admission, which
  guard.admit_origin and `preflight` below give;
- its after_request hook rebuilds four HeaderSets and a set from the app config and walks the
  allowlist on every answer; here it is one allowlist lookup and four constant headers.
What it would add (Vary: Origin, the header names) is the dozen lines below.
"""

from __future__ import annotations

from quart import Response, request

from ..errors import ApiError
from .common import services

ALLOW_HEADERS = (
    "Authorization, Content-Type, Last-Event-ID, X-Chat-Fingerprint, X-Chat-Site, X-Request-ID"
)
EXPOSE_HEADERS = "Retry-After, X-Request-ID, X-RateLimit-Tier"
MAX_AGE = "600"


def allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    found = services().registry.site_of(origin)  # any site's origin (core/sites.py)
    return found[1] if found else None


async def preflight() -> Response | None:
    """Answer CORS preflights before routing (a before_request hook)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if allowed_origin() is None:
        raise ApiError(403, "origin_not_allowed", "This site is not allowed to use this chat.")
    response = Response("", status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def decorate(response: Response) -> Response:
    """Echo an allowed Origin (and only an allowed one) on every answer."""
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.vary.add("Origin")
    origin = allowed_origin()
    if origin is not None:
        # The canonical form of an allowed origin; a disallowed one is never written back.
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        # Lets the embedding page's Resource Timing see the protocol (nextHopProtocol, h2)
        # and timings of its own chat requests; no other origin gets them.
        response.headers["Timing-Allow-Origin"] = origin
    return response
