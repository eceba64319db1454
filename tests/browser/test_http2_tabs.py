"""Ten chat tabs at once against one gateway origin, in real headless Chromium over HTTP/2
(Hypercorn terminating TLS with a trustme certificate; certificate errors are ignored for this
test's browser context only). Over HTTP/1.1 a browser opens at most six connections per host,
so ten answers streaming at once is exactly what HTTP/1.1 cannot do; the test also asserts the
protocol the browser actually used (Resource Timing's nextHopProtocol, readable by the page
because the gateway sends Timing-Allow-Origin to allowed origins)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.h2_support import make_tls

from .harness import PageServer, Stack, embed_page
from .test_widget import BOT, ask, launcher

pytestmark = pytest.mark.browser
TABS = 10


@pytest.fixture
def h2_stack(site: PageServer) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_tls(Path(tmp))
        env = {
            "RATE_LIMIT_IP": "1000/minute",
            "RATE_LIMIT_SESSION_CREATE": "1000/minute",
        }
        with Stack(site.origin, env, tls=(tls.certfile, tls.keyfile)) as stack:
            yield stack


def test_ten_tabs_stream_at_once_over_one_http2_origin(
    browser: Any, site: PageServer, h2_stack: Stack
) -> None:
    assert h2_stack.proxy_url.startswith("https://")
    scripts = [
        h2_stack.n8n.script(f"question {i}", [f"Answer {i} begins. ", "The end."])
        for i in range(TABS)
    ]
    gates = [script.gate(1) for script in scripts]  # every answer holds its second part
    # sessionStorage: each tab is its own conversation (localStorage would share one).
    site.pages["/"] = embed_page(
        f"{h2_stack.proxy_url}/static/widget.js",
        {"proxy": h2_stack.proxy_url, "storage": "session"},
    )
    context = browser.new_context(ignore_https_errors=True)
    try:
        pages = [context.new_page() for _ in range(TABS)]
        for page in pages:
            page.goto(site.origin + "/")
            page.wait_for_function(
                "() => !!(window.QuartProxyChat && window.QuartProxyChat.version)"
            )
        for i, page in enumerate(pages):
            launcher(page).click()
            ask(page, f"question {i}")
        # All ten answers are on screen in part, while every one is still held upstream: ten
        # streams open at once to one origin.
        for i, page in enumerate(pages):
            expect(page.locator(BOT)).to_contain_text(f"Answer {i} begins.")
        assert not any(gate.is_set() for gate in gates)
        for gate in gates:
            gate.set()
        for i, page in enumerate(pages):
            expect(page.locator(BOT)).to_have_text(f"Answer {i} begins. The end.")

        for page in pages:
            protocols = page.evaluate(
                """proxy => performance.getEntriesByType('resource')
                    .filter(e => e.name.startsWith(proxy + '/api/'))
                    .map(e => [e.name, e.nextHopProtocol])""",
                h2_stack.proxy_url,
            )
            assert any("/api/v1/chat/message" in name for name, _ in protocols), protocols
            assert {protocol for _, protocol in protocols} == {"h2"}, protocols
        sent = [r["chatInput"] for r in h2_stack.n8n.received if r.get("action") == "sendMessage"]
        assert sorted(sent) == sorted(f"question {i}" for i in range(TABS))
    finally:
        context.close()


def test_the_websocket_fallback_rides_the_http2_connection(
    browser: Any, site: PageServer, h2_stack: Stack
) -> None:
    """SSE swallowed by a middlebox: the widget falls back to its WebSocket, which Chromium
    opens inside the HTTP/2 connection (RFC 8441 extended CONNECT) - no second connection."""
    site.pages["/"] = embed_page(
        f"{h2_stack.proxy_url}/static/widget.js",
        {"proxy": h2_stack.proxy_url, "first-byte-timeout": "1500"},
    )
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(site.origin + "/")
        page.wait_for_function("() => !!(window.QuartProxyChat && window.QuartProxyChat.version)")
        stalled: list[Any] = []
        page.route(re.compile(r".*/api/v1/chat/message$"), lambda route: stalled.append(route))
        launcher(page).click()
        ask(page, "over the socket?")
        expect(page.locator(BOT)).to_have_text("You said: over the socket?")
        assert len(stalled) == 1
        sockets = [(v, p) for t, v, p in h2_stack.seen if t == "websocket"]
        assert sockets == [("2", "/api/v1/chat/ws")]
    finally:
        context.close()
