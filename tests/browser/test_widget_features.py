"""What people expect of a chat widget (issue 18), in real headless Chromium: an unread badge,
stop and copy, starter prompts, subtitle, footer, timestamps, avatar, inline and fullscreen
modes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import WAIT, Stack
from .test_widget import BOT, HOST, NOTICE, USER, ask, launcher, stored
from .test_widget_visitor import LIVE, RECORD

pytestmark = pytest.mark.browser


# ----------------------------------------------------------- expected: an unread badge


def test_answer_while_closed_shows_an_unread_badge(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script("later", ["Here is ", "the answer."])
    gate = script.gate(1)
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "later")
    expect(page.locator(BOT)).to_have_text("Here is")
    page.keyboard.press("Escape")  # the visitor closes the chat while the answer runs
    gate.set()
    badge = page.locator(f"{HOST} .launcher .badge")
    expect(badge).to_have_text("1")
    expect(launcher(page)).to_have_attribute("aria-label", re.compile("New answer"))
    expect(page.locator(LIVE)).to_contain_text("New answer from the assistant")
    expect(page.locator(LIVE)).not_to_contain_text("the answer.")  # not read out while closed
    v.shot("unread-badge")
    launcher(page).click()
    expect(badge).to_be_hidden()
    expect(page.locator(BOT)).to_have_text("Here is the answer.")


# ------------------------------------------------- expected: stop and copy an answer


def test_stop_a_streaming_answer_then_copy_one(stack: Stack, visit: Any) -> None:
    script = stack.n8n.script("long", ["The beginning. ", "The rest."])
    gate = script.gate(1)
    v: Visit = visit()
    v.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=v.site.origin)
    page = v.open(stack)
    launcher(page).click()
    ask(page, "long")
    expect(page.locator(BOT)).to_have_text("The beginning.")
    stop = page.get_by_role("button", name="Stop the answer")
    expect(stop).to_be_visible()
    expect(page.locator(f"{HOST} button.send")).to_be_hidden()  # Stop stands in for Send
    stop.click()
    stopped = page.locator(f"{HOST} .msg.bot.incomplete")
    expect(stopped).to_contain_text("You stopped this answer.")
    expect(stop).to_be_hidden()
    expect(page.locator(NOTICE)).to_have_count(0)  # nothing went wrong
    last = stored(page, "log", stack.proxy_url)[-1]
    assert (last["t"], last["x"]) == ("The beginning. ", 2)  # kept, marked as stopped
    v.shot("1-stopped")
    gate.set()  # the gateway still finishes n8n's run (and keeps it in the history)
    assert script.finished.wait(WAIT)
    ask(page, "copy me")
    expect(page.locator(BOT).last).to_have_text("You said: copy me")
    page.locator(f"{HOST} .msg.bot:not(.welcome)").last.get_by_role(
        "button", name="Copy answer"
    ).click()
    expect(page.locator(LIVE)).to_contain_text("Answer copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == "You said: copy me"
    v.shot("2-copied")


# ------------------------- expected: starters, subtitle, footer, timestamps, page modes


def test_starters_subtitle_footer_and_timestamps(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(
        stack,
        subtitle="We answer in minutes",
        footer="AI answers can be wrong. [Privacy](https://example.com/privacy)",
        starters=json.dumps(["What are your opening hours?", "Where are you?"]),
    )
    launcher(page).click()
    expect(page.locator(f"{HOST} header .sub")).to_have_text("We answer in minutes")
    expect(page.locator(f"{HOST} .foot a")).to_have_attribute("href", "https://example.com/privacy")
    starters = page.locator(f"{HOST} .starters button")
    expect(starters).to_have_text(["What are your opening hours?", "Where are you?"])
    v.shot("1-starters")
    starters.first.click()
    expect(page.locator(USER)).to_have_text(["What are your opening hours?"])
    expect(page.locator(BOT)).to_have_text(["You said: What are your opening hours?"])
    expect(page.locator(f"{HOST} .starters")).to_have_count(0)  # gone once the chat began
    times = page.locator(f"{HOST} .msg:not(.welcome) time.at")
    expect(times).to_have_count(2)
    assert re.fullmatch(r"\d\d:\d\d( [AP]M)?", times.first.inner_text()), times.first.inner_text()
    v.shot("2-timestamps")


def test_inline_mode_lives_in_a_page_element(stack: Stack, visit: Any) -> None:
    from .harness import embed_page

    v: Visit = visit()
    v.context.add_init_script(RECORD)
    box = '<div id="help" style="width:420px;height:520px;margin:20px"></div>'
    v.site.pages["/inline"] = embed_page(
        f"{stack.proxy_url}/static/widget.js", {"mode": "inline", "target": "#help"}, before=box
    )
    page = v.page
    page.goto(v.site.origin + "/inline")
    page.wait_for_function("() => !!(window.QuartProxyChat && window.QuartProxyChat.version)")
    assert page.evaluate("() => document.getElementById('quartproxy-chat').parentElement.id") == (
        "help"
    )
    panel = page.get_by_role("region", name="Chat with us")
    expect(panel).to_be_visible()  # open from the start, no launcher
    expect(launcher(page)).to_be_hidden()
    outer = page.locator("#help").bounding_box()
    inner = panel.bounding_box()
    assert (inner["x"], inner["y"], inner["width"], inner["height"]) == (
        outer["x"],
        outer["y"],
        outer["width"],
        outer["height"],
    ), (inner, outer)
    assert page.evaluate("() => window.__writes") == []  # open, but nothing stored yet
    ask(page, "inline?")
    expect(page.locator(BOT)).to_have_text(["You said: inline?"])
    page.keyboard.press("Escape")
    expect(panel).to_be_visible()  # nothing to close to
    v.shot("inline")


def test_fullscreen_mode_fills_the_page(stack: Stack, visit: Any) -> None:
    v: Visit = visit(viewport={"width": 1024, "height": 700}, reduced_motion="reduce")
    page = v.open(stack, mode="fullscreen")
    panel = page.get_by_role("region", name="Chat with us")
    expect(panel).to_be_visible()
    b = panel.bounding_box()
    assert (b["x"], b["y"], b["width"], b["height"]) == (0, 0, 1024, 700), b
    expect(launcher(page)).to_be_hidden()
    v.shot("fullscreen")


def test_avatar_is_shown_and_only_from_http(stack: Stack, visit: Any) -> None:
    avatar = f"{stack.proxy_url}/static/avatar-missing.png"
    v: Visit = visit()
    page = v.open(stack, avatar=avatar)
    launcher(page).click()
    img = page.locator(f"{HOST} header img.avatar")
    expect(img).to_have_attribute("src", avatar)
    expect(img).to_have_attribute("alt", "")
    other: Visit = visit()
    page = other.open(stack, avatar="javascript:window.__xss.push('avatar')")
    launcher(page).click()
    expect(page.locator(f"{HOST} header img")).to_have_count(0)
    assert page.evaluate("() => window.__xss") == []
