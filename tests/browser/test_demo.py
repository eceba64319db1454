"""`python -m quartproxy demo` serves a page with the widget embedded, and it works."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS
from .test_widget import BOT, HOST, ask, launcher

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quartproxy", "demo", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # Hypercorn says when it is listening
        seen.append(line)
        if "Running on" in line:
            break
    else:
        pytest.fail("the demo did not start:\n" + "".join(seen))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_demo_page_embeds_a_working_widget(demo: str, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(demo + "/")
        page.get_by_role("button", name="Open the chat").click()  # the page's own button: JS API
        expect(page.get_by_role("dialog", name="quartproxy demo")).to_be_visible()
        expect(page.locator(f"{HOST} .welcome")).to_contain_text("demo echo")
        ask(page, "Hello demo")
        expect(page.locator(BOT)).to_contain_text("You said: Hello demo")
        expect(page.locator(BOT).locator("strong")).to_have_text("Hello demo")
        expect(page.locator(BOT)).to_contain_text("N8N_WEBHOOK_URL")  # streamed to the end
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-page.png"))
        expect(launcher(page)).to_have_attribute("aria-expanded", "true")
        assert not errors
    finally:
        context.close()
