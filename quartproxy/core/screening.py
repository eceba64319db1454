"""Bot scoring and spam rules. Pure: request signals and message text in, verdicts out.

Bot score: each signal adds a documented weight; a request whose score reaches
`BOT_SCORE_THRESHOLD` (default 60) is blocked (or only logged with `BOT_ENFORCE=false`).
The weights are set so that one certain signal (the honeypot, an HTTP library's user agent)
blocks on its own, while the soft signals (no Accept-Language, no Sec-Fetch-* headers, a
headless browser, a too-fast first message) only block together: old Safari sends no
Sec-Fetch-*, privacy tools strip headers, and browser tests run headless Chromium.

| signal                                              | weight |
|-----------------------------------------------------|--------|
| honeypot field filled                                | 100    |
| user agent missing or empty                          | 60     |
| user agent of an HTTP library / automation tool      | 60     |
| user agent of a headless browser                     | 25     |
| user agent without `Mozilla/` (not a browser)        | 20     |
| no `Accept-Language`                                 | 20     |
| none of `Sec-Fetch-Site/Mode/Dest`                   | 15     |
| first message sooner than 1.5 s after the session    | 25     |

The first-message timing is a soft signal on purpose: the bundled widget creates its session
lazily, right before the first message, so for real users too that message follows the
session within milliseconds. It still tips a request that already looks scripted (a browser
user agent without Accept-Language and Sec-Fetch-*: 20 + 15 + 25 = 60).

Spam rules (checked in this order; the first that fires decides): block patterns, repeated
identical messages, link floods, character floods.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# -- bots -------------------------------------------------------------------------------------

W_HONEYPOT = 100
W_NO_USER_AGENT = 60
W_AUTOMATION_UA = 60
W_HEADLESS_UA = 25
W_NOT_BROWSER_UA = 20
W_NO_ACCEPT_LANGUAGE = 20
W_NO_SEC_FETCH = 15
W_FAST_FIRST_MESSAGE = 25
MIN_FIRST_MESSAGE_SECONDS = 1.5

_AUTOMATION_UA = re.compile(
    r"curl|wget|python|httpx|aiohttp|urllib|requests|go-http-client|okhttp|java/|jakarta|"
    r"apache-httpclient|libwww|lwp::|node-fetch|undici|axios|got \(|postman|insomnia|"
    r"scrapy|selenium|webdriver|puppeteer|playwright|phantomjs|nightmare|mechanize|httpie|"
    r"restsharp|guzzle|ruby|perl|powershell|\bbot\b|bot/|spider|crawler|scraper",
    re.IGNORECASE,
)
_HEADLESS_UA = re.compile(r"headless|phantomjs|electron", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RequestSignals:
    """What the bot score looks at, taken from one request."""

    user_agent: str = ""
    accept_language: str = ""
    sec_fetch_site: str = ""
    sec_fetch_mode: str = ""
    sec_fetch_dest: str = ""
    honeypot: str = ""
    first_message: bool = False
    seconds_since_session: float | None = None  # at this message; None when unknown

    @classmethod
    def from_headers(
        cls,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        honeypot: str = "",
        first_message: bool = False,
        seconds_since_session: float | None = None,
    ) -> RequestSignals:
        items = headers.items() if isinstance(headers, Mapping) else headers
        h: dict[str, str] = {}
        for k, v in items:
            h.setdefault(k.lower(), v)
        return cls(
            user_agent=h.get("user-agent", "").strip(),
            accept_language=h.get("accept-language", "").strip(),
            sec_fetch_site=h.get("sec-fetch-site", "").strip(),
            sec_fetch_mode=h.get("sec-fetch-mode", "").strip(),
            sec_fetch_dest=h.get("sec-fetch-dest", "").strip(),
            honeypot=honeypot,
            first_message=first_message,
            seconds_since_session=seconds_since_session,
        )


@dataclass(frozen=True, slots=True)
class BotVerdict:
    score: int
    reasons: tuple[str, ...]

    def blocks(self, threshold: int) -> bool:
        return self.score >= threshold


def _user_agent_reasons(ua: str) -> tuple[tuple[str, int], ...]:
    """The User-Agent's part of the score. Cached: a site's visitors share a few hundred
    User-Agent strings, and the two searches over each are the costliest part of the score
    (only ordinary lengths are cached, so the cache stays a few MB at most)."""
    return _ua_reasons_cached(ua) if len(ua) <= 512 else _ua_reasons(ua)


def _ua_reasons(ua: str) -> tuple[tuple[str, int], ...]:
    if not ua:
        return (("no_user_agent", W_NO_USER_AGENT),)
    reasons: list[tuple[str, int]] = []
    if _AUTOMATION_UA.search(ua):
        reasons.append(("automation_user_agent", W_AUTOMATION_UA))
    elif _HEADLESS_UA.search(ua):
        reasons.append(("headless_user_agent", W_HEADLESS_UA))
    if not ua.startswith("Mozilla/"):
        reasons.append(("not_a_browser_user_agent", W_NOT_BROWSER_UA))
    return tuple(reasons)


_ua_reasons_cached = functools.lru_cache(maxsize=4096)(_ua_reasons)


def bot_score(signals: RequestSignals) -> BotVerdict:
    """Sum of the weights of the signals present, with one short reason per signal."""
    reasons: list[tuple[str, int]] = []
    if signals.honeypot.strip():
        reasons.append(("honeypot", W_HONEYPOT))
    reasons.extend(_user_agent_reasons(signals.user_agent))
    if not signals.accept_language:
        reasons.append(("no_accept_language", W_NO_ACCEPT_LANGUAGE))
    if not (signals.sec_fetch_site or signals.sec_fetch_mode or signals.sec_fetch_dest):
        reasons.append(("no_sec_fetch", W_NO_SEC_FETCH))
    elapsed = signals.seconds_since_session
    if signals.first_message and elapsed is not None and elapsed < MIN_FIRST_MESSAGE_SECONDS:
        reasons.append(("fast_first_message", W_FAST_FIRST_MESSAGE))
    return BotVerdict(sum(w for _, w in reasons), tuple(r for r, _ in reasons))


# -- spam -------------------------------------------------------------------------------------

MSG_PATTERN = "This message contains content that is not allowed here."
MSG_DUPLICATE = "You have sent this same message several times; please wait before repeating it."
MSG_LINKS = "This message contains too many links."
MSG_CHAR_FLOOD = "This message repeats the same characters too much."

_LINK = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"']+")


@dataclass(frozen=True)
class SpamRules:
    """Tunable thresholds. `max_duplicates`: identical messages allowed per session within
    `duplicate_window_seconds` (the caller counts them); `max_links`: links per message;
    `max_char_run`: the same character this many times in a row is a flood;
    `flood_min_length` / `flood_max_distinct`: a message of at least that many non-space
    characters made of at most that many distinct ones is a flood ("hahahaha...")."""

    patterns: tuple[re.Pattern[str], ...] = ()
    max_duplicates: int = 3
    duplicate_window_seconds: float = 600.0
    max_links: int = 3
    max_char_run: int = 40
    flood_min_length: int = 32
    flood_max_distinct: int = 4

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], **kw: object) -> SpamRules:
        compiled = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        return cls(patterns=compiled, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    blocked: bool
    reason: str = ""  # "pattern" | "duplicate" | "links" | "char_flood"
    message: str = ""  # the sentence shown to the user when blocked

    @property
    def ok(self) -> bool:
        return not self.blocked


NOT_SPAM = SpamVerdict(False)


def duplicate_key(session_id: str, text: str) -> str:
    """Store key under which the caller counts identical messages of one session: the text is
    case-folded and its whitespace collapsed, so trivial variations count as repeats."""
    canon = " ".join(text.casefold().split())
    digest = hashlib.sha256(f"{session_id}\x00{canon}".encode()).hexdigest()[:32]
    return f"dup:{digest}"


def turns_key(session_id: str) -> str:
    """Store key under which the caller counts a session's messages (the first one is scored
    as such by the bot check)."""
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"turns:{digest}"


def _longest_run(text: str) -> int:
    best = run = 0
    prev = ""
    for ch in text:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


def spam_check(text: str, *, duplicate_count: int, rules: SpamRules) -> SpamVerdict:
    """`duplicate_count` counts this message too (1 for the first time it is sent)."""
    for pattern in rules.patterns:
        if pattern.search(text):
            return SpamVerdict(True, "pattern", MSG_PATTERN)
    if duplicate_count > rules.max_duplicates:
        return SpamVerdict(True, "duplicate", MSG_DUPLICATE)
    if len(_LINK.findall(text)) > rules.max_links:
        return SpamVerdict(True, "links", MSG_LINKS)
    if _longest_run(text) >= rules.max_char_run:
        return SpamVerdict(True, "char_flood", MSG_CHAR_FLOOD)
    dense = [c for c in text if not c.isspace()]
    if len(dense) >= rules.flood_min_length and len(set(dense)) <= rules.flood_max_distinct:
        return SpamVerdict(True, "char_flood", MSG_CHAR_FLOOD)
    return NOT_SPAM
