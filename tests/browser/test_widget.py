"""The embeddable widget in real headless Chromium, on a customer page served from another
origin than the proxy. Every assertion is on what a visitor sees (or what the browser sent)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import WAIT, Stack, iter_requests

pytestmark = pytest.mark.browser

HOST = "#quartproxy-chat"
BOT = f"{HOST} .msg.bot:not(.typing):not(.welcome) .body"
USER = f"{HOST} .msg.user .body"
NOTICE = f"{HOST} .msg.notice"
TYPING = f"{HOST} .msg.typing"


def launcher(page: Any) -> Any:
    return page.locator(f"{HOST} button.launcher")


def textbox(page: Any) -> Any:
    return page.get_by_role("textbox", name="Message")


def ask(page: Any, text: str) -> None:
    # The widget takes a new message once the previous answer has ended (its `end` event can
    # come just after the last text is on screen): wait for the send button to be enabled.
    expect(page.locator(f"{HOST} button.send")).not_to_have_attribute("aria-disabled", "true")
    textbox(page).fill(text)
    textbox(page).press("Enter")


def stored(page: Any, name: str, proxy: str) -> Any:
    raw = page.evaluate("k => localStorage.getItem(k)", f"quartproxy-chat:{proxy}:{name}")
    return json.loads(raw) if raw else None


def active_in_widget(page: Any) -> str:
    """What has keyboard focus inside the widget's shadow root ('' when outside)."""
    return str(
        page.evaluate(
            """() => {
              const host = document.getElementById('quartproxy-chat');
              if (document.activeElement !== host) return '';
              const a = host.shadowRoot.activeElement;
              return a ? (a.getAttribute('aria-label') || a.id || a.className) : '';
            }"""
        )
    )


def test_streamed_turn_cross_origin(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script(
        "What are your opening hours?",
        [
            "We are open ",
            "**Monday to Friday**, ",
            "9:00 to 17:00.\n\n",
            "- Saturday: 10-14\n",
            "- Sunday: closed\n\n",
            "Details: [our page](https://example.com/hours)",
        ],
    )
    hold = script.gate(len(script.chunks) - 1)  # the last chunk waits for the test
    v: Visit = visit()
    page = v.open(stack)
    assert v.site.origin != stack.proxy_url  # really another origin
    v.shot("1-closed")
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")
    launcher(page).click()
    expect(page.get_by_role("dialog", name="Chat with us")).to_be_visible()
    expect(page.locator(f"{HOST} .welcome")).to_contain_text("How can I help")
    v.shot("2-open")

    ask(page, "What are your opening hours?")
    expect(page.locator(USER)).to_have_text(["What are your opening hours?"])
    # Streamed: part of the answer is on screen while the rest is still held back upstream.
    expect(page.locator(BOT)).to_contain_text("Sunday: closed")
    expect(page.locator(BOT)).not_to_contain_text("Details")
    expect(page.locator(f"{HOST} .msg.bot[aria-busy=true]")).to_have_count(1)
    v.shot("3-streaming")
    hold.set()
    expect(page.locator(BOT)).to_contain_text("Details: our page")
    expect(page.locator(f"{HOST} .msg.bot[aria-busy=true]")).to_have_count(0)
    v.shot("4-answered")

    answer = page.locator(BOT)
    expect(answer).to_have_count(1)
    expect(answer.locator("strong")).to_have_text("Monday to Friday")
    expect(answer.locator("li")).to_have_text(["Saturday: 10-14", "Sunday: closed"])
    link = answer.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/hours")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    # The polite live region read the answer out, and the input is ready for the next one.
    expect(page.locator(f"{HOST} [aria-live=polite]")).to_contain_text("our page")
    expect(textbox(page)).to_have_value("")

    # Only the page's own origin and the proxy were contacted.
    assert not list(iter_requests(v.requests, v.site.origin, stack.proxy_url))
    assert any("/api/v1/chat/message" in u for u in v.requests)
    # The upstream got the message once, with the session the widget created.
    sent = [r for r in stack.n8n.received if r.get("action") == "sendMessage"]
    assert [r["chatInput"] for r in sent] == ["What are your opening hours?"]
    assert sent[0]["sessionId"] == stored(page, "session", stack.proxy_url)["sid"]
    assert not v.errors


def test_page_styles_do_not_leak_into_the_widget(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    colour = page.locator(f"{HOST} .welcome").evaluate("e => getComputedStyle(e).color")
    font = page.locator(f"{HOST} .panel").evaluate("e => getComputedStyle(e).fontFamily")
    assert colour == "rgb(17, 24, 39)"  # the widget's own text colour, not the page's magenta
    assert "Georgia" not in font
    # And nothing of the widget's CSS reaches the page.
    page_p = page.locator("p").first.evaluate("e => getComputedStyle(e).color")
    assert page_p == "rgb(255, 0, 255)"


@pytest.mark.parametrize("keep_server_history", [False, True], ids=["local-copy", "server"])
def test_reload_restores_history(make_stack: Any, visit: Any, keep_server_history: bool) -> None:
    stack: Stack = make_stack()
    stack.n8n.remember = keep_server_history
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "first question")
    expect(page.locator(BOT)).to_have_text(["You said: first question"])
    ask(page, "second question")
    expect(page.locator(BOT)).to_have_text(
        ["You said: first question", "You said: second question"]
    )
    if keep_server_history:
        # Lose the local copy: the transcript must come back from the proxy's history.
        page.evaluate("k => localStorage.removeItem(k)", f"quartproxy-chat:{stack.proxy_url}:log")
    page.reload()
    page.wait_for_function("() => !!window.QuartProxyChat")
    # The panel was open: it reopens, without stealing focus from the page.
    expect(page.get_by_role("dialog")).to_be_visible()
    assert active_in_widget(page) == ""
    expect(page.locator(USER)).to_have_text(["first question", "second question"])
    expect(page.locator(BOT)).to_have_text(
        ["You said: first question", "You said: second question"]
    )
    v.shot("restored")
    # The same session goes on: no new session was created by the reload.
    creates = [u for u in v.requests if u.endswith("/api/v1/session/create")]
    assert len(creates) == 1
    ask(page, "third question")
    expect(page.locator(BOT)).to_have_count(3)


def test_new_conversation_forgets_everything(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "remember me")
    expect(page.locator(BOT)).to_have_text(["You said: remember me"])
    old = stored(page, "session", stack.proxy_url)
    page.get_by_role("button", name="New conversation").click()  # asks first
    with page.expect_request(lambda r: r.method == "DELETE") as deleted:
        page.get_by_role("button", name="Delete and start over").click()
    assert deleted.value.headers["authorization"] == f"Bearer {old['token']}"
    expect(page.locator(USER)).to_have_count(0)
    expect(page.locator(BOT)).to_have_count(0)
    expect(page.locator(f"{HOST} .welcome")).to_be_visible()
    page.reload()
    page.wait_for_function("() => !!window.QuartProxyChat")
    expect(page.locator(USER)).to_have_count(0)
    ask(page, "hello again")
    expect(page.locator(BOT)).to_have_text(["You said: hello again"])
    assert stored(page, "session", stack.proxy_url)["sid"] != old["sid"]


def test_network_drop_mid_answer_resumes_without_loss_or_duplicates(
    stack: Stack, visit: Any
) -> None:
    parts = ["Once upon a time, ", "there was ", "a widget ", "that never lost a word."]
    script = stack.n8n.script("story", parts)
    g1, g3 = script.gate(1), script.gate(3)
    v: Visit = visit()
    page = v.open(stack, via_relay=True)

    # The first reconnection attempt fails too (still offline); later ones go through.
    resumes: list[dict[str, str]] = []

    def on_resume(route: Any) -> None:
        resumes.append(route.request.headers)
        if len(resumes) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(re.compile(r".*/api/v1/chat/message/[0-9a-f-]+$"), on_resume)
    launcher(page).click()
    ask(page, "story")
    expect(page.locator(BOT)).to_have_text("Once upon a time,")
    v.shot("1-before-drop")

    stack.cut()  # the TCP connection carrying the answer dies mid-body
    expect(page.locator(NOTICE)).to_contain_text("Reconnecting")
    v.shot("2-reconnecting")
    g1.set()  # meanwhile the answer goes on upstream: "there was " is only in the proxy's buffer
    assert script.sent[1].wait(WAIT)

    # Replayed after the drop, once: no word lost, none doubled; the end is still held back.
    expect(page.locator(BOT)).to_have_text("Once upon a time, there was a widget")
    expect(page.locator(NOTICE)).to_have_count(0)
    v.shot("3-resumed")
    g3.set()
    expect(page.locator(BOT)).to_have_text(
        "Once upon a time, there was a widget that never lost a word."
    )
    expect(page.locator(BOT)).to_have_count(1)

    assert stack.relay.cuts == 1
    assert len(resumes) >= 2
    mid, seq = resumes[-1]["last-event-id"].rsplit(":", 1)
    assert resumes[-1]["authorization"].startswith("Bearer ")
    assert int(seq) >= 1  # resumed after what had been shown, not from the start
    posts = [r for r in stack.n8n.received if r.get("action") == "sendMessage"]
    assert len(posts) == 1  # the question was not sent twice
    log = stored(page, "log", stack.relay_url)
    assert [m["t"] for m in log] == ["story", "".join(parts)]
    assert log[1]["id"] == mid


def test_sse_blocked_falls_back_to_websocket(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack, **{"first-byte-timeout": "1500"})
    # A buffering middlebox: the SSE request is swallowed and no byte ever comes back.
    stalled: list[Any] = []
    page.route(re.compile(r".*/api/v1/chat/message$"), lambda route: stalled.append(route))
    sockets: list[Any] = []
    frames: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    launcher(page).click()
    ask(page, "are you there?")
    expect(page.locator(BOT)).to_have_text("You said: are you there?")
    assert len(stalled) == 1
    assert [s.url for s in sockets] == [stack.proxy_url.replace("http", "ws") + "/api/v1/chat/ws"]
    # The answer really came over the socket (not over the NDJSON last resort).
    assert "".join(f.get("text", "") for f in frames if f.get("type") == "delta") == (
        "You said: are you there?"
    )
    assert not [u for u in v.requests if u.endswith("/api/v1/chat/stream")]
    v.shot("websocket")
    # The fallback is remembered: the next turn goes straight to the WebSocket.
    ask(page, "still there?")
    expect(page.locator(BOT)).to_have_count(2)
    assert len(stalled) == 1
    assert len(sockets) == 2


def test_sse_and_websocket_blocked_fall_back_to_ndjson(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    page.route(re.compile(r".*/api/v1/chat/message$"), lambda route: route.abort("failed"))
    page.route_web_socket(re.compile(r".*/api/v1/chat/ws$"), lambda ws: ws.close(code=1011))
    launcher(page).click()
    with page.expect_response(re.compile(r".*/api/v1/chat/stream$")) as ndjson:
        ask(page, "plain fetch please")
    assert ndjson.value.status == 200
    expect(page.locator(BOT)).to_have_text("You said: plain fetch please")


def test_rate_limit_message(make_stack: Any, visit: Any) -> None:
    stack: Stack = make_stack(RATE_LIMIT_SESSION="1/minute")
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "one")
    expect(page.locator(BOT)).to_have_text(["You said: one"])
    ask(page, "two")
    notice = page.locator(NOTICE)
    expect(notice).to_have_text(
        re.compile(r"sending messages too quickly\. Please wait \d+ seconds")
    )
    seconds = int(re.search(r"wait (\d+) seconds", notice.inner_text()).group(1))  # type: ignore[union-attr]
    assert 1 <= seconds <= 60
    # The refused message is not in the conversation; it is back in the box to send later.
    expect(page.locator(USER)).to_have_text(["one"])
    expect(textbox(page)).to_have_value("two")
    expect(page.get_by_role("button", name="Send")).to_have_attribute("aria-disabled", "true")
    expect(page.locator(f"{HOST} [aria-live=polite]")).to_contain_text("too quickly")
    v.shot("rate-limited")


def test_reload_mid_answer_picks_the_answer_up(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script("long one", ["First part. ", "Second part. ", "Third part."])
    gate = script.gate(2)
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "long one")
    expect(page.locator(BOT)).to_have_text("First part. Second part.")
    page.reload()  # the visitor navigates away mid-answer
    page.wait_for_function("() => !!window.QuartProxyChat")
    expect(page.locator(BOT)).to_have_text("First part. Second part.")  # what was shown, kept
    gate.set()
    expect(page.locator(BOT)).to_have_text("First part. Second part. Third part.")
    expect(page.locator(BOT)).to_have_count(1)
    expect(page.locator(USER)).to_have_text(["long one"])
    posts = [r for r in stack.n8n.received if r.get("action") == "sendMessage"]
    assert len(posts) == 1
    log = stored(page, "log", stack.proxy_url)
    assert [m["t"] for m in log] == ["long one", "First part. Second part. Third part."]
