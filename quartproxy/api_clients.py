"""API clients' keys at the door (docs/api-clients.md): the key a request presents, its
refusals, the daily quota's key, and the last use noted for the operator list.

The rules are core.api_keys'; admission (guard) calls `key_of` when it identifies the
caller, so every channel (HTTP, SSE, NDJSON, WebSocket, @n8n/chat) sees the same answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from . import metrics
from .core.api_keys import ApiKeyError, ApiKeyPolicy, key_id
from .errors import ApiError
from .store.base import StoreUnavailable

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger("quartproxy.api_clients")

HEADER = "X-Api-Key"
NOTE_EVERY_SECONDS = 60.0  # the listed last use is exact to a minute; one write per minute


class Headers(Protocol):
    def get(self, key: str, /) -> str | None: ...


def key_of(policy: ApiKeyPolicy, headers: Headers, presented: str) -> str:
    """The id of the key `presented` in the request's X-Api-Key. A key sent by a browser page
    (an Origin or Sec-Fetch-Site header, which page scripts cannot remove) is refused with
    403 `forbidden`; a key that is not valid with 401 `unauthorized` — never anonymous."""
    if headers.get("Origin") or headers.get("Sec-Fetch-Site"):
        raise ApiError(
            403, "forbidden", "API keys are for servers and apps, never sent from a web page."
        )
    try:
        return key_id(policy, presented.strip())
    except ApiKeyError:
        raise ApiError(401, "unauthorized", "The API key is not valid.") from None


def pseudo_origin(kid: str) -> str:
    """What an API client's tokens are bound to in place of a page's origin."""
    return f"api:{kid}"


def quota_key(kid: str, now: float) -> str:
    return f"quota:api:{kid}:{int(now // 86400)}"  # one counter per UTC day


def seconds_to_next_day(now: float) -> int:
    return max(1, int(86400 - now % 86400))


async def note_use(svc: Services, kid: str, now: float) -> None:
    """Record the key's last use in the store, at most once a minute per key and worker.
    A store outage never refuses a request for this (the limiter decided already)."""
    last = svc.api_key_noted.get(kid)
    if last is not None and now - last < NOTE_EVERY_SECONDS:
        return
    svc.api_key_noted[kid] = now
    try:
        await svc.store.note_api_key_use(kid, now)
    except StoreUnavailable:
        metrics.store_error("request")
        log.warning("store unavailable: the last use of API key %s is not recorded", kid)
