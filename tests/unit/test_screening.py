"""Bot scoring and spam rules: each signal and each rule on its own, then in combination."""

from __future__ import annotations

import re

import pytest

from quartproxy.core import screening as s
from quartproxy.core.screening import (
    RequestSignals,
    SpamRules,
    bot_score,
    duplicate_key,
    spam_check,
)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
BROWSER_HEADERS = {
    "User-Agent": CHROME,
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}
THRESHOLD = 60


def signals(**changes: object) -> RequestSignals:
    base = RequestSignals.from_headers(BROWSER_HEADERS)
    return RequestSignals(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


# -- bots ---------------------------------------------------------------------------------------


def test_a_real_browser_scores_zero() -> None:
    v = bot_score(signals())
    assert (v.score, v.reasons) == (0, ())
    assert not v.blocks(THRESHOLD)


def test_headers_are_read_case_insensitively_and_from_pairs() -> None:
    lower = RequestSignals.from_headers([(k.lower(), v) for k, v in BROWSER_HEADERS.items()])
    assert lower == RequestSignals.from_headers(BROWSER_HEADERS)
    assert lower.user_agent == CHROME


def test_honeypot_alone_blocks() -> None:
    v = bot_score(signals(honeypot="http://spam.example"))
    assert v.reasons == ("honeypot",) and v.score == s.W_HONEYPOT
    assert v.blocks(THRESHOLD)


def test_blank_honeypot_is_not_a_signal() -> None:
    assert bot_score(signals(honeypot="   ")).score == 0


@pytest.mark.parametrize(
    "ua",
    [
        "curl/8.5.0",
        "Wget/1.21",
        "python-requests/2.32.0",
        "python-httpx/0.27.0",
        "Python-urllib/3.11",
        "aiohttp/3.9",
        "Go-http-client/1.1",
        "okhttp/4.12.0",
        "Java/17.0.1",
        "Apache-HttpClient/4.5",
        "node-fetch/1.0",
        "axios/1.7.2",
        "PostmanRuntime/7.39.0",
        "Scrapy/2.11 (+https://scrapy.org)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0)",
        "Mozilla/5.0 (Windows NT 10.0) Selenium WebDriver",
        "libwww-perl/6.72",
        "HTTPie/3.2.2",
    ],
)
def test_automation_user_agents_block_alone(ua: str) -> None:
    v = bot_score(signals(user_agent=ua))
    assert "automation_user_agent" in v.reasons
    assert v.blocks(THRESHOLD)


@pytest.mark.parametrize(
    "ua",
    [
        CHROME,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    ],
)
def test_browser_user_agents_are_not_automation(ua: str) -> None:
    assert bot_score(signals(user_agent=ua)).score == 0


def test_headless_browser_is_suspicious_but_not_blocked_alone() -> None:
    ua = CHROME.replace("Chrome/", "HeadlessChrome/")
    v = bot_score(signals(user_agent=ua))
    assert v.reasons == ("headless_user_agent",) and v.score == s.W_HEADLESS_UA
    assert not v.blocks(THRESHOLD)


def test_missing_user_agent_blocks_alone() -> None:
    v = bot_score(signals(user_agent=""))
    assert v.reasons == ("no_user_agent",) and v.blocks(THRESHOLD)


def test_non_browser_user_agent_is_a_soft_signal() -> None:
    v = bot_score(signals(user_agent="MyWidgetApp/1.0"))
    assert v.reasons == ("not_a_browser_user_agent",) and not v.blocks(THRESHOLD)


def test_missing_accept_language_is_soft() -> None:
    v = bot_score(signals(accept_language=""))
    assert v.reasons == ("no_accept_language",) and not v.blocks(THRESHOLD)


def test_missing_sec_fetch_is_soft_and_any_one_header_counts_as_present() -> None:
    none = bot_score(signals(sec_fetch_site="", sec_fetch_mode="", sec_fetch_dest=""))
    assert none.reasons == ("no_sec_fetch",) and not none.blocks(THRESHOLD)
    one = bot_score(signals(sec_fetch_site="", sec_fetch_mode="cors", sec_fetch_dest=""))
    assert one.score == 0


def test_fast_first_message() -> None:
    fast = bot_score(signals(first_message=True, seconds_since_session=0.2))
    assert fast.reasons == ("fast_first_message",) and not fast.blocks(THRESHOLD)
    human = bot_score(signals(first_message=True, seconds_since_session=4.0))
    assert human.score == 0
    edge = bot_score(signals(first_message=True, seconds_since_session=s.MIN_FIRST_MESSAGE_SECONDS))
    assert edge.score == 0
    later = bot_score(signals(first_message=False, seconds_since_session=0.1))
    assert later.score == 0  # only the first message is judged by speed
    unknown = bot_score(signals(first_message=True, seconds_since_session=None))
    assert unknown.score == 0


def test_a_headless_widget_sending_at_once_after_a_lazy_session_passes() -> None:
    # The bundled widget creates its session right before the first message; browser tests
    # drive it with headless Chromium. Together that must stay below the default threshold.
    ua = CHROME.replace("Chrome/", "HeadlessChrome/")
    v = bot_score(signals(user_agent=ua, first_message=True, seconds_since_session=0.05))
    assert set(v.reasons) == {"headless_user_agent", "fast_first_message"}
    assert not v.blocks(THRESHOLD)


def test_soft_signals_add_up_to_a_block() -> None:
    v = bot_score(
        signals(
            accept_language="",
            sec_fetch_site="",
            sec_fetch_mode="",
            sec_fetch_dest="",
            first_message=True,
            seconds_since_session=0.0,
        )
    )
    assert v.score == s.W_NO_ACCEPT_LANGUAGE + s.W_NO_SEC_FETCH + s.W_FAST_FIRST_MESSAGE
    assert v.blocks(THRESHOLD)


def test_bare_curl_scores_everything() -> None:
    v = bot_score(RequestSignals.from_headers({"User-Agent": "curl/8.5.0"}))
    assert set(v.reasons) == {
        "automation_user_agent",
        "not_a_browser_user_agent",
        "no_accept_language",
        "no_sec_fetch",
    }
    assert v.score == 60 + 20 + 20 + 15


def test_threshold_is_inclusive() -> None:
    v = bot_score(signals(user_agent="curl/8"))
    assert v.score == 80
    assert v.blocks(80) and not v.blocks(81)


# -- spam ---------------------------------------------------------------------------------------

RULES = SpamRules()


def test_ordinary_messages_pass() -> None:
    for text in [
        "Hello, what are your opening hours?",
        "Is https://shop.example.com/item/1 still available?",
        "a" * 31,
        "Wait what" + "?" * 39,
        "ok",
        "1234 5678 9012 3456",
        "Wie spät ist es? ¿Qué hora es? 何時ですか",
        "----\nheading\n----",
    ]:
        v = spam_check(text, duplicate_count=1, rules=RULES)
        assert v.ok, text


def test_duplicates_block_after_the_allowed_repeats() -> None:
    for n in range(1, RULES.max_duplicates + 1):
        assert spam_check("hi", duplicate_count=n, rules=RULES).ok
    v = spam_check("hi", duplicate_count=RULES.max_duplicates + 1, rules=RULES)
    assert (v.blocked, v.reason, v.message) == (True, "duplicate", s.MSG_DUPLICATE)


def test_link_flood() -> None:
    links = " ".join(f"https://x{i}.example/p" for i in range(RULES.max_links))
    assert spam_check(links, duplicate_count=1, rules=RULES).ok
    more = links + " www.spam.example"
    v = spam_check(more, duplicate_count=1, rules=RULES)
    assert (v.reason, v.message) == ("links", s.MSG_LINKS)
    assert spam_check(
        "HTTP://A.b HTTPS://c.d ftp://e.f http://g.h", duplicate_count=1, rules=RULES
    ).blocked


def test_char_run_flood() -> None:
    assert spam_check("Hello there, friend" + "!" * 39, duplicate_count=1, rules=RULES).ok
    v = spam_check("hello " + "!" * 40, duplicate_count=1, rules=RULES)
    assert (v.reason, v.message) == ("char_flood", s.MSG_CHAR_FLOOD)
    assert spam_check("x" + "\n" * 40 + "y", duplicate_count=1, rules=RULES).blocked


def test_low_variety_flood() -> None:
    assert spam_check("ha" * 16, duplicate_count=1, rules=RULES).reason == "char_flood"
    assert spam_check("asdf " * 8, duplicate_count=1, rules=RULES).reason == "char_flood"
    assert spam_check("ha" * 15, duplicate_count=1, rules=RULES).ok  # 30 < 32 characters
    assert spam_check("asdfg" * 8, duplicate_count=1, rules=RULES).ok  # 5 distinct


def test_block_patterns_are_case_insensitive_searches() -> None:
    rules = SpamRules.from_patterns([r"\bcasino\b", r"buy\s+now"])
    v = spam_check("Best CASINO in town", duplicate_count=1, rules=rules)
    assert (v.blocked, v.reason, v.message) == (True, "pattern", s.MSG_PATTERN)
    assert spam_check("please BUY   now", duplicate_count=1, rules=rules).blocked
    assert spam_check("casinos", duplicate_count=1, rules=rules).ok


def test_patterns_decide_first() -> None:
    rules = SpamRules.from_patterns(["spam"])
    assert spam_check("spam", duplicate_count=99, rules=rules).reason == "pattern"


def test_thresholds_are_tunable() -> None:
    strict = SpamRules(max_links=0, max_duplicates=1, max_char_run=5)
    assert spam_check("see www.a.b", duplicate_count=1, rules=strict).reason == "links"
    assert spam_check("hi", duplicate_count=2, rules=strict).reason == "duplicate"
    assert spam_check("nooooo", duplicate_count=1, rules=strict).reason == "char_flood"


def test_from_patterns_compiles_and_rejects_bad_regex() -> None:
    rules = SpamRules.from_patterns(["a+b"], max_links=1)
    assert rules.patterns[0].flags & re.IGNORECASE and rules.max_links == 1
    with pytest.raises(re.error):
        SpamRules.from_patterns(["("])


def test_duplicate_key_ignores_case_and_spacing_but_not_session_or_words() -> None:
    k = duplicate_key("s1", "Hello  World")
    assert k == duplicate_key("s1", "hello world") == duplicate_key("s1", " HELLO\nworld ")
    assert k != duplicate_key("s2", "hello world")
    assert k != duplicate_key("s1", "hello there")
    assert k.startswith("dup:") and "hello" not in k
