"""Production mode with Redis going down and coming back: /health, RATE_LIMIT_FAIL_MODE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from tests.support import ORIGIN, FakeN8n, Proxy, parse_sse, running_proxy, settings_for

pytestmark = pytest.mark.redis


@asynccontextmanager
async def production_proxy(
    fake_n8n: FakeN8n, tmp_path: Path, **env: str
) -> AsyncIterator[tuple[Proxy, RedisServer]]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    try:
        settings = settings_for(
            fake_n8n.url, DEPLOYMENT_MODE="production", REDIS_URL=server.url, **env
        )
        async with running_proxy(settings) as proxy:
            yield proxy, server
    finally:
        server.stop()


async def chat(proxy: Proxy, session: dict[str, str], text: str) -> tuple[int, str | None]:
    r = await proxy.client.post(
        "/api/v1/chat/message", json={"message": text}, headers=proxy.auth(session)
    )
    if r.status_code != 200:
        return r.status_code, r.json()["error"]["code"]
    return 200, parse_sse(r.text)[-1].data.get("text")


async def test_fail_closed_refuses_while_redis_is_down_and_recovers(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    async with production_proxy(fake_n8n, tmp_path, RATE_LIMIT_FAIL_MODE="closed") as (p, redis):
        session = await p.session()
        assert await chat(p, session, "hi") == (200, "echo: hi")
        assert (await p.client.get("/health")).status_code == 200

        redis.stop()
        health = await p.client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["checks"]["store"]["status"] == "fail"
        assert health.json()["checks"]["n8n"]["status"] == "ok"
        assert await chat(p, session, "hi") == (503, "store_unavailable")
        r = await p.client.post("/api/v1/session/create", json={}, headers={"Origin": ORIGIN})
        assert r.status_code == 503
        assert "Retry-After" in r.headers

        redis.start()  # same port: the running proxy reconnects by itself
        assert (await p.client.get("/health")).status_code == 200
        # the session survived (Redis persists); a new turn goes through
        r = await p.client.get("/api/v1/session/validate", headers=p.auth(session))
        assert r.status_code == 200
        # (the first turn's busy flag may still be held: its release can race the outage)
        assert await chat(p, await p.session(), "back") == (200, "echo: back")


async def test_fail_open_answers_without_limits_while_redis_is_down(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    async with production_proxy(
        fake_n8n, tmp_path, RATE_LIMIT_FAIL_MODE="open", RATE_LIMIT_IP="2/hour"
    ) as (p, redis):
        session = await p.session()
        assert await chat(p, session, "one") == (200, "echo: one")
        assert await chat(p, session, "two") == (200, "echo: two")
        assert await chat(p, session, "three") == (429, "rate_limited")

        redis.stop()
        health = await p.client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        # limits are not enforced, answers still stream, new sessions still start
        for text in ("four", "five", "six"):
            assert await chat(p, session, text) == (200, f"echo: {text}")
        fresh = await p.session()
        assert await chat(p, fresh, "new") == (200, "echo: new")

        redis.start()
        assert (await p.client.get("/health")).status_code == 200
        assert await chat(p, session, "seven") == (429, "rate_limited")  # limits are back
