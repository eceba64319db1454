"""A store outage (Redis stopped) answers every route with the contract's
`503 store_unavailable` + Retry-After and one log line, never a 500 with a traceback; the
rate limiter still follows RATE_LIMIT_FAIL_MODE. Real redis-server, real Hypercorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from tests.support import FakeN8n, running_proxy, settings_for, sse_turn

pytestmark = pytest.mark.redis


@pytest.fixture
def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:  # type: ignore[misc]
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def assert_store_unavailable(r: object) -> None:
    import httpx

    assert isinstance(r, httpx.Response)
    assert r.status_code == 503, (r.request.method, r.request.url.path, r.text)
    assert r.json()["error"]["code"] == "store_unavailable"
    assert int(r.headers["Retry-After"]) >= 1
    assert "Traceback" not in r.text and "redis" not in r.text.lower()


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
async def test_every_route_answers_503_store_unavailable_while_redis_is_down(
    fake_n8n: FakeN8n,
    redis: RedisServer,
    fail_mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(
        fake_n8n.url,
        DEPLOYMENT_MODE="production",
        REDIS_URL=redis.url,
        RATE_LIMIT_FAIL_MODE=fail_mode,
    )
    async with running_proxy(settings) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "hello")
        message_id = events[0].data["message_id"]
        sid = session["session_id"]
        redis.stop()
        caplog.clear()
        caplog.set_level(logging.INFO)
        auth = proxy.auth(session)
        c = proxy.client
        compat = {"Origin": auth["Origin"]}
        requests = [
            c.get(f"/api/v1/chat/history/{sid}", headers=auth),
            c.get(
                f"/api/v1/chat/message/{message_id}",
                headers={**auth, "Last-Event-ID": f"{message_id}:0"},
            ),
            c.delete("/api/v1/session", headers=auth),
            c.post(
                "/api/v1/n8n/chat",
                json={"action": "loadPreviousSession", "sessionId": "w1"},
                headers=compat,
            ),
        ]
        if fail_mode == "closed":  # refused by the limiter / session check already
            requests += [
                c.get("/api/v1/session/validate", headers=auth),
                c.post("/api/v1/session/create", json={}, headers={"Origin": auth["Origin"]}),
                c.post("/api/v1/chat/message", json={"message": "hi"}, headers=auth),
            ]
        for pending in requests:
            assert_store_unavailable(await pending)
        # the gateway's and the servers' logs (coredis logs its reconnects at INFO)
        logged = [
            r for r in caplog.records if r.name.startswith(("quartproxy", "hypercorn", "quart"))
        ]
        assert not any(r.exc_info for r in logged), [r.getMessage() for r in logged if r.exc_info]
        assert not any(r.levelno >= logging.ERROR for r in logged)
        per_request = [r for r in logged if "store unavailable" in r.getMessage().lower()]
        assert len(per_request) >= len(requests)
        metrics = (await c.get("/metrics")).text
        assert 'quartproxy_store_errors_total{where="request"}' in metrics
        assert 'quartproxy_http_errors_total{code="store_unavailable"}' in metrics
        # the store comes back: so do the routes
        redis.start()
        r = await c.get(f"/api/v1/chat/history/{sid}", headers=auth)
        assert r.status_code in (200, 401), r.text  # 401: DELETE went through in open mode


async def test_redis_oom_is_store_unavailable_not_a_crash(
    fake_n8n: FakeN8n, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis ResponseError (OOM under maxmemory + noeviction) is an unavailable store."""
    import coredis

    settings = settings_for(fake_n8n.url, DEPLOYMENT_MODE="production", REDIS_URL=redis.url)
    async with running_proxy(settings) as proxy:
        session = await proxy.session()
        async with coredis.Redis.from_url(redis.url) as admin:
            await admin.config_set({"maxmemory": "1", "maxmemory-policy": "noeviction"})
        caplog.clear()
        r = await proxy.client.post(
            "/api/v1/chat/message", json={"message": "hi"}, headers=proxy.auth(session)
        )
        assert_store_unavailable(r)
        r = await proxy.client.delete("/api/v1/session", headers=proxy.auth(session))
        assert_store_unavailable(r)
        assert not any(rec.exc_info for rec in caplog.records if rec.name.startswith("quart"))
        assert fake_n8n.requests == []  # no workflow ran for a turn that could not be recorded


async def test_websocket_turn_refused_by_the_store_gets_the_contract_error_frame(
    fake_n8n: FakeN8n, caplog: pytest.LogCaptureFixture
) -> None:
    """The store failing as a turn is opened (after the limiter let it through: a race with
    an outage) answers the WebSocket with an error frame and keeps the socket open, as the
    HTTP channels answer 503 store_unavailable."""
    import json

    from quartproxy.store.base import StoreUnavailable
    from tests.integration.test_ws import authed, receive, send, socket

    async with running_proxy(settings_for(fake_n8n.url)) as proxy:
        session = await proxy.session()
        store = proxy.services.store

        async def down(*_: object, **__: object) -> None:
            raise StoreUnavailable("injected outage")

        async with socket(proxy) as ws:
            await authed(ws, session)
            original, store.begin_turn = store.begin_turn, down
            try:
                await send(ws, {"type": "message", "message": "hello"})
                frame = await receive(ws)
            finally:
                store.begin_turn = original
            assert frame["type"] == "error" and frame["code"] == "store_unavailable"
            await send(ws, {"type": "message", "message": "again"})
            frames = [await receive(ws)]
            while frames[-1]["type"] not in ("end", "error"):
                frames.append(await receive(ws))
            assert frames[-1]["type"] == "end", json.dumps(frames)
        assert not any(r.exc_info for r in caplog.records if r.name.startswith("quart"))


async def test_a_resume_whose_store_fails_mid_stream_ends_with_the_contract_error(
    fake_n8n: FakeN8n, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store answers the resume's first read, then fails: the stream ends with an error
    event store_unavailable under the id the client already had, and a later resume from
    that id gets the rest: nothing lost, nothing doubled."""
    from tests.support import parse_sse

    settings = settings_for(
        fake_n8n.url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "r.db")
    )
    async with running_proxy(settings) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "one two three")
        message_id = events[0].data["message_id"]
        store = proxy.services.store
        real = store.buffer_read
        calls = [0]

        async def flaky(*args: object, **kw: object) -> object:
            calls[0] += 1
            if calls[0] == 1:
                return await real(*args, **kw)  # the route's check
            from quartproxy.store.base import StoreUnavailable

            raise StoreUnavailable("injected outage")

        store.buffer_read = flaky
        headers = {**proxy.auth(session), "Last-Event-ID": f"{message_id}:1"}
        r = await proxy.client.get(f"/api/v1/chat/message/{message_id}", headers=headers)
        store.buffer_read = real
        got = parse_sse(r.text)
        assert [e.event for e in got] == ["error"]
        assert got[0].data["code"] == "store_unavailable" and got[0].id == f"{message_id}:1"
        r = await proxy.client.get(f"/api/v1/chat/message/{message_id}", headers=headers)
        assert [e.event for e in parse_sse(r.text)] == [e.event for e in events[2:]]
        assert not any(rec.exc_info for rec in caplog.records if rec.name.startswith("quart"))
