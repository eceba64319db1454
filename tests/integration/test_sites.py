"""Two sites on one gateway (SITES_FILE), each with its own fake n8n (real Hypercorn) and its
own upstream secret, tried as an attacker would: site A's token on site B, a site-B page
claiming site A, A's limits and quota used up while B goes on. In the three storage modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from quartproxy.config import load_sites_file
from tests.integration.test_modes import redis_flushed
from tests.redis_server import (  # noqa: F401 (fixtures)
    RedisCluster,
    RedisServer,
    redis_cluster,
    redis_server,
)
from tests.support import FakeN8n, Proxy, parse_sse, running_proxy, served, settings_for

A, B = "https://a.example", "https://b.example"
SECRET_A, SECRET_B = "site-a-upstream-secret-" + "a" * 20, "site-b-upstream-secret-" + "b" * 20
MODES = [
    "stateless",
    "sqlite",
    pytest.param("production", marks=pytest.mark.redis),
    # the site keys on a Redis Cluster: every tier of a request in the `{rl}` slot
    pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
]


def sites_toml(url_a: str, url_b: str) -> str:
    return f"""
[sites.a]
origins = ["{A}"]
webhook_url = "{url_a}"
upstream_secret = "{SECRET_A}"
rate_limit_ip = "3/minute"
quota_day = 2

[sites.b]
origins = ["{B}"]
webhook_url = "{url_b}"
upstream_secret = "{SECRET_B}"
rate_limit_ip = "3/minute"
quota_day = 100
n8n_chat = false

[sites.b.widget]
title = "B help"
greeting = "Hello from B"
theme = "dark"
"""


@asynccontextmanager
async def two_sites(
    tmp_path: Path, mode: str, redis: RedisServer | RedisCluster | None
) -> AsyncIterator[tuple[Proxy, FakeN8n, FakeN8n]]:
    fake_a, fake_b = FakeN8n(secret=SECRET_A), FakeN8n(secret=SECRET_B)
    async with AsyncExitStack() as stack:
        for fake in (fake_a, fake_b):
            fake.url = f"{await stack.enter_async_context(served(fake))}/webhook/chat"
        path = tmp_path / "sites.example.toml"
        path.write_text(sites_toml(fake_a.url, fake_b.url))
        env = {"SITES_FILE": str(path), "N8N_WEBHOOK_URL": "", "ALLOWED_ORIGINS": ""}
        if mode == "sqlite":
            env.update(DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "q.db"))
        elif mode == "cluster":
            assert isinstance(redis, RedisCluster)
            redis.flush()  # the quota counters of the tests before are not this test's
            env.update(DEPLOYMENT_MODE="production", REDIS_URL=redis.url)
        elif mode == "production":
            assert isinstance(redis, RedisServer)
            async with redis_flushed(redis, 8):
                pass
            env.update(DEPLOYMENT_MODE="production", REDIS_URL=redis.url.replace("/0", "/8"))
        proxy = await stack.enter_async_context(running_proxy(settings_for("", **env)))
        yield proxy, fake_a, fake_b


async def chat(proxy: Proxy, session: dict[str, str], origin: str, text: str) -> tuple[int, str]:
    r = await proxy.client.post(
        "/api/v1/chat/message",
        json={"message": text},
        headers=proxy.auth(session, origin=origin),
    )
    if r.status_code != 200:
        return r.status_code, r.json()["error"]["code"] + ":" + r.headers.get(
            "X-RateLimit-Tier", ""
        )
    return 200, parse_sse(r.text)[-1].data["text"]


@pytest.fixture
def redis(request: pytest.FixtureRequest, mode: str) -> RedisServer | RedisCluster | None:
    if mode == "cluster":
        return request.getfixturevalue("redis_cluster")
    return request.getfixturevalue("redis_server") if mode == "production" else None


@pytest.mark.parametrize("mode", MODES)
async def test_each_site_reaches_its_own_webhook_with_its_own_secret(
    tmp_path: Path, mode: str, redis: RedisServer | RedisCluster | None
) -> None:
    async with two_sites(tmp_path, mode, redis) as (p, fake_a, fake_b):
        sa, sb = await p.session(origin=A), await p.session(origin=B)
        assert await chat(p, sa, A, "one") == (200, "echo: one")
        assert await chat(p, sb, B, "two") == (200, "echo: two")
        # each fake checks its own secret: a turn signed with the other's would be a 403 there
        assert [r["body"]["chatInput"] for r in fake_a.requests] == ["one"]
        assert [r["body"]["chatInput"] for r in fake_b.requests] == ["two"]
        assert fake_a.requests[0]["claims"]["origin"] == A


@pytest.mark.parametrize("mode", MODES)
async def test_site_a_token_and_history_are_refused_from_site_b(
    tmp_path: Path, mode: str, redis: RedisServer | RedisCluster | None
) -> None:
    async with two_sites(tmp_path, mode, redis) as (p, _, fake_b):
        sa = await p.session(origin=A)
        assert await chat(p, sa, A, "secret of a") == (200, "echo: secret of a")
        assert await chat(p, sa, B, "spend a") == (401, "session_mismatch:")
        r = await p.client.get(
            f"/api/v1/chat/history/{sa['session_id']}", headers=p.auth(sa, origin=B)
        )
        assert r.status_code == 401 and "secret of a" not in r.text
        assert [r["body"].get("chatInput") for r in fake_b.requests] == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_site_b_page_cannot_claim_site_a(
    tmp_path: Path, mode: str, redis: RedisServer | RedisCluster | None
) -> None:
    async with two_sites(tmp_path, mode, redis) as (p, _, _):
        for origin, claim, status in [(B, "a", 403), (A, "b", 403), (B, "b", 201), (A, "a", 201)]:
            r = await p.client.post(
                "/api/v1/session/create", json={}, headers={"Origin": origin, "X-Chat-Site": claim}
            )
            assert r.status_code == status, (origin, claim, r.text)
        r = await p.client.post(
            "/api/v1/session/create", json={}, headers={"Origin": "https://c.example"}
        )
        assert r.json()["error"]["code"] == "origin_not_allowed"


@pytest.mark.parametrize("mode", MODES)
async def test_quota_and_limits_of_a_used_up_leave_b_untouched(
    tmp_path: Path, mode: str, redis: RedisServer | RedisCluster | None
) -> None:
    """Same visitor IP on both sites: A's daily quota (2) and A's per-IP rate (3/minute) are
    A's own buckets; B goes on."""
    async with two_sites(tmp_path, mode, redis) as (p, fake_a, _):
        sa, sb = await p.session(origin=A), await p.session(origin=B)
        assert await chat(p, sa, A, "1") == (200, "echo: 1")
        assert await chat(p, sa, A, "2") == (200, "echo: 2")
        assert await chat(p, sa, A, "3") == (429, "rate_limited:quota_day")
        assert await chat(p, sa, A, "4") == (429, "rate_limited:ip")  # the 4th hit of 3/minute
        assert len(fake_a.requests) == 2
        for text in ("x", "y", "z"):  # B: its own quota and its own 3/minute for this IP
            assert await chat(p, sb, B, text) == (200, f"echo: {text}")
        assert await chat(p, sb, B, "w") == (429, "rate_limited:ip")


async def test_widget_defaults_and_the_n8n_chat_switch(tmp_path: Path) -> None:
    async with two_sites(tmp_path, "stateless", None) as (p, _, _):
        r = await p.client.get("/api/v1/sites/b/widget", headers={"Origin": B})
        assert r.status_code == 200
        assert r.json() == {
            "site": "b",
            "title": "B help",
            "greeting": "Hello from B",
            "theme": "dark",
        }
        assert r.headers["Access-Control-Allow-Origin"] == B
        r = await p.client.get("/api/v1/sites/b/widget", headers={"Origin": A})
        assert r.status_code == 403  # site A's page cannot read B's settings
        assert (await p.client.get("/api/v1/sites/a/widget", headers={"Origin": A})).json() == {
            "site": "a"
        }
        body = {"action": "sendMessage", "sessionId": "s1", "chatInput": "hi"}
        r = await p.client.post("/api/v1/n8n/chat", json=body, headers={"Origin": B})
        assert r.status_code == 404  # n8n_chat = false on B
        r = await p.client.post("/api/v1/n8n/chat", json=body, headers={"Origin": A})
        assert r.status_code == 200, r.text
        # /health is site-independent
        assert (await p.client.get("/health")).status_code == 200


async def test_a_token_keeps_its_site_when_its_origin_moves_to_another(tmp_path: Path) -> None:
    """A reload that gives A's origin to a new site `c`: A's tokens, still bound to that
    origin, are another site's now and spend nothing there."""
    async with two_sites(tmp_path, "stateless", None) as (p, fake_a, _):
        sa = await p.session(origin=A)
        moved = tmp_path / "moved.example.toml"
        text = (tmp_path / "sites.example.toml").read_text().replace("[sites.a]", "[sites.c]")
        moved.write_text(text)
        p.services.sites = load_sites_file(str(moved), p.settings, {})
        assert await chat(p, sa, A, "hi") == (401, "session_mismatch:")
        fresh = await p.session(origin=A)
        assert await chat(p, fresh, A, "hi") == (200, "echo: hi")
        assert fake_a.requests[-1]["claims"]["origin"] == A
