"""Admission: the one place where a request from any channel (HTTP, SSE, NDJSON, WebSocket,
n8n-compat) is checked — origin, caller identity, token and its binding, limits, body.

Channels turn their transport's request into a `Caller` and call these functions; each raises
ApiError with the contract's status and code. The body rules are core.messages' (called with
`InputLimits.from_settings`), the bot and spam screen is screening.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from . import api_clients, logs, metrics, screening
from .core.limits import Rate
from .core.origins import client_ip, normalise_origin, rate_key
from .core.sites import Site, quota_reset
from .core.tokens import (
    SessionClaims,
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
    # The key of every per-IP budget (core.origins.rate_key): the client's IPv4 address, or
    # its IPv6 /RATE_LIMIT_IPV6_PREFIX network. Per-IP limits use this field and nothing else.
    ip: str
    user_agent: str
    headers: Headers
    # An API client (docs/api-clients.md): the id of its valid key, else None. Its `origin`
    # is then `api:<id>`, so tokens issued to it are good only with the same key.
    api_key: str | None = None


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
    """The one place a request's client is identified, for every channel
    (docs/client-identity.md)."""
    settings = services.settings
    address = client_ip(peer, forwarded, settings.trusted_proxies)
    ip = rate_key(address, settings.rate_limit_ipv6_prefix)
    user_agent = headers.get("User-Agent") or ""
    presented = headers.get(api_clients.HEADER)
    if presented is not None:  # an API client: 401 or 403 unless its key is valid
        key = api_clients.key_of(services.api_keys, headers, presented)
        return Caller(api_clients.pseudo_origin(key), ip, user_agent, headers, key)
    return Caller(request_origin(headers), ip, user_agent, headers)


SITE_HEADER = "X-Chat-Site"  # the widget's `data-site`: a cross-check of the Origin's site


def admit_site(services: Services, caller: Caller) -> tuple[Site, str]:
    """The caller's site and canonical origin (core/sites.py: the Origin decides; a site id
    sent by the widget must name that same site), or 403 origin_not_allowed."""
    claimed = (caller.headers.get(SITE_HEADER) or "").strip() or None
    if caller.api_key is not None and caller.origin is not None:
        return _api_client_site(services, caller.api_key, caller.origin, claimed)
    found = services.registry.resolve(caller.origin, claimed)
    if found is None:
        raise ApiError(403, "origin_not_allowed", "This site is not allowed to use this chat.")
    if not found[0].implicit:
        logs.bind_site(found[0].id)
    return found


def _api_client_site(
    services: Services, key_id: str, origin: str, claimed: str | None
) -> tuple[Site, str]:
    """An API client has no Origin to find its site by (its key was checked in make_caller):
    a key of a site's own list is that site's (X-Chat-Site, if sent, must agree); an API_KEYS
    key names the site in X-Chat-Site, optional with one site only."""
    registry = services.registry
    owner = registry.key_owner(key_id)
    if owner is not None and claimed in (None, owner.id):
        claimed = owner.id
    elif owner is not None:
        raise ApiError(403, "origin_not_allowed", "This API key belongs to another site.")
    elif claimed is None and len(registry.sites) == 1:
        return registry.sites[0], origin
    site = registry.by_id.get(claimed or "")
    if site is None:
        raise ApiError(
            403, "origin_not_allowed", f"An API client must name its site in {SITE_HEADER}."
        )
    if not site.implicit:
        logs.bind_site(site.id)
    return site, origin


def admit_origin(services: Services, caller: Caller) -> str:
    """The caller's allowed origin (an API client's is `api:<key id>`), or 403
    origin_not_allowed."""
    return admit_site(services, caller)[1]


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
    services: Services,
    caller: Caller,
    token: str,
    fingerprint: str | None,
    site: Site | None = None,
) -> SessionClaims:
    """A valid, unrevoked token, presented from its own origin and browser, for `site` (the
    request's; None: not checked). A token keeps the site it was issued for: after a reload
    that moves its origin to another site, it no longer spends or reads anything there."""
    settings = services.settings
    claims = verify_session_token(settings.jwt_secret_key, token, now=services.clock())
    check_binding(
        claims, origin=caller.origin, fph=fingerprint_hash(fingerprint, settings.jwt_secret_key)
    )
    if site is not None and claims.site != site.id:
        raise ApiError(401, "session_mismatch", "This session belongs to another site.")
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


async def limit(
    services: Services, tiers: Sequence[tuple[str, str, Rate]], site: Site | None = None
) -> None:
    """Charge each tier `(name, key, rate)` in order, in one store call; 429 on the first that
    is exhausted (the tiers after it are not charged). When the store is unreachable,
    RATE_LIMIT_FAIL_MODE decides: open lets requests through, closed refuses them. The keys
    are the site's own (`Site.key_prefix`): one site never spends another's buckets."""
    prefix = site.key_prefix if site is not None else ""
    try:
        decisions = await services.store.hit_many(
            [(f"{prefix}rl:{tier}:{key}", rate) for tier, key, rate in tiers], services.clock()
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


# -- admission: what each kind of request must pass before its handler runs --------------------


@dataclass(frozen=True, slots=True)
class Admitted:
    origin: str
    claims: SessionClaims
    site: Site | None = None


async def admit_session_create(services: Services, caller: Caller) -> tuple[Site, str]:
    """Origin (its site), the site's per-IP creation limit, the bot score (no message yet).
    An API client: its own budget; the browser bot screen does not apply."""
    site, origin = admit_site(services, caller)
    if caller.api_key is not None:
        await limit_api_client(services, caller.api_key, site=site)
        return site, origin
    await limit(services, [("session_create", caller.ip, site.rate_limit_session_create)], site)
    screening.screen_bot(services, caller, screening.signals_of(caller), site)
    return site, origin


async def admit_chat(
    services: Services, caller: Caller, token: str, fingerprint: str | None
) -> Admitted:
    """A chat turn: origin, token and its binding, then the IP, session and origin tiers."""
    site, origin = admit_site(services, caller)
    claims = await authenticate(services, caller, token, fingerprint, site)
    await limit_message(services, caller, origin, claims.session_id, site)
    return Admitted(origin, claims, site)


async def limit_message(
    services: Services, caller: Caller, origin: str, session_key: str, site: Site | None = None
) -> None:
    """Charge one chat message to the three tiers, the same on every channel: the caller's IP,
    the conversation (a proxy session id, or the official widget's derived key), the origin;
    then the site's daily and monthly quotas. `site` None: the environment's rates. An API
    client: the conversation, its key's rate and daily quota, then the site's quotas."""
    s = site if site is not None else services.settings
    if caller.api_key is not None:
        await limit_api_client(services, caller.api_key, session_key=session_key, site=site)
        if site is not None:
            await charge_quota(services, site)
        return
    await limit(
        services,
        [
            ("ip", caller.ip, s.rate_limit_ip),
            ("session", session_key, s.rate_limit_session),
            ("origin", origin, s.rate_limit_origin),
        ],
        site,
    )
    if site is not None:
        await charge_quota(services, site)


QUOTA_MESSAGE = "This chat has answered all it may for now; please come back later."


async def charge_quota(services: Services, site: Site) -> None:
    """Count one turn against the site's day and month (UTC); 429 `rate_limited` with
    `X-RateLimit-Tier: quota_day|quota_month` and Retry-After until the period ends once a
    count passes its quota. Counted in the site's own keys, so one site's visitors cannot use
    up another's. A refused turn is counted too (the quota is already spent)."""
    now = services.clock()
    quotas = site.quota_keys(now)
    if not quotas:
        return
    try:
        counts = await services.store.incr_many([(k, ttl) for k, ttl, _, _ in quotas], now)
    except StoreUnavailable:
        if services.settings.rate_limit_fail_mode == "open":
            fail_open("quota", "failing open")
            return
        raise refuse_store_down("quota") from None
    for (_, _, quota, tier), count in zip(quotas, counts, strict=True):
        if count > quota:
            metrics.quota_refused(site.id, tier)
            raise ApiError(
                429,
                "rate_limited",
                QUOTA_MESSAGE,
                retry_after=quota_reset(now, tier),
                headers={"X-RateLimit-Tier": tier},
            )


async def admit_read(
    services: Services, caller: Caller, token: str, fingerprint: str | None
) -> Admitted:
    """Validate, delete, history, resume: origin, token, and a per-IP budget of its own
    (RATE_LIMIT_IP applied to a separate bucket, so page loads never eat the chat budget;
    history in the stateless mode costs an n8n call, which is why it is limited at all)."""
    site, origin = admit_site(services, caller)
    claims = await authenticate(services, caller, token, fingerprint, site)
    await limit_read(services, caller, site)
    return Admitted(origin, claims, site)


async def limit_read(services: Services, caller: Caller, site: Site | None = None) -> None:
    """The per-IP budget of reads (history, resume, validate...), apart from the chat one."""
    if caller.api_key is not None:
        await limit_api_client(services, caller.api_key, site=site)
        return
    rate = (site if site is not None else services.settings).rate_limit_ip
    await limit(services, [("read", caller.ip, rate)], site)


async def limit_ws_handshake(services: Services, caller: Caller, site: Site | None = None) -> None:
    """The per-IP budget of WebSocket handshakes: a bucket of its own (`ws`) at the rate of
    session creates (RATE_LIMIT_SESSION_CREATE). Opening a socket, like creating a session,
    makes the server hold something before any token is checked (a task, a message buffer
    for WS_AUTH_SECONDS, a log line when the auth frame is refused); a page load opens one.
    Own bucket, so sockets never use up the budget of session creates, reads or messages."""
    if caller.api_key is not None:
        await limit_api_client(services, caller.api_key, site=site)
        return
    rate = (site if site is not None else services.settings).rate_limit_session_create
    await limit(services, [("ws", caller.ip, rate)], site)


async def limit_api_client(
    services: Services, key_id: str, *, session_key: str | None = None, site: Site | None = None
) -> None:
    """An API key's own budget on its site: every request of the key spends its rate
    (`api_key` tier, the site's `rate_limit_api_key` or RATE_LIMIT_API_KEY, whatever the IP:
    one backend serves many users); a chat message (with its `session_key`) first the
    conversation's tier, in the same store call, then the key's daily quota on that site
    (`api_key_daily_quota` or API_KEY_DAILY_QUOTA). Its last use is noted for the operator
    list."""
    s = site if site is not None else services.settings
    tiers = [("api_key", key_id, s.rate_limit_api_key)]
    if session_key is not None:
        tiers.insert(0, ("session", session_key, s.rate_limit_session))
    await limit(services, tiers, site)
    now = services.clock()
    quota = s.api_key_daily_quota
    if session_key is not None and quota > 0:
        prefix = site.key_prefix if site is not None else ""
        try:
            used = await services.store.incr(
                prefix + api_clients.quota_key(key_id, now), 90000.0, now
            )
        except StoreUnavailable:
            if services.settings.rate_limit_fail_mode != "open":
                raise refuse_store_down("api key quota") from None
            fail_open("api key quota", "failing open")
            used = 0
        if used > quota:
            raise ApiError(
                429,
                "rate_limited",
                "This API key has used its daily quota.",
                retry_after=api_clients.seconds_to_next_day(now),
                headers={"X-RateLimit-Tier": "api_quota"},
            )
    await api_clients.note_use(services, key_id, now)
