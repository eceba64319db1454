"""The widget as a visitor and a site owner meet it (issue 18), in real headless Chromium on a
customer page of another origin. Each test fails on the widget before this round."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import WAIT, Stack
from .test_widget import BOT, HOST, NOTICE, USER, ask, launcher, stored, textbox

pytestmark = pytest.mark.browser

PANEL = f"{HOST} .panel"
LIVE = f"{HOST} [aria-live=polite]"
CHAT = re.compile(r".*/api/v1/chat/message$")


def cors(site: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": site,
        "Access-Control-Expose-Headers": "Retry-After, X-Request-ID",
    }


def refuse(route: Any, *, site: str, status: int, body: dict[str, Any]) -> None:
    if route.request.method == "OPTIONS":
        route.continue_()
        return
    headers = {**cors(site), "Content-Type": "application/json"}
    if "retry_after" in body:
        headers["Retry-After"] = str(body["retry_after"])
    route.fulfill(status=status, headers=headers, body=json.dumps(body))


def sse(site: str, events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    mid = "0b5c9d52-7b0e-4c43-9a39-0c1a5a1f0e11"
    text = "".join(
        f"id: {mid}:{i}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
        for i, (name, data) in enumerate(events)
    )
    return {
        "status": 200,
        "headers": {**cors(site), "Content-Type": "text/event-stream"},
        "body": text,
    }


# --------------------------------------------------------------------------- 1. refusals


def test_spam_refusals_say_why_in_the_visitors_language(make_stack: Any, visit: Any) -> None:
    stack: Stack = make_stack(RATE_LIMIT_SESSION="100/minute", BOT_ENFORCE="false")
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    for i in range(3):
        ask(page, "hello?")
        expect(page.locator(BOT)).to_have_count(i + 1)
    ask(page, "hello?")  # the fourth identical message
    expect(page.locator(NOTICE)).to_have_text(
        re.compile(r"sent this same message several times\. Please wait")
    )
    expect(page.locator(NOTICE)).not_to_contain_text("not available")
    expect(textbox(page)).to_have_value("hello?")  # kept to rephrase
    v.shot("1-duplicate-en")
    textbox(page).fill("")
    links = " ".join(f"https://example.com/{i}" for i in range(4))
    ask(page, f"see {links}")
    expect(page.locator(NOTICE)).to_have_text(re.compile(r"too many links"))

    de: Visit = visit(locale="de-DE")
    page = de.open(stack, lang="de")
    launcher(page).click()
    page.locator(f"{HOST} textarea").fill(f"siehe {links}")
    page.locator(f"{HOST} textarea").press("Enter")
    expect(page.locator(NOTICE)).to_have_text(re.compile(r"enthält zu viele Links"))
    de.shot("2-links-de")


REFUSALS = [
    (503, {"error": {"code": "shutting_down", "message": "x"}, "retry_after": 2}, "restarting"),
    (
        503,
        {"error": {"code": "store_unavailable", "message": "x"}, "retry_after": 7},
        "try again in 7 seconds",
    ),
    (413, {"error": {"code": "payload_too_large", "message": "x"}}, "too long"),
    (409, {"error": {"code": "busy", "message": "x"}}, "current answer has finished"),
    (504, {"error": {"code": "upstream_timeout", "message": "x"}}, "took too long"),
    (502, {"error": {"code": "upstream_unavailable", "message": "x"}}, "not available right now"),
    (
        401,
        {"error": {"code": "session_mismatch", "message": "x"}},
        "start a new conversation",
    ),
    (
        403,
        {"error": {"code": "blocked", "message": "x", "reason": "automated"}},
        "looked automated",
    ),
    (
        403,
        {"error": {"code": "blocked", "message": "Ask about our products only."}},
        "Ask about our products only.",  # a refusal the widget has no words for: the server's
    ),
    (
        429,
        {"error": {"code": "rate_limited", "message": "x"}, "retry_after": 9},
        "wait 9 seconds",
    ),
]


def test_every_explained_refusal_reaches_the_visitor(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    for status, body, words in REFUSALS:
        page.route(CHAT, functools.partial(refuse, site=v.site.origin, status=status, body=body))
        textbox(page).fill("")
        ask(page, "a question")
        notice = page.locator(NOTICE).last
        expect(notice).to_contain_text(words)
        assert "Something went wrong" not in notice.inner_text()
        assert "not available here" not in notice.inner_text()
        v.shot(f"refusal-{body['error']['code']}")
        page.unroute(CHAT)


# ---------------------------------------------------------------------- 2. hostile host CSS

HOSTILE = """<style>
  html, body, div { letter-spacing: 3px !important; text-transform: uppercase !important;
    word-spacing: 12px !important; text-shadow: 2px 2px 0 red !important; cursor: wait !important;
    font-style: italic !important; text-indent: 40px !important; text-align: right !important;
    line-height: 4 !important; visibility: visible !important; white-space: pre !important; }
  #quartproxy-chat { font-variant: small-caps !important; direction: rtl !important; }
</style>"""

COMPUTED = """(sel) => {
  const host = document.getElementById('quartproxy-chat');
  const out = {};
  for (const s of sel) {
    const n = host.shadowRoot.querySelector(s);
    const c = getComputedStyle(n);
    out[s] = [c.letterSpacing, c.textTransform, c.wordSpacing, c.textShadow, c.cursor,
              c.fontStyle, c.textIndent, c.fontVariant, c.whiteSpace];
  }
  return out;
}"""


def test_host_page_css_does_not_leak_in(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack, head=HOSTILE, welcome="Hello there, how can we help?")
    launcher(page).click()
    styles = page.evaluate(COMPUTED, [".welcome .body p", "h2", "textarea", ".log"])
    clean = ["normal", "none", "0px", "none", "auto", "normal", "0px", "normal"]
    for sel, got in styles.items():
        want = [*clean[:4], "text" if sel == "textarea" else "auto", *clean[5:]]
        assert got[:8] == want, (sel, got)  # spacing, case, shadow, cursor, style, indent
    assert styles[".welcome .body p"][8] == "normal"  # white-space
    assert page.locator(f"{HOST} .welcome .body").inner_text().startswith("Hello there")
    v.shot("hostile-css")


# --------------------------------------------------------------- 3. compressed, SRI, budget


def test_widget_arrives_compressed_within_budget_on_a_slow_link(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.page
    cdp = v.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(  # a slow mobile link: 400 kbit/s down, 400 ms latency
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 400,
            "downloadThroughput": 50_000,
            "uploadThroughput": 50_000,
        },
    )
    sizes: dict[str, int] = {}
    urls: dict[str, str] = {}
    cdp.on(
        "Network.responseReceived", lambda e: urls.__setitem__(e["requestId"], e["response"]["url"])
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    with page.expect_response(re.compile(r".*/static/widget\.js$")) as got:
        page_ = v.open(stack)
    response = got.value
    assert response.headers.get("content-encoding") in ("gzip", "br")
    assert "accept-encoding" in response.headers.get("vary", "").lower()
    expect(launcher(page_)).to_be_visible()
    loaded = page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/static/')).map(e => [e.name, e.responseEnd])"
    )
    embed = sum(n for rid, n in sizes.items() if stack.proxy_url in urls.get(rid, ""))
    assert 0 < embed <= 30_000, embed  # everything the embed loads, on the wire
    v.shot("slow-link-launcher")
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "compressed-size.json").write_text(
        json.dumps({"embed_bytes_on_wire": embed, "resource_timing_ms": loaded}, indent=1)
    )


def test_versioned_url_with_sri_loads_and_a_wrong_hash_is_refused(stack: Stack, visit: Any) -> None:
    import httpx

    manifest = httpx.get(stack.proxy_url + "/static/widget.json").json()
    v: Visit = visit()
    page = v.page
    for integrity, loads in [(manifest["integrity"], True), ("sha384-" + "A" * 64, False)]:
        v.site.pages["/sri"] = f"""<!doctype html><html><head><meta charset="utf-8"></head>
<body><script src="{stack.proxy_url}{manifest["url"]}" integrity="{integrity}"
 crossorigin="anonymous"></script></body></html>"""
        with page.expect_response(re.compile(r".*/static/widget\.[0-9a-f]{16}\.js$")) as got:
            page.goto(v.site.origin + "/sri")
        assert got.value.headers["cache-control"] == "public, max-age=31536000, immutable"
        if loads:
            page.wait_for_function(
                "() => !!(window.QuartProxyChat && window.QuartProxyChat.version)"
            )
            expect(launcher(page)).to_be_visible()
        else:
            page.wait_for_load_state("load")
            assert page.evaluate("() => typeof window.QuartProxyChat") == "undefined"


# ----------------------------------------------------------------------------- 4. outages


def test_offline_does_not_stack_on_reconnecting_and_clears(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script("story", ["Once upon a time, ", "the end."])
    gate = script.gate(1)
    v: Visit = visit()
    page = v.open(stack, via_relay=True)
    launcher(page).click()
    ask(page, "story")
    expect(page.locator(BOT)).to_have_text("Once upon a time,")
    v.context.set_offline(True)
    stack.cut()
    expect(page.locator(NOTICE)).to_have_count(1)
    expect(page.locator(NOTICE)).to_contain_text("offline")
    v.shot("1-offline-one-line")
    v.context.set_offline(False)
    gate.set()
    expect(page.locator(BOT)).to_have_text("Once upon a time, the end.")
    expect(page.locator(NOTICE)).to_have_count(0)  # the answer ended: no banner left
    v.shot("2-finished-no-banner")


def test_answer_cut_by_the_server_is_marked_and_can_be_retried(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    events = [
        ("start", {"message_id": "0b5c9d52-7b0e-4c43-9a39-0c1a5a1f0e11"}),
        ("delta", {"text": "The first half of "}),
        ("delta", {"text": "an answer"}),
        ("error", {"code": "shutting_down", "message": "The server restarted."}),
    ]
    page.route(
        CHAT,
        lambda r: (
            r.continue_()
            if r.request.method == "OPTIONS"
            else r.fulfill(**sse(v.site.origin, events))
        ),
    )
    launcher(page).click()
    ask(page, "long question")
    cut = page.locator(f"{HOST} .msg.bot.incomplete")
    expect(cut).to_contain_text("The first half of an answer")
    expect(cut).to_contain_text("cut off")
    expect(page.locator(NOTICE)).to_contain_text("restarting")
    log = stored(page, "log", stack.proxy_url)
    assert log[-1]["t"] == "The first half of an answer" and log[-1]["x"] == 1
    v.shot("1-cut")
    page.unroute(CHAT)
    page.reload()  # still marked after a reload
    page.wait_for_function("() => !!window.QuartProxyChat")
    expect(page.locator(f"{HOST} .msg.bot.incomplete")).to_have_count(1)
    page.get_by_role("button", name="Try again").click()
    expect(page.locator(BOT).last).to_have_text("You said: long question")
    expect(page.locator(f"{HOST} .msg.bot.incomplete")).to_have_count(1)  # the cut one only
    v.shot("2-retried")


# -------------------------------------------------------------------- 5. new conversation


def test_new_conversation_asks_first_and_is_away_from_close(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "keep me")
    expect(page.locator(BOT)).to_have_text(["You said: keep me"])
    reset = page.get_by_role("button", name="New conversation")
    close = page.locator(f"{HOST} header button.close")
    gap = close.bounding_box()["x"] - (reset.bounding_box()["x"] + reset.bounding_box()["width"])
    assert gap >= 100, gap  # not next to each other
    reset.click()
    expect(page.get_by_role("group", name=re.compile("Start a new conversation"))).to_be_visible()
    v.shot("1-confirm")
    page.get_by_role("button", name="Keep this conversation").click()
    expect(page.locator(USER)).to_have_text(["keep me"])
    reset.click()
    page.keyboard.press("Escape")  # Escape cancels the question, not the panel
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator(USER)).to_have_count(1)
    reset.click()
    page.get_by_role("button", name="Delete and start over").click()
    expect(page.locator(USER)).to_have_count(0)


# -------------------------------------------------------------------------- 6. storage

RECORD = """
window.__writes = [];
for (const kind of ['localStorage', 'sessionStorage']) {
  const s = window[kind];
  const set = s.setItem.bind(s), del = s.removeItem.bind(s);
  const setItem = (k, v) => { __writes.push(kind + ':' + k); set(k, v); };
  const removeItem = (k) => { __writes.push(kind + ':-' + k); del(k); };
  Object.defineProperty(s, 'setItem', { value: setItem });
  Object.defineProperty(s, 'removeItem', { value: removeItem });
}
"""


def test_nothing_is_stored_until_the_visitor_opens_the_chat(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    v.context.add_init_script(RECORD)
    page = v.open(stack)
    expect(launcher(page)).to_be_visible()
    page.evaluate("() => new Promise(r => setTimeout(r, 0))")  # a turn of the event loop
    assert page.evaluate("() => window.__writes") == []
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    launcher(page).click()
    ask(page, "hello")
    expect(page.locator(BOT)).to_have_text(["You said: hello"])
    writes = page.evaluate("() => window.__writes")
    assert any(w.endswith(":install") for w in writes)  # now, after the visitor acted


# ---------------------------------------------------------------------------- 7. theme


@pytest.mark.parametrize(
    ("site_css", "os", "panel_bg"),
    [
        ("body{background:#0f172a;color:#eee}", "light", "rgb(17, 24, 39)"),  # dark site
        ("body{background:#fafafa}", "dark", "rgb(255, 255, 255)"),  # light site, dark OS
    ],
)
def test_auto_theme_follows_the_site(
    stack: Stack, visit: Any, site_css: str, os: str, panel_bg: str
) -> None:
    v: Visit = visit(color_scheme=os)
    page = v.open(stack, head=f"<style>{site_css}</style>")
    launcher(page).click()
    bg = page.locator(PANEL).evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg == panel_bg
    v.shot("panel")


def test_site_accent_survives_dark_mode(stack: Stack, visit: Any) -> None:
    v: Visit = visit(color_scheme="dark")
    page = v.open(stack, head="<style>:root{--qpc-accent:#c2185b}body{background:#000}</style>")
    launcher(page).click()
    header = page.locator(f"{HOST} header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(194, 24, 91)"
    v.shot("accent-dark")


# ------------------------------------------------------------------------ 8. long paste


def test_text_over_the_limit_is_never_cut_silently(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    long = "word " * 900  # 4,500 characters, pasted
    textbox(page).fill(long)
    assert len(textbox(page).input_value()) == len(long)
    counter = page.locator(f"{HOST} .counter")
    expect(counter).to_be_visible()
    expect(counter).to_contain_text("too long")
    expect(textbox(page)).to_have_attribute("aria-invalid", "true")
    v.shot("over-limit")
    textbox(page).press("Enter")
    expect(page.locator(NOTICE)).to_contain_text("4,499")  # trimmed length, then the limit
    expect(page.locator(NOTICE)).to_contain_text("4,000")
    expect(page.locator(USER)).to_have_count(0)
    assert len(textbox(page).input_value()) == len(long)


# ------------------------------------------------------------------------ 9. landscape


def test_landscape_phone_gets_the_full_screen(stack: Stack, visit: Any) -> None:
    v: Visit = visit(
        viewport={"width": 667, "height": 375},
        is_mobile=True,
        has_touch=True,
        reduced_motion="reduce",  # the box measured at rest, not mid-animation
    )
    page = v.open(stack)
    launcher(page).click()
    box = page.locator(PANEL).bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 667, 375), box
    v.shot("landscape")


# ------------------------------------------------------------------------------ 10. minor


def test_screen_reader_hears_underscores(stack: Stack, visit: Any) -> None:
    stack.n8n.script("var", ["Set N8N_WEBHOOK_URL and ", "**restart** it.\n"])
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "var")
    expect(page.locator(BOT)).to_have_text("Set N8N_WEBHOOK_URL and restart it.")
    expect(page.locator(LIVE)).to_contain_text("Set N8N_WEBHOOK_URL and restart it.")


def test_launcher_stays_on_screen_when_the_body_is_transformed(stack: Stack, visit: Any) -> None:
    v: Visit = visit(viewport={"width": 800, "height": 600})
    page = v.open(
        stack,
        head="<style>body{transform:translateZ(0);min-height:5000px}</style>",
    )
    page.evaluate("() => window.scrollTo(0, 3000)")
    page.wait_for_function("() => window.scrollY > 2000")
    box = launcher(page).bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 600, box
    v.shot("transformed-body")


def test_no_raw_markers_while_streaming(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script("hours", ["We are open ", "**Monday", " to Friday**", " daily."])
    gate = script.gate(2)
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "hours")
    expect(page.locator(BOT)).to_have_text("We are open Monday")
    expect(page.locator(f"{BOT} strong")).to_have_text("Monday")
    v.shot("streaming-bold")
    gate.set()
    expect(page.locator(BOT)).to_have_text("We are open Monday to Friday daily.")
    assert script.finished.wait(WAIT)


def test_auto_theme_follows_a_sites_own_dark_mode_switch(stack: Stack, visit: Any) -> None:
    v: Visit = visit(color_scheme="light")
    page = v.open(stack, head="<style>body.dark{background:#101010}</style>")
    launcher(page).click()
    panel = page.locator(PANEL)
    expect(panel).to_have_css("background-color", "rgb(255, 255, 255)")
    page.evaluate("() => document.body.classList.add('dark')")
    expect(panel).to_have_css("background-color", "rgb(17, 24, 39)")
    page.evaluate("() => document.body.classList.remove('dark')")
    expect(panel).to_have_css("background-color", "rgb(255, 255, 255)")
