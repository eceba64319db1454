"""The documented bot-score table pinned as numbers, the 1.5-s threshold at its edge, and each
header name read on its own. Each case was a surviving mutant of core/screening.py."""

from __future__ import annotations

import pytest

from quartproxy.core import screening as s
from quartproxy.core.screening import (
    RequestSignals,
    SpamRules,
    SpamVerdict,
    bot_score,
    duplicate_key,
    spam_check,
)

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0.0.0 Safari/537.36"
FULL = {
    "User-Agent": CHROME,
    "Accept-Language": "en",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}


def test_the_documented_weight_table() -> None:
    # the table in the module docstring and docs/security.md: changing a weight changes who gets in
    assert (
        s.W_HONEYPOT,
        s.W_NO_USER_AGENT,
        s.W_AUTOMATION_UA,
        s.W_HEADLESS_UA,
        s.W_NOT_BROWSER_UA,
        s.W_NO_ACCEPT_LANGUAGE,
        s.W_NO_SEC_FETCH,
        s.W_FAST_FIRST_MESSAGE,
    ) == (100, 60, 60, 25, 20, 20, 15, 25)
    assert s.MIN_FIRST_MESSAGE_SECONDS == 1.5


@pytest.mark.parametrize(
    ("changes", "score", "reasons"),
    [
        ({}, 0, ()),
        ({"honeypot": "x"}, 100, ("honeypot",)),
        ({"user_agent": ""}, 60, ("no_user_agent",)),
        ({"user_agent": "curl/8.0"}, 80, ("automation_user_agent", "not_a_browser_user_agent")),
        ({"user_agent": "Mozilla/5.0 python-requests"}, 60, ("automation_user_agent",)),
        ({"user_agent": "Mozilla/5.0 HeadlessChrome/126"}, 25, ("headless_user_agent",)),
        ({"user_agent": "Opera/9.80"}, 20, ("not_a_browser_user_agent",)),
        ({"user_agent": "mozilla/5.0 Firefox"}, 20, ("not_a_browser_user_agent",)),
        ({"accept_language": ""}, 20, ("no_accept_language",)),
        (
            {"sec_fetch_site": "", "sec_fetch_mode": "", "sec_fetch_dest": ""},
            15,
            ("no_sec_fetch",),
        ),
        ({"first_message": True, "seconds_since_session": 1.49}, 25, ("fast_first_message",)),
        ({"first_message": True, "seconds_since_session": 1.5}, 0, ()),
        ({"first_message": True, "seconds_since_session": 0.0}, 25, ("fast_first_message",)),
    ],
)
def test_each_signal_scores_its_documented_weight(
    changes: dict[str, object], score: int, reasons: tuple[str, ...]
) -> None:
    base = RequestSignals.from_headers(FULL)
    fields = {f: getattr(base, f) for f in base.__slots__}
    v = bot_score(RequestSignals(**{**fields, **changes}))  # type: ignore[arg-type]
    assert (v.score, v.reasons) == (score, reasons)


def test_a_long_user_agent_is_scored_like_a_short_one() -> None:
    long_ua = "curl/8.0 " + "x" * 600  # past the cached lengths
    v = bot_score(RequestSignals.from_headers({**FULL, "User-Agent": long_ua}))
    assert (v.score, v.reasons) == (80, ("automation_user_agent", "not_a_browser_user_agent"))
    ok = bot_score(RequestSignals.from_headers({**FULL, "User-Agent": CHROME + " " * 600}))
    assert ok.score == 0


def test_the_score_blocks_at_the_threshold_inclusive() -> None:
    v = bot_score(RequestSignals.from_headers({"User-Agent": CHROME}))
    assert v.score == 35  # no Accept-Language, no Sec-Fetch-*
    assert v.blocks(35) and not v.blocks(36)


@pytest.mark.parametrize("header", ["Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest"])
def test_each_sec_fetch_header_is_read_by_its_own_name(header: str) -> None:
    headers = {"User-Agent": CHROME, "Accept-Language": "en", header: " cors "}
    got = RequestSignals.from_headers(headers)
    values = (got.sec_fetch_site, got.sec_fetch_mode, got.sec_fetch_dest)
    assert sorted(values) == ["", "", "cors"]
    assert bot_score(got).score == 0


def test_from_headers_reads_each_field_stripped_and_the_first_of_repeated_headers() -> None:
    got = RequestSignals.from_headers(
        [
            ("user-agent", f" {CHROME} "),
            ("User-Agent", "curl/8"),
            ("ACCEPT-LANGUAGE", " de "),
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-dest", "empty"),
        ],
        honeypot="h",
        first_message=True,
        seconds_since_session=2.0,
    )
    assert got == RequestSignals(CHROME, "de", "same-site", "cors", "empty", "h", True, 2.0)


def test_spam_rule_defaults() -> None:
    rules = SpamRules()
    assert (
        rules.max_duplicates,
        rules.duplicate_window_seconds,
        rules.max_links,
        rules.max_char_run,
        rules.flood_min_length,
        rules.flood_max_distinct,
    ) == (3, 600.0, 3, 40, 32, 4)
    assert SpamRules.from_patterns(["a"], max_links=1).max_links == 1


def test_spam_edges() -> None:
    rules = SpamRules()
    assert spam_check("hello there " + "!" * 39, duplicate_count=3, rules=rules).ok
    assert spam_check("ab" * 20, duplicate_count=1, rules=rules).blocked  # 40 of 2 distinct
    assert spam_check("abcd" * 8, duplicate_count=1, rules=rules).reason == "char_flood"
    assert spam_check("abcde" * 8, duplicate_count=1, rules=rules).ok
    assert spam_check("a b c d " * 4, duplicate_count=1, rules=rules).ok  # 16 non-space
    assert spam_check("zz" + "a" * 40, duplicate_count=1, rules=rules).reason == "char_flood"


def test_signals_default_to_nothing_seen() -> None:
    empty = RequestSignals()
    assert empty == RequestSignals("", "", "", "", "", "", False, None)
    assert RequestSignals.from_headers({}) == empty
    v = bot_score(empty)
    assert (v.score, v.reasons) == (95, ("no_user_agent", "no_accept_language", "no_sec_fetch"))


def test_speed_is_judged_only_when_the_caller_says_first_message() -> None:
    browser = {"user_agent": CHROME, "accept_language": "en", "sec_fetch_mode": "cors"}
    assert bot_score(RequestSignals(**browser, seconds_since_session=0.1)).score == 0  # type: ignore[arg-type]
    assert bot_score(RequestSignals.from_headers(FULL, seconds_since_session=0.1)).score == 0


def test_electron_is_a_headless_user_agent() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126 Electron/31.0 Safari/537"
    v = bot_score(RequestSignals.from_headers({**FULL, "User-Agent": ua}))
    assert (v.score, v.reasons) == (25, ("headless_user_agent",))


def test_a_clean_verdict_has_no_reason_and_no_message() -> None:
    v = spam_check("Hello!", duplicate_count=1, rules=SpamRules())
    assert v == SpamVerdict(False, "", "") and v.ok


def test_runs_count_from_the_first_character() -> None:
    rules = SpamRules(max_char_run=3)
    assert spam_check("XX", duplicate_count=1, rules=rules).ok
    assert spam_check("aa", duplicate_count=1, rules=rules).ok
    assert not spam_check("aaa", duplicate_count=1, rules=rules).ok
    assert spam_check("", duplicate_count=1, rules=SpamRules(max_char_run=1)).ok


def test_duplicate_keys_are_32_hex_characters_after_the_prefix() -> None:
    key = duplicate_key("s", "Hello  World")
    assert key.startswith("dup:") and len(key) == 4 + 32
    int(key[4:], 16)
    assert key == duplicate_key("s", "hello world")
