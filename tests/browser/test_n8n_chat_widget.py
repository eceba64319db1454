"""The real @n8n/chat widget, unchanged, in real headless Chromium, talking to the proxy.

A customer page is served from its own origin (a second Hypercorn on another port) and loads
the widget's published bundle (`npm pack @n8n/chat@1.37.0`, unpacked by
.ci/setup-n8n-chat.sh into a cache outside the repository). Its `webhookUrl` points at the
proxy's /api/v1/n8n/chat, in front of the fake n8n. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from quartproxy.guard import widget_session_key
from tests.support import FakeN8n, running_proxy, served, settings_for

pytestmark = pytest.mark.browser

N8N_CHAT_VERSION = "1.37.0"
CACHE = Path(os.environ.get("QUARTPROXY_CACHE") or Path.home() / ".cache" / "quartproxy")
DIST = CACHE / "n8n-chat" / N8N_CHAT_VERSION / "package" / "dist"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "n8n-chat"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RETURNING_VISITOR = "b7c0e2f4-1111-4a2b-9c3d-0123456789ab"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Customer shop</title>
  <link href="/n8n-chat/style.css" rel="stylesheet">
  <style>body {{ margin: 0; font-family: sans-serif; }} #n8n-chat {{ height: 640px; }}</style>
</head>
<body>
  <div id="n8n-chat"></div>
  <script type="module">
    import {{ createChat }} from '/n8n-chat/chat.bundle.es.js';
    createChat({{
      webhookUrl: '{proxy}/api/v1/n8n/chat',
      enableStreaming: new URLSearchParams(location.search).get('stream') === '1',
      mode: 'fullscreen',
      target: '#n8n-chat',
      initialMessages: ['Hi! Ask me anything.'],
    }});
  </script>
</body>
</html>
"""


@dataclass
class CustomerSite:
    """A static site on its own origin: one page embedding the widget, and the widget's
    files served from that same origin (as a site that self-hosts the bundle would)."""

    dist: Path
    proxy_url: str = ""
    requests: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                kind = msg["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        path = scope["path"]
        self.requests.append(path)
        status, ctype, body = 404, "text/plain", b"not found"
        if path == "/":
            status, ctype, body = 200, "text/html; charset=utf-8", self.page()
        elif path.startswith("/n8n-chat/"):
            name = path.removeprefix("/n8n-chat/")
            file = (self.dist / name).resolve()
            if file.parent == self.dist.resolve() and file.is_file():
                guessed = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                if file.suffix in (".js", ".mjs"):
                    guessed = "text/javascript"
                status, ctype, body = 200, guessed, await trio.Path(file).read_bytes()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def page(self) -> bytes:
        return PAGE.format(proxy=self.proxy_url).encode()


@pytest.fixture
def widget_dist() -> Path:
    if not (DIST / "chat.bundle.es.js").is_file() or not (DIST / "style.css").is_file():
        pytest.fail(f"@n8n/chat {N8N_CHAT_VERSION} is not in {DIST}: run .ci/setup-n8n-chat.sh")
    return DIST


@dataclass
class Seen:
    proxy_requests: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    bot_texts: dict[str, list[str]] = field(default_factory=dict)


def drive_widget(site_url: str, proxy_url: str, release_gate: Any) -> Seen:
    """Runs in a worker thread (Playwright's sync API has its own event loop)."""
    from playwright.sync_api import expect, sync_playwright

    seen = Seen()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for mode in ("json", "stream"):
                context = browser.new_context(viewport={"width": 900, "height": 700})
                # a returning visitor: the widget keeps its sessionId in localStorage
                context.add_init_script(
                    f"localStorage.setItem('n8n-chat/sessionId', '{RETURNING_VISITOR}')"
                )
                page = context.new_page()
                page.on(
                    "request",
                    lambda req: (
                        seen.proxy_requests.append(
                            {
                                "method": req.method,
                                "headers": req.headers,
                                "body": req.post_data,
                            }
                        )
                        if req.url.startswith(proxy_url) and req.method == "POST"
                        else None
                    ),
                )
                page.on(
                    "console",
                    lambda msg: (
                        seen.console_errors.append(msg.text) if msg.type == "error" else None
                    ),
                )
                page.goto(f"{site_url}/?stream={'1' if mode == 'stream' else '0'}")
                bot = page.locator(".chat-message-from-bot:not(.chat-message-typing)")
                # loadPreviousSession brought back what n8n remembers of this visitor
                expect(page.locator(".chat-message-from-user").first).to_have_text(
                    "What are your opening hours?", timeout=15_000
                )
                expect(bot.filter(has_text="We open at nine.")).to_have_count(1)
                box = page.locator("textarea[data-test-id='chat-input']")
                if mode == "json":
                    box.fill("hello from the browser")
                    box.press("Enter")
                    expect(bot.filter(has_text="echo: hello from the browser")).to_have_count(
                        1, timeout=15_000
                    )
                else:
                    box.fill("gate:browser")
                    box.press("Enter")
                    # the first part is on screen while n8n is still answering...
                    expect(bot.last).to_have_text("before", timeout=15_000)
                    page.screenshot(path=str(ARTIFACTS / "stream-partial.png"))
                    release_gate()
                    # ...and the rest joins the same bubble
                    expect(bot.last).to_have_text("before after", timeout=15_000)
                page.screenshot(path=str(ARTIFACTS / f"{mode}.png"), full_page=True)
                seen.bot_texts[mode] = [t.strip() for t in bot.all_inner_texts()]
                context.close()
        finally:
            browser.close()
    return seen


async def test_official_widget_through_the_proxy(widget_dist: Path, fake_n8n: FakeN8n) -> None:
    site = CustomerSite(widget_dist)
    async with served(site) as site_url:
        settings = settings_for(fake_n8n.url, ALLOWED_ORIGINS=site_url)
        async with running_proxy(settings) as proxy:
            site.proxy_url = proxy.url
            fake_n8n.memory[widget_session_key(site_url, RETURNING_VISITOR)] = [
                ("user", "What are your opening hours?"),
                ("assistant", "We open at nine."),
            ]
            token = trio.lowlevel.current_trio_token()

            def release_gate() -> None:
                trio.from_thread.run_sync(fake_n8n.gates["browser"].set, trio_token=token)

            seen = await trio.to_thread.run_sync(drive_widget, site_url, proxy.url, release_gate)

    assert seen.bot_texts["json"][-1] == "echo: hello from the browser"
    assert seen.bot_texts["stream"][-1] == "before after"
    # what the widget really sent: JSON in both modes, Accept: text/plain only when streaming
    sends = [r for r in seen.proxy_requests if '"sendMessage"' in (r["body"] or "")]
    assert [("text/plain" in r["headers"].get("accept", "")) for r in sends] == [False, True]
    loads = [r for r in seen.proxy_requests if '"loadPreviousSession"' in (r["body"] or "")]
    assert len(loads) == 2
    # n8n saw the proxy's key for this visitor, never the id the browser made up
    sent_ids = {r["body"]["sessionId"] for r in fake_n8n.requests}
    assert sent_ids == {widget_session_key(site_url, RETURNING_VISITOR)}
    assert "/n8n-chat/chat.bundle.es.js" in site.requests
    assert not [e for e in seen.console_errors if "CORS" in e or "Failed to fetch" in e]
