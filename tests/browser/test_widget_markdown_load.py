"""A long answer that made the widget's Markdown quadratic (issue 13: `a_a_a_…`), streamed
into real Chromium: it is rendered, whole, and the page stays responsive. With the regex this
replaced, each of the ~1,000 repaints of the growing answer cost seconds: the page hung."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import Stack
from .test_widget import BOT, ask, launcher

pytestmark = pytest.mark.browser

CHUNK = 20


# 20k characters: the size of the review's finding; 100k: where each repaint with the old regex
# took longer than the bound by itself (measured: 24 s in Node on the test machine).
@pytest.mark.parametrize("size", [20_000, 100_000])
def test_a_long_answer_of_unclosed_delimiters_renders_without_hanging(
    stack: Stack, visit: Any, size: int
) -> None:
    answer = "a_" * (size // 2)  # `_` never closes: plain text, underscores kept
    stack.n8n.script("long", [answer[i : i + CHUNK] for i in range(0, len(answer), CHUNK)])
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "long")
    # A bound on a hang (the answer streams in a second or two), not a timing assertion.
    expect(page.locator(f"{BOT}")).to_have_count(1)
    page.wait_for_function(
        """n => {
          const root = document.getElementById('quartproxy-chat').shadowRoot;
          const body = root.querySelector('.msg.bot:not(.welcome):not(.typing) .body');
          return body && body.textContent.length >= n;
        }""",
        arg=len(answer),
        timeout=60_000,
    )
    shown = page.evaluate(
        """() => {
          const root = document.getElementById('quartproxy-chat').shadowRoot;
          const body = root.querySelector('.msg.bot:not(.welcome) .body');
          return {text: body.textContent, em: body.querySelectorAll('em').length};
        }"""
    )
    assert shown == {"text": answer, "em": 0}
    # still responsive: the next question is answered
    ask(page, "and now?")
    expect(page.locator(BOT).last).to_contain_text("You said: and now?")
    assert not v.errors
