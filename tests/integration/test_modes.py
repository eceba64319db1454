"""The durable modes through a real Hypercorn subprocess: several workers on one Redis, SQLite
across a restart and a kill -9. The fake n8n runs in the test process (support.FakeN8n)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.proxy_process import proxy_process
from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)
from tests.support import BROWSER_HEADERS, FINGERPRINT, ORIGIN, FakeN8n, parse_sse


def client(url: str) -> httpx.AsyncClient:
    """A fresh client (new connections) that looks like a browser to the bot screening."""
    return httpx.AsyncClient(base_url=url, timeout=30, headers=BROWSER_HEADERS)


async def new_session(url: str) -> dict[str, str]:
    async with client(url) as c:
        r = await c.post(
            "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
        )
    assert r.status_code == 201, r.text
    return dict(r.json())


def auth(session: dict[str, str]) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Authorization": f"Bearer {session['token']}",
        "X-Chat-Fingerprint": FINGERPRINT,
    }


async def chat_once(url: str, session: dict[str, str], message: str) -> httpx.Response:
    """One turn on a fresh connection (so a multi-worker server may hand it to any worker)."""
    async with client(url) as c:
        r = await c.post("/api/v1/chat/message", json={"message": message}, headers=auth(session))
        await r.aread()
        return r


class SseReader:
    """Reads an SSE response event by event, so a test can act between events."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines

    async def next(self) -> dict[str, Any]:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if "event" in fields:
                    return {"id": fields.get("id"), "event": fields["event"],
                            "data": json.loads(fields.get("data", "null"))}  # fmt: skip
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise AssertionError("the stream ended before the next event")


# -- production: several workers share one Redis -----------------------------------------------
@pytest.mark.redis
async def test_two_workers_share_one_limit_and_resume_across_workers(
    fake_n8n: FakeN8n,
    redis_server: RedisServer,  # noqa: F811 (the imported fixture)
) -> None:
    env = {
        "DEPLOYMENT_MODE": "production",
        "REDIS_URL": redis_server.url.replace("/0", "/3"),
        "RATE_LIMIT_IP": "5/hour",
        "RATE_LIMIT_SESSION_CREATE": "1000/minute",
    }
    async with redis_flushed(redis_server, 3):
        pass
    async with proxy_process(fake_n8n.url, workers=2, **env) as server:
        sessions = [await new_session(server.url) for _ in range(24)]
        statuses: list[int] = []

        async def one(s: dict[str, str]) -> None:
            statuses.append((await chat_once(server.url, s, "json:ok")).status_code)

        async with trio.open_nursery() as nursery:
            for s in sessions[:20]:
                nursery.start_soon(one, s)
        assert sorted(statuses) == [200] * 5 + [429] * 15
        with trio.fail_after(30):
            await server.wait_access("POST", "/api/v1/chat/message", 20)
        chat_pids = {pid for pid, m, path, _ in server.access() if path == "/api/v1/chat/message"}
        assert len(chat_pids) == 2, f"both workers should have answered: {server.access()}"

    # Resume: a fresh limit, an answer held half-way by the fake n8n, and many reconnects on
    # fresh connections; the access log shows which worker served each.
    env["RATE_LIMIT_IP"] = "1000/minute"
    async with redis_flushed(redis_server, 3):
        pass
    sessions = []
    async with proxy_process(fake_n8n.url, workers=2, **env) as server:
        session = await new_session(server.url)
        async with (
            client(server.url) as c,
            c.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:g1"}, headers=auth(session)
            ) as r,
        ):
            assert r.status_code == 200
            first = SseReader(r.aiter_lines())
            start = await first.next()
            message_id = start["data"]["message_id"]
            assert (await first.next())["data"] == {"text": "before "}

            async def resume(results: list[list[dict[str, Any]]], opened: trio.Event) -> None:
                async with client(server.url) as rc, rc.stream(
                    "GET", f"/api/v1/chat/message/{message_id}",
                    headers={**auth(session), "Last-Event-ID": f"{message_id}:0"},
                ) as rr:  # fmt: skip
                    assert rr.status_code == 200
                    reader = SseReader(rr.aiter_lines())
                    got = [await reader.next()]  # the replay: everything after event 0
                    opened.set()
                    while got[-1]["event"] not in ("end", "error"):
                        got.append(await reader.next())
                    results.append(got)

            results: list[list[dict[str, Any]]] = []
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    opened = [trio.Event() for _ in range(8)]
                    for ev in opened:
                        nursery.start_soon(resume, results, ev)
                    for ev in opened:
                        await ev.wait()  # every reconnect has replayed and now follows live
                    fake_n8n.gates["g1"].set()
                    rest = [await first.next()]
                    while rest[-1]["event"] != "end":
                        rest.append(await first.next())
        for got in results:
            assert [e["event"] for e in got] == ["delta", "delta", "end"]
            assert got[0]["data"] == {"text": "before "}
            assert got[1]["data"] == {"text": "after"}
            assert got[2]["data"]["text"] == "before after"
            assert got[0]["id"] == f"{message_id}:1"
        with trio.fail_after(30):
            await server.wait_access("POST", "/api/v1/chat/message")
            await server.wait_access("GET", f"/api/v1/chat/message/{message_id}", 8)
        log = server.access()
        post_pid = {pid for pid, m, path, _ in log if m == "POST" and "chat/message" in path}
        resume_pids = {pid for pid, m, path, _ in log if path.endswith(message_id)}
        assert len(post_pid) == 1
        assert resume_pids - post_pid, f"no reconnect reached the other worker: {log}"


class redis_flushed:
    """FLUSHDB of one database of the test server (each mode test starts from nothing)."""

    def __init__(self, server: RedisServer, db: int) -> None:
        self.server, self.db = server, db

    async def __aenter__(self) -> None:
        import coredis

        client = coredis.Redis.from_url(self.server.url, db=self.db, decode_responses=True)
        async with client:
            await client.flushdb()

    async def __aexit__(self, *exc: object) -> None:
        return None


# -- sqlite: restart and kill -9 -----------------------------------------------------------------
async def test_sqlite_limits_and_history_survive_a_restart(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    env = {
        "DEPLOYMENT_MODE": "sqlite",
        "SQLITE_PATH": str(tmp_path / "qp.db"),
        "RATE_LIMIT_SESSION": "2/hour",
    }
    async with proxy_process(fake_n8n.url, **env) as server:
        session = await new_session(server.url)
        for text in ("one", "two"):
            r = await chat_once(server.url, session, text)
            assert r.status_code == 200
            assert parse_sse(r.text)[-1].data["text"] == f"echo: {text}"
    async with proxy_process(fake_n8n.url, **env) as server:
        r = await chat_once(server.url, session, "three")
        assert r.status_code == 429  # the limit remembered the two turns before the restart
        async with client(server.url) as c:
            h = await c.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth(session))
        assert h.status_code == 200
        assert [(m["role"], m["text"]) for m in h.json()["messages"]] == [
            ("user", "one"), ("assistant", "echo: one"),
            ("user", "two"), ("assistant", "echo: two"),
        ]  # fmt: skip


async def test_sqlite_kill_9_loses_nothing_a_client_has_seen(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    env = {"DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": str(tmp_path / "qp.db")}
    async with proxy_process(fake_n8n.url, **env) as server:
        session = await new_session(server.url)
        done = await chat_once(server.url, session, "finished answer")
        done_events = parse_sse(done.text)
        done_id = done_events[0].data["message_id"]
        async with (
            client(server.url) as c,
            c.stream(
                "POST",
                "/api/v1/chat/message",
                json={"message": "gate:never"},
                headers=auth(session),
            ) as r,
        ):
            reader = SseReader(r.aiter_lines())
            start = await reader.next()
            half_id = start["data"]["message_id"]
            seen = await reader.next()
            assert seen["data"] == {"text": "before "}
            server.kill9()  # the client has seen "before "; nothing may lose it
    async with (
        proxy_process(fake_n8n.url, **env) as server,
        client(server.url) as c,
    ):
        h = await c.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth(session))
        assert h.status_code == 200
        assert [(m["role"], m["text"]) for m in h.json()["messages"]] == [
                ("user", "finished answer"), ("assistant", "echo: finished answer"),
                ("user", "gate:never"),
            ]  # fmt: skip
        # the finished answer replays to its end
        r = await c.get(
            f"/api/v1/chat/message/{done_id}",
            headers={**auth(session), "Last-Event-ID": f"{done_id}:0"},
        )
        assert r.status_code == 200
        assert [e.event for e in parse_sse(r.text)][-1] == "end"
        assert parse_sse(r.text)[-1].data["text"] == "echo: finished answer"
        # the interrupted one replays what the client had seen
        async with c.stream(
                "GET", f"/api/v1/chat/message/{half_id}",
                headers={**auth(session), "Last-Event-ID": f"{half_id}:0"},
            ) as rr:  # fmt: skip
            assert rr.status_code == 200
            replay = await SseReader(rr.aiter_lines()).next()
            assert replay["id"] == f"{half_id}:1"
            assert replay["data"] == {"text": "before "}
