"""Redis fails under the production mode: stopped mid-turn and restarted, paused (SIGSTOP)
longer than the timeouts, out of memory, flushed; in both RATE_LIMIT_FAIL_MODEs. A real
redis-server per test; the gateway is a real process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio

from tests.faults.harness import Gateway, auth, fake_n8n, gateway, tracebacks, wait_for
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.faults, pytest.mark.redis]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)  # never leave a stopped server behind
    server.stop()


def production(redis: RedisServer, mode: str) -> dict[str, str]:
    return {"DEPLOYMENT_MODE": "production", "REDIS_URL": redis.url, "RATE_LIMIT_FAIL_MODE": mode}


async def stream_turn(gw: Gateway, session: dict[str, str], message: str, between: Any) -> Any:
    """A turn whose stream is read event by event; `between()` runs after the first delta."""
    from tests.integration.test_modes import SseReader

    async with gw.http.stream(
        "POST", "/api/v1/chat/message", json={"message": message}, headers=auth(session)
    ) as r:
        assert r.status_code == 200
        reader = SseReader(r.aiter_lines())
        events = [await reader.next()]
        events.append(await reader.next())
        assert events[-1]["event"] == "delta"
        await between()
        while events[-1]["event"] not in ("end", "error"):
            events.append(await reader.next())
    return events


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_stopped_mid_turn_then_restarted(redis: RedisServer, mode: str) -> None:
    async with fake_n8n() as n8n, gateway(n8n.url, workers=2, **production(redis, mode)) as gw:
        session = await gw.session()

        async def outage() -> None:
            redis.stop()
            n8n.gates["g"].set()

        with trio.fail_after(60):
            events = await stream_turn(gw, session, "gate:g", outage)
        texts = [e["data"]["text"] for e in events if e["event"] == "delta"]
        assert n8n.runs("gate:g") == 1
        if mode == "open":  # the answer is delivered live, without resume/history copies
            assert texts == ["before ", "after"] and events[-1]["event"] == "end"
            assert events[-1]["data"]["text"] == "before after"
        else:  # closed: what was sent stays sent (once), then the contract's error
            assert texts == ["before "]
            assert events[-1]["event"] == "error"
            assert events[-1]["data"]["code"] == "store_unavailable"
        # while down: new turns get the contract's answer, health says so
        if mode == "closed":
            turn = await gw.turn(session, "while down")
            assert (turn.status, turn.error) == (503, "store_unavailable") and turn.retry_after
            assert n8n.runs("while down") == 0
        health = await gw.http.get("/health")
        assert health.status_code == 503 and health.json()["checks"]["store"]["status"] == "fail"
        # restarted (empty: no persistence): the old session is gone, a new one works
        redis.start()
        await wait_for(lambda: _health_ok(gw), "health back")
        fresh = await gw.session()
        turn = await gw.turn(fresh, "back")
        assert turn.final["event"] == "end" and turn.text == "echo: back"
        assert tracebacks(gw.log()) == 0
        assert await gw.metric("quartproxy_store_errors_total") >= (1 if mode == "closed" else 0)


async def _health_ok(gw: Gateway) -> bool:
    return (await gw.http.get("/health")).status_code == 200


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_paused_longer_than_the_timeouts(redis: RedisServer, mode: str) -> None:
    assert redis.proc is not None
    async with fake_n8n() as n8n, gateway(n8n.url, **production(redis, mode)) as gw:
        session = await gw.session()
        assert (await gw.turn(session, "before")).final["event"] == "end"
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            with trio.fail_after(60):  # bounded by the store's own timeouts (5 s a call)
                health = await gw.http.get("/health")
                assert health.status_code == 503
                turn = await gw.turn(session, "paused")
            if mode == "closed":
                assert (turn.status, turn.error) == (503, "store_unavailable")
                assert n8n.runs("paused") == 0
            else:  # open: answered without the store
                assert turn.status in (200, 503), turn
                if turn.status == 200:
                    assert turn.final["event"] == "end" and n8n.runs("paused") == 1
                else:
                    assert turn.error == "store_unavailable" and n8n.runs("paused") == 0
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        await wait_for(lambda: _health_ok(gw), "health back")
        turn = await gw.turn(await gw.session(), "resumed")
        assert turn.final["event"] == "end"
        assert tracebacks(gw.log()) == 0


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_out_of_memory(redis: RedisServer, mode: str) -> None:
    async with fake_n8n() as n8n, gateway(n8n.url, **production(redis, mode)) as gw:
        session = await gw.session()
        async with coredis.Redis.from_url(redis.url) as admin:
            await admin.config_set({"maxmemory": "1", "maxmemory-policy": "noeviction"})
        turn = await gw.turn(session, "oom")
        history = f"/api/v1/chat/history/{session['session_id']}"
        r = await gw.http.get(history, headers=auth(session))
        if mode == "closed":  # every request writes (the limiter): refused before n8n runs
            assert (turn.status, turn.error) == (503, "store_unavailable"), turn
            assert n8n.runs("oom") == 0
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        else:  # open: answered without busy flag, resume and history; reads still work
            assert turn.final["event"] == "end" and turn.text == "echo: oom"
            assert n8n.runs("oom") == 1
            assert r.status_code == 200
        r = await gw.http.delete("/api/v1/session", headers=auth(session))
        assert r.status_code in (204, 503)
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "store_unavailable"
        assert tracebacks(gw.log()) == 0
        refused = await gw.metric("quartproxy_http_errors_total", code="store_unavailable")
        assert refused >= (2 if mode == "closed" else 0)


async def test_redis_flushed_mid_session(redis: RedisServer) -> None:
    """Cannot be made safe: a FLUSHALL (or a restart without persistence) loses sessions,
    history and resume buffers. What the visitor sees is the contract's 401 (start a new
    session), never a crash; an answer running during the flush still reaches its visitor."""
    async with fake_n8n() as n8n, gateway(n8n.url, **production(redis, "closed")) as gw:
        session = await gw.session()
        assert (await gw.turn(session, "one")).final["event"] == "end"

        async def flush() -> None:
            async with coredis.Redis.from_url(redis.url) as admin:
                await admin.flushall()
            n8n.gates["f"].set()

        events = await stream_turn(gw, session, "gate:f", flush)
        assert events[-1]["event"] == "end" and events[-1]["data"]["text"] == "before after"
        assert n8n.runs("gate:f") == 1
        turn = await gw.turn(session, "two")
        assert (turn.status, turn.error) == (401, "unauthorized")
        turn = await gw.turn(await gw.session(), "three")
        assert turn.final["event"] == "end"
        assert tracebacks(gw.log()) == 0
