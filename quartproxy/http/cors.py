"""CORS for the allowed origins only. Written by hand (not quart-cors) because the allowlist
matching must be anchored (see core.origins) and a disallowed origin must get the contract's
403 JSON error, never an echo of itself."""

from __future__ import annotations

from quart import Response, request

from ..errors import ApiError
from .common import services

ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Chat-Fingerprint, X-Request-ID"
EXPOSE_HEADERS = "Retry-After, X-Request-ID, X-RateLimit-Tier"
MAX_AGE = "600"


def allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    return services().settings.allowed_origins.canonical(origin)


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
