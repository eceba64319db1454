"""Signed visitors in real Chromium (docs/identity.md): two browser contexts are two devices.
The same signed user sees one conversation on both; another user, or signing out, never shows
the previous user's conversation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.sync_api import expect

from .conftest import Visit
from .harness import Stack
from .test_widget import BOT, USER, ask, launcher

pytestmark = pytest.mark.browser

SECRET = "browser-tests-identity-secret-0123456789abcdef"


def user_token(sub: str) -> str:
    claims = {"sub": sub, "name": sub.title(), "aud": "default", "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def said(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(USER).all_inner_texts()]


def test_the_conversation_follows_the_signed_user_to_another_device(
    make_stack: Any, visit: Any, tmp_path: Path
) -> None:
    stack: Stack = make_stack(
        DEPLOYMENT_MODE="sqlite",
        SQLITE_PATH=str(tmp_path / "qp.db"),
        IDENTITY_SECRETS=SECRET,
        RATE_LIMIT_SESSION_CREATE="100/minute",
    )
    laptop: Visit = visit()
    page = laptop.open(stack, **{"user-token": user_token("ada")})
    launcher(page).click()
    ask(page, "hello from the laptop")
    expect(page.locator(BOT)).to_have_count(1)

    phone: Visit = visit()  # another browser context: no shared storage
    other = phone.open(stack, **{"user-token": user_token("ada")})
    launcher(other).click()
    expect(other.locator(USER)).to_have_text(["hello from the laptop"])

    # another user signs in on the phone: ada's conversation goes from the screen
    other.evaluate("t => window.QuartProxyChat.setUserToken(t)", user_token("bob"))
    expect(other.locator(USER)).to_have_count(0)
    ask(other, "bob here")
    expect(other.locator(BOT)).to_have_count(1)
    assert said(other) == ["bob here"]

    # signing out: an anonymous visitor on the phone sees neither
    other.evaluate("() => window.QuartProxyChat.setUserToken(null)")
    expect(other.locator(USER)).to_have_count(0)
    ask(other, "anonymous now")
    expect(other.locator(BOT)).to_have_count(1)
    assert said(other) == ["anonymous now"]

    # the laptop's page without a token (signed out, reloaded): ada's transcript is not shown
    page = laptop.open(stack)
    page.evaluate("() => window.QuartProxyChat.open()")  # (it may reopen by itself: same tab)
    ask(page, "who am i")
    expect(page.locator(BOT)).to_have_count(1)
    assert said(page) == ["who am i"]

    # and ada, back on the laptop, still has her conversation (signing out erased nothing)
    page = laptop.open(stack, **{"user-token": user_token("ada")})
    page.evaluate("() => window.QuartProxyChat.open()")
    expect(page.locator(USER)).to_have_text(["hello from the laptop"])
    assert not laptop.errors and not phone.errors
