"""Hostile bot answers (and hostile user input) in real Chromium: nothing executes, nothing is
fetched, and the text is shown as text."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import Stack, iter_requests
from .test_widget import BOT, HOST, USER, ask, launcher

pytestmark = pytest.mark.browser

CORPUS = [
    '<script>window.__xss.push("script")</script>',
    "<img src=x onerror=\"window.__xss.push('img')\">",
    "<svg onload=\"window.__xss.push('svg')\">"
    "<script>window.__xss.push('svg-script')</script></svg>",
    "<svg><animate onbegin=\"window.__xss.push('animate')\" attributeName=x dur=1s>",
    "<iframe src=\"javascript:window.__xss.push('iframe')\"></iframe>",
    "<a href=\"javascript:window.__xss.push('a')\">html link</a>",
    '[md link](javascript:window.__xss.push("md"))',
    '[mixed case](JaVaScRiPt:window.__xss.push("case"))',
    '[spaced]( javascript:window.__xss.push("spaced") )',
    '[entity](javascript&colon;window.__xss.push("entity"))',
    "[data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3MucHVzaCgnZGF0YScpPC9zY3JpcHQ+)",
    "[vb](vbscript:msgbox(1))",
    "[relative](/x-relative)",
    "[protocol relative](//evil.invalid/x)",
    "![image](http://127.0.0.1:9/x-image.png)",
    '**<img src=x onerror=window.__xss.push("bold")>**',
    '`<script>window.__xss.push("code")</script>`',
    '```\n<script>window.__xss.push("fence")</script>\n```',
    "<details open ontoggle=\"window.__xss.push('details')\">x</details>",
    '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss.push("mxss")>',
    "http://127.0.0.1:9/\"onmouseover=\"window.__xss.push('attr')",
    "<style>*{display:none!important}</style>",
    '"><svg/onload=window.__xss.push("break")>',
    "javascript:window.__xss.push('bare')",
    "[ok](https://example.com/safe?a=1&b=2) and <mailto:help@example.com>"
    " and [mail](mailto:help@example.com)",
]
ALLOWED_TAGS = {
    "DIV",
    "SPAN",
    "P",
    "BR",
    "STRONG",
    "EM",
    "CODE",
    "PRE",
    "UL",
    "OL",
    "LI",
    "A",
    "HR",
}


def test_xss_corpus_in_answers_never_executes(stack: Stack, visit: Any) -> None:
    answer = "\n\n".join(CORPUS)
    # Split mid-tag too: a payload must not assemble itself across deltas.
    stack.n8n.script("show me", [answer[i : i + 7] for i in range(0, len(answer), 7)])
    v: Visit = visit()
    page = v.open(stack)
    launcher(page).click()
    ask(page, "show me")
    expect(page.locator(BOT)).to_contain_text("protocol relative")
    expect(page.locator(BOT)).to_contain_text("help@example.com")
    ask(
        page,
        "<img src=x onerror=\"window.__xss.push('user')\"><script>window.__xss.push(1)</script>",
    )
    expect(page.locator(BOT)).to_have_count(2)
    v.shot("corpus")

    body = page.locator(BOT).first
    # Shown as text, not dropped: a reader sees exactly what the bot wrote.
    expect(body).to_contain_text('<script>window.__xss.push("script")</script>')
    expect(body).to_contain_text("<img src=x onerror=")
    expect(page.locator(USER)).to_contain_text(['<img src=x onerror="window.__xss.push'])

    # Hover and click everything that could carry a handler or a link.
    for el in page.locator(f"{HOST} .msg .body *").all():
        el.hover()
    for a in page.locator(f"{HOST} .msg.bot a").all():
        # Follow no link to another host (tests stay on loopback): check the target instead.
        assert a.get_attribute("target") == "_blank"
    for text in (
        "md link",
        "mixed case",
        "spaced",
        "entity",
        "data",
        "vb",
        "relative",
        "protocol relative",
    ):
        page.locator(f"{HOST} .msg.bot").get_by_text(text, exact=True).first.click()

    facts = page.evaluate(
        """() => {
          const root = document.getElementById('quartproxy-chat').shadowRoot;
          // what answers rendered; the widget's own per-message buttons are checked apart
          const all = [...root.querySelectorAll('.log .body *')];
          const chrome = [...root.querySelectorAll('.log button')]
            .filter(b => !b.matches('.tools > button.icon.copy, .cut > button.act'));
          return {
            tags: [...new Set(all.map(e => e.tagName))],
            handlers: all.flatMap(e => [...e.attributes].map(a => a.name))
              .filter(n => /^on/i.test(n)),
            links: [...root.querySelectorAll('.log a')].map(a => [a.getAttribute('href'), a.rel]),
            styleTags: root.querySelectorAll('style').length,
            strayButtons: chrome.length,
            xss: window.__xss,
          };
        }"""
    )
    assert facts["xss"] == []
    assert not v.dialogs
    assert not v.errors
    assert set(facts["tags"]) <= ALLOWED_TAGS, facts["tags"]
    assert facts["handlers"] == []
    assert facts["strayButtons"] == 0
    assert (
        facts["styleTags"] <= 1
    )  # only the widget's own sheet (where adoptedStyleSheets is missing)
    hrefs = [h for h, _ in facts["links"]]
    assert hrefs == [
        "http://127.0.0.1:9/x-image.png",
        "http://127.0.0.1:9/",
        "https://example.com/safe?a=1&b=2",
        "mailto:help@example.com",
        "mailto:help@example.com",
    ], hrefs
    assert all(rel == "noopener noreferrer" for _, rel in facts["links"])
    # Nothing was fetched: no image, no frame, no other host.
    assert not list(iter_requests(v.requests, v.site.origin, stack.proxy_url))
    paths = {urlsplit(u).path for u in v.requests}
    assert {p for p in paths if not p.startswith("/api/v1/")} == {"/", "/static/widget.js"}, paths
    # And the widget is still fully there (no injected CSS hid it).
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
