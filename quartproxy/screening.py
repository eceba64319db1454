"""The bot and spam screen (the rules are core.screening's): the bot score of a request, and
of a chat message with its own signals, then the spam rules. Every channel's turn passes
`screen_message` (turns.channels.open_turn); a session create passes `screen_bot`.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from . import metrics
from .core.screening import (
    RequestSignals,
    SpamRules,
    bot_score,
    duplicate_key,
    spam_check,
    turns_key,
)
from .errors import ApiError
from .store.base import StoreUnavailable

if TYPE_CHECKING:
    from .core.sites import Site
    from .guard import Caller
    from .services import Services

log = logging.getLogger("quartproxy.guard")


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


def screen_bot(
    services: Services, caller: Caller, signals: RequestSignals, site: Site | None = None
) -> None:
    """403 blocked when the score reaches BOT_SCORE_THRESHOLD (log only: BOT_ENFORCE=false);
    the site's own threshold and mode (None: the environment's). Not for API clients: their
    valid key is what admits them (docs/api-clients.md)."""
    if caller.api_key is not None:
        return
    s = site if site is not None else services.settings
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
        raise ApiError(403, "blocked", BLOCKED_MESSAGE, reason="bot", public_reason="automated")


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


def spam_rules(services: Services, site: Site | None = None) -> SpamRules:
    s = site if site is not None else services.settings
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
    site: Site | None = None,
) -> None:
    """Bot score with the message's own signals, then the spam rules. `session_key` names the
    conversation (our session id, or the official widget's sessionId); `session_started` is
    when it began, if known. Store counters decide "first message" and "repeated message"."""
    s = services.settings
    now = services.clock()
    rules = spam_rules(services, site)
    try:
        turns, repeats = await services.store.incr_many(
            [
                (turns_key(session_key), s.session_ttl_seconds),
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
        site,
    )
    verdict = spam_check(message, duplicate_count=repeats, rules=rules)
    if verdict.ok:
        return
    enforced = (site if site is not None else s).spam_enforce
    metrics.screened("spam", verdict.reason, enforced)
    log.warning(
        "spam check %s: rule=%s chars=%d",
        "blocked a message" if enforced else "would block (SPAM_ENFORCE=false)",
        verdict.reason,
        len(message),
    )
    if enforced:
        raise ApiError(403, "blocked", verdict.message, reason="spam", public_reason=verdict.reason)
