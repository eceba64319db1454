"""Security headers on every answer (an after_request hook).

- API answers are data, never documents: `default-src 'none'`, no framing, no referrer, no
  caching (a session token is in the create answer), same-origin resource policy.
- `/static/*` (widget.js) is meant to be embedded by other sites: Cross-Origin-Resource-Policy
  `cross-origin`, so pages with COEP can still load it.
- HTML (the demo page): a CSP that allows only this origin's scripts and connections.
- HSTS only when the request came over TLS: Hypercorn's own TLS, or a trusted proxy
  (TRUSTED_PROXIES) saying `X-Forwarded-Proto: https`. Sending it over plain HTTP is useless
  and, on a misconfigured dev host, harmful.
No `Server` banner: Quart sets none; Hypercorn's is turned off in hypercorn.toml
(`include_server_header = false`).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from quart import Response, request

from ..core.origins import IPNetwork, is_trusted, parse_peer

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The only HTML the proxy serves is the demo page (demo mode), which has one inline script.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
HSTS = "max-age=31536000"


def over_tls(
    scheme: str, peer: str | None, proto: str | None, trusted: Sequence[IPNetwork]
) -> bool:
    if scheme in ("https", "wss"):
        return True
    if not proto or not peer or not trusted:
        return False
    # The first value is the scheme the client used at the outermost trusted proxy.
    return is_trusted(parse_peer(peer), trusted) and proto.split(",")[0].strip().lower() == "https"


def relative_location(url: str) -> str:
    """A redirect's target as a path on this server. Werkzeug's routing redirects (`/api//v1/x`
    → `/api/v1/x`, 308) carry an absolute URL built from the client's Host header; a path
    needs no host at all. Leading slashes, backslashes and blanks are folded into one slash,
    so the result can never be read as a network-path reference (`//host`, `/\\host`)."""
    parts = urlsplit(url)
    path = "/" + parts.path.lstrip("/\\\t\r\n ")
    return f"{path}?{parts.query}" if parts.query else path


def secure(response: Response, trusted: Sequence[IPNetwork]) -> Response:
    h = response.headers
    location = h.get("Location")
    if location is not None:
        h["Location"] = relative_location(location)
    h["X-Content-Type-Options"] = "nosniff"
    h["Permissions-Policy"] = PERMISSIONS
    h.pop("Server", None)
    path = request.path
    mimetype = response.mimetype or ""
    if path.startswith("/static/"):
        h["Cross-Origin-Resource-Policy"] = "cross-origin"
        h.setdefault("Content-Security-Policy", API_CSP)
        h["Referrer-Policy"] = "no-referrer"
    elif mimetype == "text/html":
        h.setdefault("Content-Security-Policy", PAGE_CSP)  # /docs sets a stricter one
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["X-Frame-Options"] = "DENY"
        # The demo page calls the API same-origin; its GETs carry no Origin, so the Referer's
        # origin is how the guard recognises it (same-origin keeps it off other sites).
        h["Referrer-Policy"] = "same-origin"
    else:
        h["Content-Security-Policy"] = API_CSP
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "no-referrer"
        if path.startswith("/api/"):
            h.setdefault("Cache-Control", "no-store")
    peer = request.remote_addr
    if over_tls(request.scheme, peer, request.headers.get("X-Forwarded-Proto"), trusted):
        h["Strict-Transport-Security"] = HSTS
    return response
