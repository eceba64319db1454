"""What must never be written down or announced: tokens, secrets and message text in logs at
INFO, version banners in responses."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from hypercorn.config import Config

from quartproxy.factory import create_app
from tests.support import (
    BROWSER_HEADERS,
    JWT_SECRET,
    ORIGIN,
    SESSION_SECRET,
    FakeN8n,
    served,
    settings_for,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET_TEXT = "my card number is 4111-1111-1111-1111"


async def test_logs_at_info_hold_no_token_secret_or_message(
    make_proxy, fake_n8n: FakeN8n, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    async with make_proxy(
        BOT_ENFORCE="false",
        SPAM_ENFORCE="false",
        SPAM_BLOCK_PATTERNS="4111",
        RATE_LIMIT_SESSION="3/minute",
    ) as p:
        s = await p.session()
        headers = p.auth(s)
        for message in (SECRET_TEXT, "status:500", "error-mid"):
            await p.client.post("/api/v1/chat/message", json={"message": message}, headers=headers)
        # rate limited, bad token, bot in log-only mode, stolen token
        await p.client.post("/api/v1/chat/message", json={"message": SECRET_TEXT}, headers=headers)
        bad = {**headers, "Authorization": f"Bearer {s['token']}x"}
        await p.client.post("/api/v1/chat/message", json={"message": SECRET_TEXT}, headers=bad)
        await p.client.post(
            "/api/v1/chat/message",
            json={"message": SECRET_TEXT, "honeypot": "x"},
            headers={**headers, "User-Agent": "curl/8"},
        )
        await p.client.get("/api/v1/session/validate", headers=p.auth(s, fingerprint="other"))
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.levelno >= logging.INFO
    )
    assert "would block" in text  # the log-only checks did write something
    assert "n8n answered HTTP 500" in text  # the upstream failure was logged, without the text
    for needle in (
        s["token"],
        s["token"].split(".")[2],
        JWT_SECRET,
        SESSION_SECRET,
        "4111",
        "status:500",
        "error-mid",
    ):
        assert needle not in text


async def test_no_server_banner_with_the_shipped_hypercorn_config(fake_n8n: FakeN8n) -> None:
    shipped = Config.from_toml(str(ROOT / "hypercorn.toml"))
    assert shipped.include_server_header is False
    app = create_app(settings_for(fake_n8n.url))
    async with (
        served(app, include_server_header=shipped.include_server_header) as url,
        httpx.AsyncClient(base_url=url, headers=BROWSER_HEADERS) as client,
    ):
        for r in (
            await client.get("/health"),
            await client.post("/api/v1/session/create", headers={"Origin": ORIGIN}),
            await client.get("/nope"),
        ):
            assert "server" not in r.headers
            assert "quart" not in str(r.headers).lower()
            assert "hypercorn" not in str(r.headers).lower()
