"""Fixtures for the widget's real-browser tests: Debian's Chromium driven by Playwright's sync
API from plain (non-trio) tests; the servers run in a background trio thread (harness.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import PageServer, Stack, embed_page

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "widget"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def site() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


@pytest.fixture
def make_stack(site: PageServer) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        stack = Stack(site.origin, env).__enter__()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.__exit__(None, None, None)


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


class Visit:
    """A browser context on the customer's page, with what it requested and logged."""

    def __init__(self, browser: Any, site: PageServer, name: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.site = site
        self.name = name
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", on_dialog)

    def open(
        self,
        stack: Stack,
        path: str = "/",
        *,
        via_relay: bool = False,
        head: str = "",
        **attrs: str,
    ) -> Any:
        if via_relay:  # the widget talks to the proxy through the cuttable relay
            attrs["proxy"] = stack.relay_url
        self.site.pages[path] = embed_page(f"{stack.proxy_url}/static/widget.js", attrs, head=head)
        self.page.goto(self.site.origin + path)
        self.page.wait_for_function(
            "() => !!(window.QuartProxyChat && window.QuartProxyChat.version)"
        )
        return self.page

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(
    browser: Any, site: PageServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Visit]]:
    visits: list[Visit] = []

    def make(**context: Any) -> Visit:
        name = request.node.name.replace("[", "-").replace("]", "").replace("test_", "", 1)
        v = Visit(browser, site, name if not visits else f"{name}-{len(visits)}", **context)
        visits.append(v)
        return v

    yield make
    for v in visits:
        v.close()


__all__ = ["Visit", "embed_page"]
