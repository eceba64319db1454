"""Sites meet API clients and signed visitors: on a gateway of two sites an API client names
its site (and spends that site's quota), and a user token is good on the site it names in `aud`
only, each site keeping its own conversation of the user. Memory and SQLite stores."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from quartproxy.core.api_keys import new_key
from tests.integration.test_sites import SECRET_A, SECRET_B, A, B, sites_toml
from tests.support import (
    FINGERPRINT,
    FakeN8n,
    Proxy,
    parse_sse,
    running_proxy,
    served,
    settings_for,
)

IDENTITY_SECRET = "identity-secret-of-the-sites-0123456789abcdef"
KEY, ENTRY = new_key("mobile")
APP = {"User-Agent": "python-httpx/0.28", "X-Api-Key": KEY}  # no Origin: not a page


@asynccontextmanager
async def two_sites(
    tmp_path: Path, mode: str, extra_b: str = ""
) -> AsyncIterator[tuple[Proxy, FakeN8n, FakeN8n]]:
    fake_a, fake_b = FakeN8n(secret=SECRET_A), FakeN8n(secret=SECRET_B)
    async with AsyncExitStack() as stack:
        for fake in (fake_a, fake_b):
            fake.url = f"{await stack.enter_async_context(served(fake))}/webhook/chat"
        path = tmp_path / "sites.example.toml"
        path.write_text(
            sites_toml(fake_a.url, fake_b.url).replace(
                "[sites.b.widget]", f"{extra_b}\n[sites.b.widget]"
            )
        )
        env = {
            "SITES_FILE": str(path),
            "N8N_WEBHOOK_URL": "",
            "ALLOWED_ORIGINS": "",
            "API_KEYS": ENTRY,
            "IDENTITY_SECRETS": IDENTITY_SECRET,
        }
        if mode == "sqlite":
            env.update(DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "q.db"))
        proxy = await stack.enter_async_context(running_proxy(settings_for("", **env)))
        yield proxy, fake_a, fake_b


def user_token(sub: str, aud: str, secret: str = IDENTITY_SECRET) -> str:
    claims = {"sub": sub, "aud": aud, "exp": int(time.time()) + 300}
    return jwt.encode(claims, secret, algorithm="HS256")


async def signed_session(p: Proxy, origin: str, token: str) -> httpx.Response:
    body = {"fingerprint": FINGERPRINT, "user_token": token}
    return await p.client.post("/api/v1/session/create", json=body, headers={"Origin": origin})


@pytest.mark.parametrize("mode", ["stateless", "sqlite"])
async def test_an_api_client_names_its_site_and_spends_that_sites_quota(
    tmp_path: Path, mode: str
) -> None:
    async with two_sites(tmp_path, mode) as (p, fake_a, fake_b):
        async with httpx.AsyncClient(base_url=p.url, headers=APP, timeout=30) as c:
            r = await c.post("/api/v1/session/create", json={})  # two sites: which one?
            assert (r.status_code, r.json()["error"]["code"]) == (403, "origin_not_allowed")
            assert "X-Chat-Site" in r.json()["error"]["message"]
            r = await c.post("/api/v1/session/create", json={}, headers={"X-Chat-Site": "zz"})
            assert r.status_code == 403
            site_a = {"X-Chat-Site": "a"}
            r = await c.post("/api/v1/session/create", json={}, headers=site_a)
            assert r.status_code == 201, r.text
            auth = {**site_a, "Authorization": f"Bearer {r.json()['token']}"}
            for text in ("one", "two"):  # site a: quota_day = 2
                r = await c.post("/api/v1/chat/message", json={"message": text}, headers=auth)
                assert parse_sse(r.text)[-1].data["text"] == f"echo: {text}"
            r = await c.post("/api/v1/chat/message", json={"message": "three"}, headers=auth)
            assert (r.status_code, r.headers.get("X-RateLimit-Tier")) == (429, "quota_day")
            # the token is the site's: naming the other site with it is a mismatch
            other = {**auth, "X-Chat-Site": "b"}
            r = await c.post("/api/v1/chat/message", json={"message": "four"}, headers=other)
            assert (r.status_code, r.json()["error"]["code"]) == (401, "session_mismatch")
        assert [r["body"]["chatInput"] for r in fake_a.requests] == ["one", "two"]
        assert fake_b.requests == []


@pytest.mark.parametrize("mode", ["stateless", "sqlite"])
async def test_a_user_token_is_good_on_the_site_it_names_only(tmp_path: Path, mode: str) -> None:
    async with two_sites(tmp_path, mode) as (p, _fake_a, _fake_b):
        for_a = user_token("ada", "a")
        assert (await signed_session(p, B, for_a)).status_code == 401  # signed for a, on b
        assert (await signed_session(p, A, user_token("ada", "default"))).status_code == 401
        first = await signed_session(p, A, for_a)
        again = await signed_session(p, A, for_a)
        assert first.status_code == again.status_code == 201
        # one conversation per user and site: the same on a second device of site a ...
        assert first.json()["session_id"] == again.json()["session_id"]
        on_b = await signed_session(p, B, user_token("ada", "b"))
        assert on_b.status_code == 201
        # ... and another on site b, whose pages never see site a's conversation
        assert on_b.json()["session_id"] != first.json()["session_id"]


async def test_a_site_with_its_own_identity_secret_takes_no_other_key(tmp_path: Path) -> None:
    own = "identity-secret-of-site-b-only-0123456789abcdef"
    async with two_sites(tmp_path, "stateless", f'identity_secrets = ["{own}"]') as (p, _a, _b):
        # the environment's key signs for site a, but not for site b, which has its own
        assert (await signed_session(p, A, user_token("ada", "a"))).status_code == 201
        assert (await signed_session(p, B, user_token("ada", "b"))).status_code == 401
        assert (await signed_session(p, B, user_token("ada", "b", own))).status_code == 201
        assert (await signed_session(p, A, user_token("ada", "a", own))).status_code == 401


async def test_a_sites_own_api_key_admits_to_that_site_only(tmp_path: Path) -> None:
    own_key, own_entry = new_key("bapp")
    async with two_sites(tmp_path, "stateless", f'api_keys = ["{own_entry}"]') as (p, _a, fake_b):
        headers = {**APP, "X-Api-Key": own_key}
        async with httpx.AsyncClient(base_url=p.url, headers=headers, timeout=30) as c:
            r = await c.post("/api/v1/session/create", json={})  # its key tells its site
            assert r.status_code == 201, r.text
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            r = await c.post("/api/v1/chat/message", json={"message": "hi"}, headers=auth)
            assert parse_sse(r.text)[-1].data["text"] == "echo: hi"
            r = await c.post("/api/v1/session/create", json={}, headers={"X-Chat-Site": "a"})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "origin_not_allowed")
        assert [q["body"]["chatInput"] for q in fake_b.requests] == ["hi"]


async def test_each_site_sets_what_an_api_key_may_spend_there(tmp_path: Path) -> None:
    """Site b: 4 requests a minute and 1 turn a day per key; site a: the environment's
    (RATE_LIMIT_API_KEY, no daily quota). One key, both sites: b's limits stop it on b only."""
    extra = 'rate_limit_api_key = "4/minute"\napi_key_daily_quota = 1'
    async with two_sites(tmp_path, "stateless", extra) as (p, fake_a, fake_b):
        async with httpx.AsyncClient(base_url=p.url, headers=APP, timeout=30) as c:

            async def session(site: str) -> dict[str, str]:
                r = await c.post("/api/v1/session/create", json={}, headers={"X-Chat-Site": site})
                assert r.status_code == 201, r.text
                return {"X-Chat-Site": site, "Authorization": f"Bearer {r.json()['token']}"}

            on_b = await session("b")  # request 1 of 4 on b
            r = await c.post("/api/v1/chat/message", json={"message": "b1"}, headers=on_b)
            assert parse_sse(r.text)[-1].data["text"] == "echo: b1"
            r = await c.post("/api/v1/chat/message", json={"message": "b2"}, headers=on_b)
            assert (r.status_code, r.headers.get("X-RateLimit-Tier")) == (429, "api_quota")
            await session("b")  # request 4 of 4
            r = await c.post("/api/v1/session/create", json={}, headers={"X-Chat-Site": "b"})
            assert (r.status_code, r.headers.get("X-RateLimit-Tier")) == (429, "api_key")
            on_a = await session("a")  # the same key on a: a's own (the environment's) limits
            for text in ("a1", "a2"):
                r = await c.post("/api/v1/chat/message", json={"message": text}, headers=on_a)
                assert parse_sse(r.text)[-1].data["text"] == f"echo: {text}"
        assert [q["body"]["chatInput"] for q in fake_b.requests] == ["b1"]
        assert [q["body"]["chatInput"] for q in fake_a.requests] == ["a1", "a2"]
