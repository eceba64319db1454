"""Graceful shutdown of a real server process (`python -m quartproxy`) on SIGTERM, with an
answer held in flight by the fake n8n's gate. Synchronisation is on the server's own log lines
and on the gate, never on sleeps."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from quartproxy import lifecycle
from tests.ops_support import headers, new_session, scrape, server_env, server_process, value
from tests.redis_server import RedisServer
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    FakeN8n,
    parse_sse,
    running_proxy,
    settings_for,
    sse_turn,
)


def event(name: str) -> Any:
    return lambda line: line.get("event") == name


def serving(line: dict[str, Any]) -> bool:
    return "Running on" in str(line.get("msg", ""))


async def read_until(chunks: Any, needle: str) -> str:
    seen = ""
    async for text in chunks:
        seen += text
        if needle in seen:
            return seen
    raise AssertionError(f"stream ended without {needle!r}: {seen!r}")


async def test_sigterm_refuses_new_turns_and_lets_the_running_answer_finish(
    fake_n8n: FakeN8n,
) -> None:
    async with (
        server_process(server_env(fake_n8n.url), graceful=30) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
        httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as other,
    ):
        s = await new_session(client)
        async with client.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:drain"}, headers=headers(s)
        ) as r:
            chunks = r.aiter_text()
            seen = await read_until(chunks, "before")
            server.signal(signal.SIGTERM)
            (started,) = await server.wait_log(event("drain_started"))
            assert started["running"] == 1

            # While the answer runs, the server still answers, but takes no new turn.
            s2 = await new_session(other)
            refused = await other.post(
                "/api/v1/chat/message", json={"message": "hi"}, headers=headers(s2)
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            health = await other.get("/health")
            assert health.status_code == 503
            assert health.json()["status"] == "shutting_down"
            metrics = await scrape(other)
            assert value(metrics, "quartproxy_draining_workers") == 1
            assert value(metrics, "quartproxy_chat_turns_in_flight") == 1

            fake_n8n.gates["drain"].set()
            seen += "".join([t async for t in chunks])
        events = parse_sse(seen)
        assert [e.event for e in events] == ["start", "delta", "delta", "end"]
        assert events[-1].data["text"] == "before after"
        assert await server.proc.wait() == 0
    (drained,) = [line for line in server.lines if line.get("event") == "drained"]
    assert drained["cut"] == 0


async def test_answers_still_running_at_the_deadline_end_with_shutting_down(
    fake_n8n: FakeN8n,
) -> None:
    async with (
        server_process(server_env(fake_n8n.url), graceful=1) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
    ):
        s = await new_session(client)
        async with client.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:never"}, headers=headers(s)
        ) as r:
            chunks = r.aiter_text()
            seen = await read_until(chunks, "before")
            server.signal(signal.SIGTERM)
            seen += "".join([t async for t in chunks])  # the gate is never opened
        events = parse_sse(seen)
        assert [e.event for e in events] == ["start", "delta", "error"]
        assert events[1].data["text"] == "before "
        assert events[-1].data["code"] == "shutting_down"
        assert events[-1].id == f"{events[0].data['message_id']}:2"  # resumable position
        assert await server.proc.wait() == 0
    assert [line["running"] for line in server.lines if line.get("event") == "drain_deadline"] == [
        1
    ]
    assert "gate:never" not in fake_n8n.finished


async def test_a_second_signal_ends_the_drain_at_once(fake_n8n: FakeN8n) -> None:
    with trio.fail_after(60):  # graceful_timeout is 600 s: only the second signal ends it
        async with (
            server_process(server_env(fake_n8n.url), graceful=600) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
        ):
            s = await new_session(client)
            async with client.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:twice"}, headers=headers(s)
            ) as r:
                chunks = r.aiter_text()
                seen = await read_until(chunks, "before")
                server.signal(signal.SIGTERM)
                await server.wait_log(event("drain_started"))
                server.signal(signal.SIGTERM)
                seen += "".join([t async for t in chunks])
            events = parse_sse(seen)
            assert [e.event for e in events] == ["start", "delta", "error"]
            assert events[-1].data["code"] == "shutting_down"
            assert await server.proc.wait() == 0


async def test_two_workers_each_drain_before_the_server_exits(fake_n8n: FakeN8n) -> None:
    """Hypercorn's own master terminates every other worker as soon as the first one exits
    (see the next test); ours waits until each worker has drained."""
    async with (
        server_process(server_env(fake_n8n.url), workers=2, graceful=30) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
    ):
        s = await new_session(client)
        async with client.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:two"}, headers=headers(s)
        ) as r:
            chunks = r.aiter_text()
            seen = await read_until(chunks, "before")
            await server.wait_log(serving, count=2)  # both workers have started their apps
            server.signal(signal.SIGTERM)
            # The idle worker drains at once and exits; the busy one keeps its answer going.
            # Both drains are under way before the answer may end (the busy worker's signal can
            # come a little after the idle one has already exited: it would then see no answer).
            await server.wait_log(event("drain_started"), count=2)
            await server.wait_log(event("worker_exited"))
            fake_n8n.gates["two"].set()
            seen += "".join([t async for t in chunks])
        events = parse_sse(seen)
        assert [e.event for e in events] == ["start", "delta", "delta", "end"]
        assert events[-1].data["text"] == "before after"
        assert await server.proc.wait() == 0
    drains = [line for line in server.lines if line.get("event") == "drain_started"]
    assert sorted(line["running"] for line in drains) == [0, 1]
    # the metrics directory the CLI made for its workers is gone with it
    (made,) = [line["path"] for line in server.lines if line.get("event") == "metrics_dir"]
    assert not await trio.Path(made).exists()


async def test_stock_hypercorn_master_cuts_streams_of_other_workers(fake_n8n: FakeN8n) -> None:
    """The measured fact behind server.py: with `hypercorn -w 2`, SIGTERM makes the idle worker
    exit at once and the master then terminates the busy one; its stream ends without any
    final event."""
    async with (
        server_process(
            server_env(fake_n8n.url), workers=2, graceful=30, stock_hypercorn=True
        ) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
    ):
        s = await new_session(client)
        seen = ""
        cut = False
        async with client.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:stock"}, headers=headers(s)
        ) as r:
            chunks = r.aiter_text()
            seen = await read_until(chunks, "before")
            await server.wait_log(serving, count=2)
            server.signal(signal.SIGTERM)
            try:
                seen += "".join([t async for t in chunks])
            except httpx.HTTPError:
                cut = True
        await server.proc.wait()
    events = parse_sse(seen)
    assert cut
    assert [e.event for e in events] == ["start", "delta"]
    assert "gate:stock" not in fake_n8n.finished


async def test_websocket_gets_its_answer_then_closes_going_away(fake_n8n: FakeN8n) -> None:
    """graceful_timeout is 600 s here: the server only exits in time because the WebSocket is
    closed once the drain is over, instead of being waited for."""
    extra = [(k.encode(), v.encode()) for k, v in {**BROWSER_HEADERS, "Origin": ORIGIN}.items()]
    with trio.fail_after(60):
        async with (
            server_process(server_env(fake_n8n.url), graceful=600) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as client,
        ):
            s = await new_session(client)
            url = server.url.replace("http://", "ws://") + "/api/v1/chat/ws"
            async with open_websocket_url(url, extra_headers=extra) as ws:
                auth = {"type": "auth", "token": s["token"], "fingerprint": FINGERPRINT}
                await ws.send_message(json.dumps(auth))
                assert json.loads(await ws.get_message())["type"] == "ready"
                await ws.send_message(json.dumps({"type": "message", "message": "gate:ws"}))
                frames = [json.loads(await ws.get_message()) for _ in range(2)]
                assert [f["type"] for f in frames] == ["start", "delta"]

                server.signal(signal.SIGTERM)
                await server.wait_log(event("drain_started"))
                await ws.send_message(json.dumps({"type": "message", "message": "more"}))
                refused = json.loads(await ws.get_message())
                assert refused["type"] == "error" and refused["code"] == "shutting_down"

                fake_n8n.gates["ws"].set()
                rest = []
                try:
                    while True:
                        frame = json.loads(await ws.get_message())
                        if frame["type"] != "ping":
                            rest.append(frame)
                except ConnectionClosed as closed:
                    code = closed.reason.code
            assert [f["type"] for f in rest] == ["delta", "end"]
            assert rest[-1]["text"] == "before after"
            assert code == 1001
            assert await server.proc.wait() == 0


@pytest.mark.redis
async def test_an_answer_cut_by_a_drain_resumes_elsewhere_up_to_where_it_stopped(
    fake_n8n: FakeN8n, tmp_path: Any
) -> None:
    """Two instances on one Redis. Instance A drains (grace 0) while its answer is held by n8n:
    its stream ends with `shutting_down`; the widget resuming on instance B gets the same
    events from the shared buffer — the text so far, then `shutting_down` — never a hang."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        settings = settings_for(fake_n8n.url, DEPLOYMENT_MODE="production", REDIS_URL=redis.url)
        async with running_proxy(settings) as a, running_proxy(settings) as b:
            s = await a.session()
            async with a.client.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:cut"}, headers=a.auth(s)
            ) as r:
                chunks = r.aiter_text()
                seen = await read_until(chunks, "before")
                await lifecycle.drain(a.services, 0, trio.Event())
                seen += "".join([t async for t in chunks])
            events = parse_sse(seen)
            assert [e.event for e in events] == ["start", "delta", "error"]
            assert events[-1].data["code"] == "shutting_down"
            mid = events[0].data["message_id"]

            r2 = await b.client.get(
                f"/api/v1/chat/message/{mid}",
                headers={**b.auth(s), "Last-Event-ID": f"{mid}:0"},
            )
            assert r2.status_code == 200
            resumed = parse_sse(r2.text)
            assert [(e.event, e.id) for e in resumed] == [
                ("delta", f"{mid}:1"),
                ("error", f"{mid}:2"),
            ]
            assert resumed[0].data["text"] == "before "
            assert resumed[-1].data["code"] == "shutting_down"
            # instance B still takes new turns for the same session
            events = await sse_turn(b, s, "hello")
            assert events[-1].event == "end"
    finally:
        redis.stop()
