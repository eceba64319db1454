"""API clients through a real Hypercorn: a server or app with a valid X-Api-Key chats over
SSE, NDJSON and WebSocket with an HTTP library's user agent (which the browser bot screen
refuses), under its own rate and daily quota; a bad key is a 401, never anonymous; a key sent
by a page is refused; the operator list shows each key's last use."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from quartproxy.core.api_keys import new_key
from tests.integration.test_ws import WS_PATH, receive, send
from tests.support import BROWSER_HEADERS, ORIGIN, FakeN8n, Proxy, parse_sse

Factory = Callable[..., AbstractAsyncContextManager[Proxy]]
KEY, ENTRY = new_key("mobile")
OTHER_KEY, OTHER_ENTRY = new_key("backend")
APP_HEADERS = {"User-Agent": "python-httpx/0.28", "X-Api-Key": KEY}


@asynccontextmanager
async def app_client(proxy: Proxy, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """Not a browser: httpx's own user agent, no Origin, no Sec-Fetch-* headers."""
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={**APP_HEADERS, **headers}
    ) as c:
        yield c


async def create(c: httpx.AsyncClient) -> dict[str, str]:
    r = await c.post("/api/v1/session/create", json={})
    assert r.status_code == 201, r.text
    return dict(r.json())


def bearer(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


def error_code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_without_a_key_an_http_library_is_screened_as_a_bot(proxy: Proxy) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"Origin": ORIGIN}) as c:
        r = await c.post("/api/v1/session/create", json={})
    assert error_code(r) == (403, "blocked")


async def test_a_valid_key_chats_over_sse_and_ndjson(make_proxy: Factory) -> None:
    async with make_proxy(API_KEYS=ENTRY) as p, app_client(p) as c:
        session = await create(c)
        r = await c.post(
            "/api/v1/chat/message", json={"message": "hi there"}, headers=bearer(session)
        )
        assert r.status_code == 200, r.text
        events = parse_sse(r.text)
        assert next(e.event for e in events) == "start" and events[-1].event == "end"
        r = await c.post("/api/v1/chat/stream", json={"message": "again"}, headers=bearer(session))
        assert r.status_code == 200, r.text
        assert json.loads(r.text.splitlines()[-1])["type"] == "end"
        r = await c.get(f"/api/v1/chat/history/{session['session_id']}", headers=bearer(session))
        assert r.status_code == 200


async def test_a_valid_key_chats_over_websocket(make_proxy: Factory) -> None:
    async with make_proxy(API_KEYS=ENTRY) as p, app_client(p) as c:
        session = await create(c)
        url = p.url.replace("http://", "ws://") + WS_PATH
        extra = [(k.encode(), v.encode()) for k, v in APP_HEADERS.items()]
        async with open_websocket_url(url, extra_headers=extra) as ws:
            await send(ws, {"type": "auth", "token": session["token"]})
            assert await receive(ws) == {"type": "ready", "session_id": session["session_id"]}
            await send(ws, {"type": "message", "message": "over the socket"})
            frames = [await receive(ws)]
            while frames[-1]["type"] not in ("end", "error"):
                frames.append(await receive(ws))
        assert frames[-1]["type"] == "end"
        # a bad key is refused at the handshake, before the socket opens
        bad = [(b"User-Agent", b"python-httpx"), (b"X-Api-Key", OTHER_KEY.encode())]
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(url, extra_headers=bad):
                pass
        assert refused.value.status_code == 401


@pytest.mark.parametrize(
    "presented",
    [OTHER_KEY, KEY[:-2] + "xx", KEY.replace("qp_mobile_", "qp_backend_"), "qp_mobile_", "junk"],
)
async def test_an_invalid_key_is_401_never_anonymous(make_proxy: Factory, presented: str) -> None:
    """Even with browser-looking headers and an allowed origin absent, a bad key is refused:
    it never falls back to the anonymous (browser) path."""
    async with make_proxy(API_KEYS=ENTRY) as p, app_client(p, **{"X-Api-Key": presented}) as c:
        r = await c.post("/api/v1/session/create", json={})
        assert error_code(r) == (401, "unauthorized")
        assert presented not in r.text


async def test_a_revoked_key_stops_working_and_its_tokens_with_it(make_proxy: Factory) -> None:
    async with make_proxy(API_KEYS=f"{ENTRY},{OTHER_ENTRY}") as p, app_client(p) as c:
        session = await create(c)
    async with make_proxy(API_KEYS=OTHER_ENTRY) as p, app_client(p) as c:  # mobile revoked
        r = await c.post("/api/v1/session/create", json={})
        assert error_code(r) == (401, "unauthorized")
        r = await c.post("/api/v1/chat/message", json={"message": "hi"}, headers=bearer(session))
        assert error_code(r) == (401, "unauthorized")


async def test_a_key_sent_from_a_page_is_refused(make_proxy: Factory) -> None:
    async with make_proxy(API_KEYS=ENTRY) as p:
        for page in ({"Origin": ORIGIN}, BROWSER_HEADERS, {"Sec-Fetch-Site": "same-site"}):
            async with app_client(p, **page) as c:
                r = await c.post("/api/v1/session/create", json={})
            assert error_code(r) == (403, "forbidden")
            assert "web page" in r.json()["error"]["message"]


async def test_an_api_token_is_bound_to_its_key(make_proxy: Factory) -> None:
    """A token issued to a key is good with that key only: not with another key, not from a
    browser page of an allowed origin."""
    async with make_proxy(API_KEYS=f"{ENTRY},{OTHER_ENTRY}") as p, app_client(p) as c:
        session = await create(c)
        other = {"X-Api-Key": OTHER_KEY, **bearer(session)}
        r = await c.post("/api/v1/chat/message", json={"message": "hi"}, headers=other)
        assert error_code(r) == (401, "session_mismatch")
        r = await p.client.post(
            "/api/v1/chat/message",
            json={"message": "hi"},
            headers={"Origin": ORIGIN, **bearer(session)},
        )
        assert error_code(r) == (401, "session_mismatch")


async def test_a_key_has_its_own_rate_not_the_per_ip_one(make_proxy: Factory) -> None:
    async with make_proxy(
        API_KEYS=f"{ENTRY},{OTHER_ENTRY}",
        RATE_LIMIT_API_KEY="3/minute",
        RATE_LIMIT_SESSION_CREATE="1/minute",
    ) as p:
        async with app_client(p) as c:
            for _ in range(3):  # beyond the per-IP create limit of browsers
                await create(c)
            r = await c.post("/api/v1/session/create", json={})
            assert error_code(r) == (429, "rate_limited")
            assert r.headers["X-RateLimit-Tier"] == "api_key"
        async with app_client(p, **{"X-Api-Key": OTHER_KEY}) as c:
            await create(c)  # the other key's budget is its own


async def test_the_daily_quota_counts_turns(make_proxy: Factory, fake_n8n: FakeN8n) -> None:
    async with make_proxy(API_KEYS=ENTRY, API_KEY_DAILY_QUOTA="2") as p, app_client(p) as c:
        session = await create(c)
        for text in ("one", "two"):
            r = await c.post(
                "/api/v1/chat/message", json={"message": text}, headers=bearer(session)
            )
            assert r.status_code == 200, r.text
        r = await c.post("/api/v1/chat/message", json={"message": "three"}, headers=bearer(session))
        assert error_code(r) == (429, "rate_limited")
        assert r.headers["X-RateLimit-Tier"] == "api_quota"
        assert 0 < r.json()["retry_after"] <= 86400 and r.headers["Retry-After"]
    assert "three" not in [q["body"].get("chatInput") for q in fake_n8n.requests]


async def test_operators_list_the_keys_with_their_last_use(make_proxy: Factory) -> None:
    async with make_proxy(API_KEYS=f"{ENTRY},{OTHER_ENTRY}", TRUSTED_PROXIES="127.0.0.1") as p:
        async with app_client(p) as c:
            await create(c)
        r = await p.client.get("/ops/api-keys")
        assert r.status_code == 200
        listed = {k["id"]: k["last_used"] for k in r.json()["api_keys"]}
        assert set(listed) == {"mobile", "backend"}
        assert listed["backend"] is None and listed["mobile"].endswith("Z")
        assert KEY not in r.text and ENTRY.split(":")[1] not in r.text
        r = await p.client.get("/ops/api-keys", headers={"X-Forwarded-For": "203.0.113.9"})
        assert error_code(r) == (403, "forbidden")


async def test_each_conversation_of_a_key_keeps_its_session_limit(make_proxy: Factory) -> None:
    async with (
        make_proxy(API_KEYS=ENTRY, RATE_LIMIT_SESSION="1/minute") as p,
        app_client(p) as c,
    ):
        first, second = await create(c), await create(c)
        for session in (first, second):
            r = await c.post(
                "/api/v1/chat/message", json={"message": "hi"}, headers=bearer(session)
            )
            assert r.status_code == 200, r.text
        r = await c.post("/api/v1/chat/message", json={"message": "more"}, headers=bearer(first))
        assert error_code(r) == (429, "rate_limited")
        assert r.headers["X-RateLimit-Tier"] == "session"
