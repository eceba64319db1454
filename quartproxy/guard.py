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
        raise ApiError(503, "internal", "The session store is unavailable.") from None
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


async def limit_message(services: Services, caller: Caller, origin: str, session_key: str) -> None:
    """Charge one chat message to the contract's three tiers, the same on every channel:
    the caller's IP, the conversation (a proxy session id, or a widget's derived key), the
    page's origin."""
    s = services.settings
    await limit(
        services,
        [
            ("ip", caller.ip, s.rate_limit_ip),
            ("session", session_key, s.rate_limit_session),
            ("origin", origin, s.rate_limit_origin),
        ],
    )


async def screen(
    services: Services, caller: Caller, *, session_key: str, message: str, honeypot: str = ""
) -> None:
    """Bot and spam checks for one chat message, on every channel (SSE, NDJSON, WebSocket,
    @n8n/chat). Raises ApiError (403 `blocked`) to refuse. The scoring itself belongs to the
    security layer, which fills this in; until then every message passes."""
    return None


def hashed(value: str) -> str:
    """Keys built from client-chosen strings are hashed: bounded length, no key injection."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def message_text(value: Any, field: str, max_chars: int) -> str:
    """A chat message: a non-empty string of at most `max_chars` characters once trimmed."""
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"`{field}` must be a string.")
    text = value.strip()
    if not text:
        raise ApiError(400, "bad_request", f"`{field}` must not be empty.")
    if len(text) > max_chars:
        raise ApiError(400, "bad_request", f"`{field}` is longer than {max_chars} characters.")
    return text


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
    message = message_text(obj.get("message"), "message", settings.max_message_chars)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "bad_request", "`metadata` must be a JSON object.")
    honeypot = obj.get("honeypot") or ""
    if not isinstance(honeypot, str):
        raise ApiError(400, "bad_request", "`honeypot` must be a string.")
    return ChatBody(message, metadata, honeypot)


MAX_WIDGET_SESSION_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class N8nChatBody:
    """The official @n8n/chat widget's body. `session_id` is the widget's own, untrusted id."""

    action: str  # "sendMessage" | "loadPreviousSession"
    session_id: str
    message: str | None  # None for loadPreviousSession
    metadata: dict[str, Any]


def n8n_chat_body(obj: Any, services: Services) -> N8nChatBody:
    """`{"action", "sessionId", "chatInput"?, "metadata"?}` checked like a chat body; the
    sessionId is 1..128 printable characters (it is only ever used hashed)."""
    if not isinstance(obj, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    action = obj.get("action")
    if action not in ("sendMessage", "loadPreviousSession"):
        raise ApiError(
            400, "bad_request", "`action` must be `sendMessage` or `loadPreviousSession`."
        )
    session_id = obj.get("sessionId")
    if not isinstance(session_id, str):
        raise ApiError(400, "bad_request", "`sessionId` must be a string.")
    session_id = session_id.strip()
    if (
        not session_id
        or len(session_id) > MAX_WIDGET_SESSION_ID_CHARS
        or not session_id.isprintable()
    ):
        raise ApiError(
            400,
            "bad_request",
            f"`sessionId` must be 1 to {MAX_WIDGET_SESSION_ID_CHARS} printable characters.",
        )
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "bad_request", "`metadata` must be a JSON object.")
    message: str | None = None
    if action == "sendMessage":
        max_chars = services.settings.max_message_chars
        message = message_text(obj.get("chatInput"), "chatInput", max_chars)
    return N8nChatBody(action, session_id, message, metadata)


def widget_session_key(origin: str, widget_session_id: str) -> str:
    """The proxy's key for a conversation of the official widget: a hash of (origin, the
    widget's sessionId). It is used for limits, the busy lock, history and as the sessionId
    sent to n8n, so a widget-chosen id can never equal or address a proxy session (uuid4)
    nor another site's conversation."""
    return "w" + hashed(f"n8n-chat\0{origin}\0{widget_session_id}")
