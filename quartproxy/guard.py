"""Admission: the one place where a request from any channel (HTTP, SSE, NDJSON, WebSocket,
n8n-compat) is checked — origin, caller identity, token and its binding, limits, body.

Channels turn their transport's request into a `Caller` and call these functions; each raises
ApiError with the contract's status and code.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import logs, metrics
from .core import messages
from .core.limits import Rate
from .core.messages import ChatInput, InputError, InputLimits, N8nChatInput, SessionInput
from .core.origins import client_ip, normalise_origin
from .core.screening import (
    RequestSignals,
    SpamRules,
    bot_score,
    duplicate_key,
    spam_check,
)
from .core.tokens import (
    SessionClaims,
    TokenError,
    check_binding,
    fingerprint_hash,
    verify_session_token,
)
from .errors import ApiError, store_unavailable
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


FAIL_OPEN_LOG = logs.Every(10.0)


def fail_open(what: str, action: str) -> None:
    """RATE_LIMIT_FAIL_MODE=open and the store is down: counted every time, logged once per
    10 s per check."""
    metrics.store_error("fail_open")
    if FAIL_OPEN_LOG.due(what):
        log.warning("store unavailable: %s %s (fail open; said once per 10 s)", what, action)


def refuse_store_down(what: str) -> ApiError:
    """RATE_LIMIT_FAIL_MODE=closed and the store is down: one log line, counted, and the
    contract's 503 (an ApiError, so the HTTP and WebSocket channels both render it)."""
    metrics.store_error("request")
    log.warning("store unavailable: %s refuses the request (fail closed)", what)
    return store_unavailable()


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
            fail_open("session check", "trusting the signed token")
            return claims
        raise refuse_store_down("session check") from None
    if record is None:
        raise ApiError(401, "unauthorized", "This session has ended; start a new one.")
    return claims


async def limit(services: Services, tiers: Sequence[tuple[str, str, Rate]]) -> None:
    """Charge each tier `(name, key, rate)` in order, in one store call; 429 on the first that
    is exhausted (the tiers after it are not charged). When the store is unreachable,
    RATE_LIMIT_FAIL_MODE decides: open lets requests through, closed refuses them."""
    try:
        decisions = await services.store.hit_many(
            [(f"rl:{tier}:{key}", rate) for tier, key, rate in tiers], services.clock()
        )
    except StoreUnavailable:
        if services.settings.rate_limit_fail_mode == "open":
            fail_open("rate limiter", "failing open")
            return
        raise refuse_store_down("rate limiter") from None
    if decisions and not decisions[-1].allowed:
        raise ApiError(
            429,
            "rate_limited",
            "Too many messages; please wait a moment.",
            retry_after=decisions[-1].retry_after,
            headers={"X-RateLimit-Tier": tiers[len(decisions) - 1][0]},
        )


def hashed(value: str) -> str:
    """Keys built from client-chosen strings are hashed: bounded length, no key injection."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def widget_session_key(origin: str, widget_session_id: str) -> str:
    """The proxy's key for a conversation of the official widget: a hash of (origin, the
    widget's sessionId). It keys the limits, the busy lock, the history and is the sessionId
    sent to n8n, so a widget-chosen id can never equal or address a proxy session (a uuid4)
    nor another site's conversation, while a returning visitor keeps the same key."""
    return "w" + hashed(f"n8n-chat\0{origin}\0{widget_session_id}")


# -- bodies (413 / 415 / 400): one set of rules for every channel, see core.messages ---------


def input_limits(services: Services) -> InputLimits:
    return InputLimits.from_settings(services.settings)


def _api(exc: InputError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def chat_input(raw: bytes, content_type: str | None, services: Services) -> ChatInput:
    """An HTTP chat body: `{"message", "metadata"?, "honeypot"?}`, normalised."""
    try:
        return messages.parse_chat_body(raw, content_type, input_limits(services))
    except InputError as exc:
        raise _api(exc) from None


def chat_frame(obj: Any, services: Services) -> ChatInput:
    """The same body arriving as an already-decoded WebSocket frame."""
    try:
        return messages.chat_input(obj, input_limits(services))
    except InputError as exc:
        raise _api(exc) from None


def session_input(raw: bytes, content_type: str | None, services: Services) -> SessionInput:
    try:
        return messages.parse_session_body(raw, content_type, input_limits(services))
    except InputError as exc:
        raise _api(exc) from None


def n8n_chat_input(raw: bytes, content_type: str | None, services: Services) -> N8nChatInput:
    try:
        return messages.parse_n8n_chat_body(raw, content_type, input_limits(services))
    except InputError as exc:
        raise _api(exc) from None


# -- admission: what each kind of request must pass before its handler runs --------------------


@dataclass(frozen=True, slots=True)
class Admitted:
    origin: str
    claims: SessionClaims


async def admit_session_create(services: Services, caller: Caller) -> str:
    """Origin, the per-IP creation limit, the bot score (no message yet). The origin."""
    origin = admit_origin(services, caller)
    await limit(
        services, [("session_create", caller.ip, services.settings.rate_limit_session_create)]
    )
    screen_bot(services, caller, signals_of(caller))
    return origin


async def admit_chat(
    services: Services, caller: Caller, token: str, fingerprint: str | None
) -> Admitted:
    """A chat turn: origin, token and its binding, then the IP, session and origin tiers."""
    origin = admit_origin(services, caller)
    claims = await authenticate(services, caller, token, fingerprint)
    await limit_message(services, caller, origin, claims.session_id)
    return Admitted(origin, claims)


async def limit_message(services: Services, caller: Caller, origin: str, session_key: str) -> None:
    """Charge one chat message to the three tiers, the same on every channel: the caller's IP,
    the conversation (a proxy session id, or the official widget's derived key), the origin."""
    s = services.settings
    await limit(
        services,
        [
            ("ip", caller.ip, s.rate_limit_ip),
            ("session", session_key, s.rate_limit_session),
            ("origin", origin, s.rate_limit_origin),
        ],
    )


async def admit_read(
    services: Services, caller: Caller, token: str, fingerprint: str | None
) -> Admitted:
    """Validate, delete, history, resume: origin, token, and a per-IP budget of its own
    (RATE_LIMIT_IP applied to a separate bucket, so page loads never eat the chat budget;
    history in the stateless mode costs an n8n call, which is why it is limited at all)."""
    origin = admit_origin(services, caller)
    claims = await authenticate(services, caller, token, fingerprint)
    await limit_read(services, caller)
    return Admitted(origin, claims)


async def limit_read(services: Services, caller: Caller) -> None:
    """The per-IP budget of reads (history, resume, validate...), apart from the chat one."""
    await limit(services, [("read", caller.ip, services.settings.rate_limit_ip)])


# -- screening: bots and spam ------------------------------------------------------------------


def signals_of(
    caller: Caller,
    *,
    honeypot: str = "",
    first_message: bool = False,
    seconds_since_session: float | None = None,
) -> RequestSignals:
    h = caller.headers
    return RequestSignals(
        user_agent=caller.user_agent.strip(),
        accept_language=(h.get("Accept-Language") or "").strip(),
        sec_fetch_site=(h.get("Sec-Fetch-Site") or "").strip(),
        sec_fetch_mode=(h.get("Sec-Fetch-Mode") or "").strip(),
        sec_fetch_dest=(h.get("Sec-Fetch-Dest") or "").strip(),
        honeypot=honeypot,
        first_message=first_message,
        seconds_since_session=seconds_since_session,
    )


BLOCKED_MESSAGE = "This request looks automated and was blocked."


def screen_bot(services: Services, caller: Caller, signals: RequestSignals) -> None:
    """403 blocked when the score reaches BOT_SCORE_THRESHOLD (log only: BOT_ENFORCE=false)."""
    s = services.settings
    verdict = bot_score(signals)
    if not verdict.blocks(s.bot_score_threshold):
        return
    enforced = s.bot_enforce
    metrics.screened("bot", verdict.reasons[0], enforced)
    log.warning(
        "bot check %s: score=%d reasons=%s",
        "blocked a request" if enforced else "would block (BOT_ENFORCE=false)",
        verdict.score,
        ",".join(verdict.reasons),
    )
    if enforced:
        raise ApiError(403, "blocked", BLOCKED_MESSAGE, reason="bot")


@functools.lru_cache(maxsize=16)
def _spam_rules(
    patterns: tuple[str, ...], duplicates: int, window: float, links: int, run: int
) -> SpamRules:
    return SpamRules.from_patterns(
        patterns,
        max_duplicates=duplicates,
        duplicate_window_seconds=window,
        max_links=links,
        max_char_run=run,
    )


def spam_rules(services: Services) -> SpamRules:
    s = services.settings
    return _spam_rules(
        s.spam_block_patterns,
        s.spam_max_duplicates,
        s.spam_duplicate_window_seconds,
        s.spam_max_links,
        s.spam_max_char_run,
    )


async def screen_message(
    services: Services,
    caller: Caller,
    *,
    session_key: str,
    message: str,
    honeypot: str = "",
    session_started: float | None = None,
) -> None:
    """Bot score with the message's own signals, then the spam rules. `session_key` names the
    conversation (our session id, or the official widget's sessionId); `session_started` is
    when it began, if known. Store counters decide "first message" and "repeated message"."""
    s = services.settings
    now = services.clock()
    rules = spam_rules(services)
    try:
        turns, repeats = await services.store.incr_many(
            [
                (f"turns:{hashed(session_key)}", s.session_ttl_seconds),
                (duplicate_key(session_key, message), rules.duplicate_window_seconds),
            ],
            now,
        )
    except StoreUnavailable:
        turns, repeats = 2, 1  # the limiter already decided fail-open/closed; don't guess here
    elapsed = None if session_started is None else max(0.0, now - session_started)
    screen_bot(
        services,
        caller,
        signals_of(
            caller, honeypot=honeypot, first_message=turns == 1, seconds_since_session=elapsed
        ),
    )
    verdict = spam_check(message, duplicate_count=repeats, rules=rules)
    if verdict.ok:
        return
    enforced = s.spam_enforce
    metrics.screened("spam", verdict.reason, enforced)
    log.warning(
        "spam check %s: rule=%s chars=%d",
        "blocked a message" if enforced else "would block (SPAM_ENFORCE=false)",
        verdict.reason,
        len(message),
    )
    if enforced:
        raise ApiError(403, "blocked", verdict.message, reason="spam")
