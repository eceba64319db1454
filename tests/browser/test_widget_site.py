"""data-site in real Chromium: the widget asks the gateway for its site's defaults (language,
title, greeting, theme) and uses them where the page sets none; the page's own attributes win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import PageServer, Stack
from .test_widget import HOST, launcher

pytestmark = pytest.mark.browser


def sites_stack(
    make_stack: Any, site: PageServer, tmp_path: Path, widget: str | None = None
) -> Stack:
    path = tmp_path / "sites.example.toml"
    path.write_text(
        f"""
[sites.s1]
origins = ["{site.origin}"]
webhook_url = "http://127.0.0.1:9/webhook/chat"
upstream_secret = "{"u" * 40}"
[sites.s1.widget]
"""
        + (
            widget
            or """title = "Shop helper"
greeting = "Welcome to the shop!"
theme = "dark"
"""
        )
    )
    return make_stack(SITES_FILE=str(path))  # type: ignore[no-any-return]


def test_the_site_s_defaults_fill_what_the_page_leaves_unset(
    make_stack: Any, site: PageServer, visit: Any, tmp_path: Path
) -> None:
    stack = sites_stack(make_stack, site, tmp_path)
    v: Visit = visit()
    page = v.open(stack, site="s1")
    launcher(page).click()
    expect(page.locator(f"{HOST} header h2")).to_have_text("Shop helper")
    expect(page.locator(f"{HOST} .welcome")).to_contain_text("Welcome to the shop!")
    expect(page.locator(f"{HOST} .root")).to_have_attribute("data-theme", "dark")
    assert any(u.endswith("/api/v1/sites/s1/widget") for u in v.requests)
    assert v.errors == []
    v.shot("site-defaults")


def test_the_page_s_own_title_wins_and_no_site_asks_nothing(
    make_stack: Any, site: PageServer, visit: Any, tmp_path: Path
) -> None:
    stack = sites_stack(make_stack, site, tmp_path)
    v: Visit = visit()
    page = v.open(stack, site="s1", title="Our own title")
    launcher(page).click()
    expect(page.locator(f"{HOST} .welcome")).to_contain_text("Welcome to the shop!")
    expect(page.locator(f"{HOST} header h2")).to_have_text("Our own title")
    w: Visit = visit()
    page = w.open(stack)  # no data-site: the built-in texts, no request for defaults
    launcher(page).click()
    expect(page.locator(f"{HOST} header h2")).not_to_have_text("Shop helper")
    assert not any("/api/v1/sites/" in u for u in w.requests)


def test_the_site_s_language_replaces_the_browser_s_unless_the_page_names_one(
    make_stack: Any, site: PageServer, visit: Any, tmp_path: Path
) -> None:
    stack = sites_stack(make_stack, site, tmp_path, 'language = "de"\n')
    v: Visit = visit()  # an English browser
    page = v.open(stack, site="s1")
    launcher(page).click()
    # every text built at load is set again: title, greeting, placeholder, buttons, labels
    expect(page.locator(f"{HOST} header h2")).to_have_text("Chatten Sie mit uns")
    expect(page.locator(f"{HOST} .welcome")).to_contain_text("Hallo! Wie kann ich Ihnen helfen?")
    expect(page.locator(f"{HOST} textarea")).to_have_attribute(
        "placeholder", "Nachricht schreiben…"
    )
    expect(page.locator(f"{HOST} button.send")).to_have_attribute("aria-label", "Senden")
    expect(page.locator(f"{HOST} .root")).to_have_attribute("lang", "de")
    assert v.errors == []
    w: Visit = visit()
    page = w.open(stack, site="s1", lang="fr")  # the page's data-lang wins
    launcher(page).click()
    expect(page.locator(f"{HOST} button.send")).to_have_attribute("aria-label", "Envoyer")
    expect(page.locator(f"{HOST} .root")).to_have_attribute("lang", "fr")
    assert any(u.endswith("/api/v1/sites/s1/widget") for u in w.requests)
