"""Keyboard-only use, contrast, themes, languages and the page-facing JS API, in real Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import Stack
from .test_widget import BOT, HOST, USER, active_in_widget, ask, launcher, textbox

pytestmark = pytest.mark.browser

CONTRAST_JS = """
(selectors) => {
  const root = document.getElementById('quartproxy-chat').shadowRoot;
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = c.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = e => {
    for (; e; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
      const bg = getComputedStyle(e).backgroundColor;
      if (bg && !/rgba\\(.*,\\s*0\\)$/.test(bg) && bg !== 'transparent') return bg;
    }
    return 'rgb(255, 255, 255)';
  };
  const out = {};
  for (const sel of selectors) {
    const e = root.querySelector(sel);
    const fg = lum(rgb(getComputedStyle(e).color)), bg = lum(rgb(background(e)));
    out[sel] = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  }
  return out;
}
"""
TEXTS = [
    ".welcome .body",
    ".msg.user .body",
    ".msg.bot:not(.welcome) .body",
    ".msg.bot a",
    "h2",
    ".msg.notice",
    "textarea",
]


def test_keyboard_only(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(stack)
    page.locator("#first-link").focus()
    page.keyboard.press("Tab")
    assert active_in_widget(page) == "Open chat"
    outline = page.evaluate(
        "() => getComputedStyle("
        "document.getElementById('quartproxy-chat').shadowRoot.activeElement).outlineStyle"
    )
    assert outline == "solid"  # the focus is visible
    v.shot("1-launcher-focused")

    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert active_in_widget(page) == "qpc-input"  # focus moved into the panel, to the input
    page.keyboard.type("Hello by keyboard")
    page.keyboard.press("Enter")
    expect(page.locator(BOT)).to_have_text(["You said: Hello by keyboard"])
    assert active_in_widget(page) == "qpc-input"  # and stays there for the next message

    # Shift+Enter makes a new line instead of sending.
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(textbox(page)).to_have_value("line one\nline two")
    page.keyboard.press("Enter")
    expect(page.locator(USER)).to_have_text(["Hello by keyboard", "line one\nline two"])
    expect(page.locator(BOT)).to_have_count(2)

    # Every control is reachable in a sensible order: each answer's copy button, the log, ...
    for _ in range(2):
        page.keyboard.press("Shift+Tab")
        assert active_in_widget(page) == "Copy answer"
    page.keyboard.press("Shift+Tab")
    assert active_in_widget(page) == "Conversation"  # the scrollable log
    page.keyboard.press("Shift+Tab")
    assert active_in_widget(page) == "Close chat"
    page.keyboard.press("Shift+Tab")
    assert active_in_widget(page) == "New conversation"
    v.shot("2-reset-focused")
    for _ in range(5):  # close, log, two copy buttons, the text box
        page.keyboard.press("Tab")
    assert active_in_widget(page) == "qpc-input"
    page.keyboard.press("Tab")
    assert active_in_widget(page) == "Send"

    # Escape closes and gives focus back to the launcher.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert active_in_widget(page) == "Open chat"
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")

    # Space reopens; the new-conversation button works from the keyboard.
    page.keyboard.press("Space")
    expect(page.get_by_role("dialog")).to_be_visible()
    for _ in range(5):
        page.keyboard.press("Shift+Tab")
    assert active_in_widget(page) == "New conversation"
    page.keyboard.press("Enter")  # asks first, the safe choice focused
    assert active_in_widget(page) == "qpc-keep"  # "Keep this conversation"
    page.keyboard.press("Tab")
    assert active_in_widget(page) == "qpc-wipe"  # "Delete and start over"
    page.keyboard.press("Enter")
    expect(page.locator(USER)).to_have_count(0)
    assert active_in_widget(page) == "qpc-input"
    v.shot("3-after-reset")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_and_colour_scheme(stack: Stack, visit: Any, scheme: str) -> None:
    v: Visit = visit(color_scheme=scheme)
    stack.n8n.script("contrast", ["Plain text and ", "[a link](https://example.com/).\n"])
    # Theme `auto` follows the site; this site lets the visitor's OS choose (no background).
    page = v.open(stack, head='<meta name="color-scheme" content="light dark">')
    page.evaluate("() => window.QuartProxyChat.on('response', () => { window.__answered = 1; })")
    launcher(page).click()
    ask(page, "contrast")
    expect(page.locator(BOT)).to_have_text(["Plain text and a link."])
    # The text shows at the last delta; the widget takes new messages after `end`.
    page.wait_for_function("() => window.__answered === 1")
    page.evaluate(
        "() => window.QuartProxyChat.send('x'.repeat(5000))"
    )  # too long: a notice, nothing sent
    expect(page.locator(f"{HOST} .msg.notice")).to_contain_text("too long")
    ratios = page.evaluate(CONTRAST_JS, TEXTS)
    assert all(r >= 4.5 for r in ratios.values()), ratios
    bg = page.locator(f"{HOST} .panel").evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg == ("rgb(17, 24, 39)" if scheme == "dark" else "rgb(255, 255, 255)")
    v.shot(scheme)


def test_reduced_motion_mobile_and_german(stack: Stack, visit: Any) -> None:
    v: Visit = visit(
        reduced_motion="reduce",
        viewport={"width": 390, "height": 780},
        locale="de-DE",
        has_touch=True,
        is_mobile=True,
    )
    gate = stack.n8n.script("Hallo", ["Guten ", "Tag!"]).gate(0)
    page = v.open(stack)
    page.get_by_role("button", name="Chat öffnen").click()
    panel = page.get_by_role("dialog", name="Chatten Sie mit uns")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (390, 780)  # full screen
    expect(page.get_by_role("textbox", name="Nachricht")).to_have_attribute(
        "placeholder", "Nachricht schreiben…"
    )
    page.get_by_role("textbox", name="Nachricht").fill("Hallo")
    page.get_by_role("button", name="Senden").click()
    typing = page.locator(f"{HOST} .msg.typing")
    expect(typing).to_have_attribute("aria-label", "Der Assistent schreibt")
    names = typing.locator("i").evaluate_all(
        "els => els.map(e => getComputedStyle(e).animationName)"
    )
    assert names == ["none", "none", "none"]  # no bouncing dots for who asked for less motion
    v.shot("typing")
    gate.set()
    expect(page.locator(BOT)).to_have_text(["Guten Tag!"])
    v.shot("answered")


def test_attributes_theme_variables_and_js_api(stack: Stack, visit: Any) -> None:
    v: Visit = visit()
    page = v.open(
        stack,
        head="<style>#quartproxy-chat { --qpc-accent: #6d28d9; }</style>",
        title="Ask ACME",
        welcome="Welcome to **ACME**.",
        placeholder="Your question",
        position="left",
        lang="fr",
        strings='{"send": "Go!"}',
        open="true",
    )
    dialog = page.get_by_role("dialog", name="Ask ACME")
    expect(dialog).to_be_visible()  # data-open
    assert active_in_widget(page) == ""  # opening on load does not steal the focus
    expect(page.locator(f"{HOST} .welcome strong")).to_have_text("ACME")
    expect(page.get_by_role("textbox", name="Message")).to_have_attribute(
        "placeholder", "Your question"
    )
    expect(page.get_by_role("button", name="Go!")).to_be_visible()  # overridden string
    expect(page.get_by_role("button", name="Fermer le chat").first).to_be_visible()  # French
    accent = page.locator(f"{HOST} header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert accent == "rgb(109, 40, 217)"
    box = launcher(page).bounding_box()
    assert box is not None and box["x"] < 100  # bottom-left
    v.shot("custom")

    page.evaluate(
        """() => {
          for (const name of ['open', 'close', 'message', 'response', 'reset', 'session'])
            window.QuartProxyChat.on(name, d => window.__events.push([name, d && d.text || '']));
        }"""
    )
    page.evaluate("() => window.QuartProxyChat.close()")
    expect(dialog).to_be_hidden()
    page.evaluate("() => window.QuartProxyChat.open()")
    expect(dialog).to_be_visible()
    assert active_in_widget(page) == "qpc-input"  # an explicit open() moves focus in
    page.evaluate("() => window.QuartProxyChat.send('api hello')")
    expect(page.locator(BOT)).to_have_text(["You said: api hello"])
    # The text is on screen from the last delta; `response` fires at `end`, just after.
    page.wait_for_function("() => window.__events.some(e => e[0] === 'response')")
    page.evaluate("() => window.QuartProxyChat.reset()")
    expect(page.locator(USER)).to_have_count(0)
    events = page.evaluate("() => window.__events")
    assert events == [
        ["close", ""],
        ["open", ""],
        ["message", "api hello"],
        ["session", ""],
        ["response", "You said: api hello"],
        ["reset", ""],
    ], events
