"""/status in real Chromium: it renders on a phone-sized screen, its figures and charts update
after traffic, and nothing is refused by its CSP or logged as an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import BROWSER_HEADERS, FINGERPRINT

from .conftest import ARTIFACTS
from .harness import Stack

pytestmark = pytest.mark.browser
TOKEN = "status-page-token-0123456789abcdef"
WAIT_MS = 15_000  # the page polls every 3 s; a bound, not a wait


def chat(stack: Stack, *messages: str) -> None:
    with httpx.Client(base_url=stack.proxy_url, headers=BROWSER_HEADERS, timeout=15) as c:
        origin = {"Origin": stack.page_origin}
        r = c.post("/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers=origin)
        assert r.status_code == 201, r.text
        auth = {
            **origin,
            "Authorization": f"Bearer {r.json()['token']}",
            "X-Chat-Fingerprint": FINGERPRINT,
        }
        for message in messages:
            r = c.post("/api/v1/chat/message", json={"message": message}, headers=auth)
            assert r.status_code == 200, r.text


class Watched:
    """A page with its console errors, page errors and CSP violations recorded."""

    def __init__(self, browser: Any, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.context.add_init_script(  # runs before the page's own script, outside its CSP
            "document.addEventListener('securitypolicyviolation', e =>"
            " (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))"
        )
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )

    def violations(self) -> list[str]:
        return list(self.page.evaluate("() => window.__csp || []"))


def test_status_page_renders_on_a_phone_and_updates_after_traffic(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack()
    chat(stack, "before")
    w = Watched(browser, viewport={"width": 390, "height": 844}, device_scale_factor=1)
    try:
        page = w.page
        page.goto(stack.proxy_url + "/status")
        expect(page.locator("h1")).to_have_text("quartproxy status")
        # metrics are process-wide (other tests' turns count too): compare with the first render
        before = int(page.locator("#turns_total").inner_text())
        assert before >= 1
        expect(page.locator("#workers")).to_have_text("1")
        expect(page.locator("#state")).to_have_text("ok", timeout=WAIT_MS)

        chat(stack, "one", "two", "three")
        # the script's poll brings the new figures and redraws the charts
        expect(page.locator("#turns_total")).to_have_text(str(before + 3), timeout=WAIT_MS)
        expect(page.locator("#turns_per_s")).not_to_have_text("0")
        # a line, not a dot, once the sampler (every 5 s) has added a reading after the traffic
        page.wait_for_function(
            "() => document.querySelector('#c-turns_per_s polyline')"
            ".getAttribute('points').split(' ').length >= 2",
            timeout=WAIT_MS,
        )
        expect(page.locator("#memory_bytes")).to_contain_text("MiB")

        # readable on a phone: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "status.png"), full_page=True)
        assert w.violations() == []
        assert w.problems == []
    finally:
        w.context.close()


def test_status_page_with_metrics_token_asks_the_browser_for_it(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """With METRICS_TOKEN the page is refused without it (401 + Basic challenge, so a browser
    prompts) and works with it as the Basic-auth password, polls included."""
    stack = make_stack(METRICS_TOKEN=TOKEN)
    r = httpx.get(stack.proxy_url + "/status")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    assert TOKEN not in r.text

    w = Watched(browser, http_credentials={"username": "ops", "password": TOKEN})
    try:
        w.page.goto(stack.proxy_url + "/status")
        before = int(w.page.locator("#turns_total").inner_text())
        chat(stack, "hello")
        expect(w.page.locator("#turns_total")).to_have_text(str(before + 1), timeout=WAIT_MS)
        expect(w.page.locator("#state")).to_have_text("ok")
        assert w.violations() == []
        assert w.problems == []
    finally:
        w.context.close()
