"""Admission: the one place where a request from any channel (HTTP, SSE, NDJSON, WebSocket,
n8n-compat) is checked — origin, caller identity, token and its binding, limits, body.

Channels turn their transport's request into a `Caller` and call these functions; each raises
ApiError with the contract's status and code.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from .core.limits import Rate
from .core.origins import client_ip, normalise_origin
from .core.tokens import (
    SessionClaims,
    TokenError,
    check_binding,
    fingerprint_hash,
    verify_session_token,
)
from .errors import ApiError
from .services import Services
from .store.base import StoreUnavailable

log = logging.getLogger("quartproxy.guard")


class Headers(Protocol):
    """Case-insensitive header access, as Werkzeug's Headers and plain dicts provide."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """What the checks need to know about a request, whatever its transport."""

    origin: str | None  # canonical, as sent (Origin, else the Referer's origin)
    ip: str
    user_agent: str
    headers: Headers


def request_origin(headers: Headers) -> str | None:
    """The page's origin: the Origin header; for same-origin GETs (which carry none), the
    origin part of the Referer."""
    origin = headers.get("Origin")
    if origin:
        return normalise_origin(origin)
    referer = headers.get("Referer")
    if referer:
        try:
            parts = urlsplit(referer)
        except ValueError:
            return None
        if parts.scheme and parts.netloc:
            return normalise_origin(f"{parts.scheme}://{parts.netloc}")
    return None


def make_caller(
    services: Services, headers: Headers, peer: str | None, forwarded: Sequence[str]
) -> Caller:
    ip = client_ip(peer, forwarded, services.settings.trusted_proxies)
    return Caller(request_origin(headers), ip, headers.get("User-Agent") or "", headers)


def admit_origin(services: Services, caller: Caller) -> str:
    """The caller's allowed origin, or 403 origin_not_allowed."""
    allowed = services.settings.allowed_origins.canonical(caller.origin)
    if allowed is None:
        raise ApiError(403, "origin_not_allowed", "This site is not allowed to use this chat.")
    return allowed


def bearer_token(headers: Headers) -> str:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "A valid session token is required.")
    return token.strip()


async def authenticate(
    services: Services, caller: Caller, token: str, fingerprint: str | None
) -> SessionClaims:
    """A valid, unrevoked token, presented from its own origin and browser."""
    settings = services.settings
    try:
        claims = verify_session_token(settings.jwt_secret_key, token, now=services.clock())
        fph = fingerprint_hash(fingerprint, settings.jwt_secret_key)
        check_binding(claims, origin=caller.origin, fph=fph)
    except TokenError as exc:
        raise ApiError(401, exc.code, exc.message) from None
    try:
        record = await services.store.get_session(claims.session_id, services.clock())
    except StoreUnavailable:
        if settings.rate_limit_fail_mode == "open":
            # The token is signed, unexpired and bound to this origin and browser; only a
            # revocation (DELETE /api/v1/session) cannot be checked while the store is down.
            log.warning("session store unavailable: trusting the signed token (fail open)")
            return claims
        raise ApiError(
            503, "internal", "The session store is unavailable.", retry_after=5
        ) from None
    if record is None:
        raise ApiError(401, "unauthorized", "This session has ended; start a new one.")
    return claims


async def limit(services: Services, tiers: Sequence[tuple[str, str, Rate]]) -> None:
    """Charge each tier `(name, key, rate)` in order; 429 on the first that is exhausted.
    When the store is unreachable, RATE_LIMIT_FAIL_MODE decides: open lets requests through,
    closed refuses them."""
    now = services.clock()
    for tier, key, rate in tiers:
        try:
            decision = await services.store.hit(f"rl:{tier}:{key}", rate, now)
        except StoreUnavailable:
            if services.settings.rate_limit_fail_mode == "open":
                log.warning("rate limiter store unavailable: failing open")
                return
            raise ApiError(
                503, "internal", "The service is temporarily unavailable.", retry_after=5
            ) from None
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                "Too many messages; please wait a moment.",
                retry_after=decision.retry_after,
                headers={"X-RateLimit-Tier": tier},
            )


def hashed(value: str) -> str:
    """Keys built from client-chosen strings are hashed: bounded length, no key injection."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ChatBody:
    message: str
    metadata: dict[str, Any]
    honeypot: str


def chat_body(obj: Any, services: Services) -> ChatBody:
    """The chat request body, checked against the contract."""
    settings = services.settings
    if not isinstance(obj, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    message = obj.get("message")
    if not isinstance(message, str):
        raise ApiError(400, "bad_request", "`message` must be a string.")
    message = message.strip()
    if not message:
        raise ApiError(400, "bad_request", "`message` must not be empty.")
    if len(message) > settings.max_message_chars:
        raise ApiError(
            400, "bad_request", f"`message` is longer than {settings.max_message_chars} characters."
        )
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "bad_request", "`metadata` must be a JSON object.")
    honeypot = obj.get("honeypot") or ""
    if not isinstance(honeypot, str):
        raise ApiError(400, "bad_request", "`honeypot` must be a string.")
    return ChatBody(message, metadata, honeypot)
