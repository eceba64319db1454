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

from tests.proxy_process import ProxyProcess, proxy_process
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
        sessions = [await new_session(server.url) for _ in range(20)]
        found, spare = await one_connection_per_worker(server, 2)
        served: dict[str, list[int]] = {pid: [] for pid in found}
        for i, session in enumerate(sessions):  # alternate: worker 1, worker 2, worker 1, ...
            pid, wc = list(found.items())[i % 2]
            r = await wc.post(
                "/api/v1/chat/message", json={"message": "json:ok"}, headers=auth(session)
            )
            served[pid].append(r.status_code)
        statuses = [s for codes in served.values() for s in codes]
        assert sorted(statuses) == [200] * 5 + [429] * 15, served  # one limit, both workers
        assert all(len(codes) == 10 for codes in served.values())
        for wc in [*found.values(), *spare]:
            await wc.aclose()

    # Resume: an answer held half-way by the fake n8n, and reconnects on connections that
    # each worker holds (found by a probe request whose access line names worker and client
    # port): one on the worker running the answer, one on the other.
    env["RATE_LIMIT_IP"] = "1000/minute"
    async with redis_flushed(redis_server, 3):
        pass
    async with proxy_process(fake_n8n.url, workers=2, **env) as server:
        session = await new_session(server.url)

        c = n_client(server.url)
        post_worker = await worker_of(server, c)
        found, spare = await one_connection_per_worker(server, 2)
        async with c.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:g1"}, headers=auth(session)
        ) as r:
            assert r.status_code == 200
            first = SseReader(r.aiter_lines())
            message_id = (await first.next())["data"]["message_id"]
            assert (await first.next())["data"] == {"text": "before "}

            async def resume(rc: httpx.AsyncClient, opened: trio.Event, out: list[Any]) -> None:
                async with rc.stream(
                    "GET", f"/api/v1/chat/message/{message_id}",
                    headers={**auth(session), "Last-Event-ID": f"{message_id}:0"},
                ) as rr:  # fmt: skip
                    assert rr.status_code == 200
                    reader = SseReader(rr.aiter_lines())
                    got = [await reader.next()]  # the replay: everything after event 0
                    opened.set()
                    while got[-1]["event"] not in ("end", "error"):
                        got.append(await reader.next())
                    out.append(got)

            results: dict[str, list[Any]] = {pid: [] for pid in found}
            with trio.fail_after(60):
                async with trio.open_nursery() as resumes:
                    opened = []
                    for pid, rc in found.items():
                        opened.append(trio.Event())
                        resumes.start_soon(resume, rc, opened[-1], results[pid])
                    for ev in opened:
                        await ev.wait()  # both reconnects replayed and now follow live
                    fake_n8n.gates["g1"].set()
                    rest = [await first.next()]
                    while rest[-1]["event"] != "end":
                        rest.append(await first.next())
        assert post_worker in found
        for got in (results[pid][0] for pid in found):  # same worker, then the other one
            assert [e["event"] for e in got] == ["delta", "delta", "end"]
            assert got[0]["data"] == {"text": "before "}
            assert got[0]["id"] == f"{message_id}:1"
            assert got[1]["data"] == {"text": "after"}
            assert got[2]["data"]["text"] == "before after"
        for bc in [c, *found.values(), *spare]:
            await bc.aclose()


async def worker_of(server: ProxyProcess, c: httpx.AsyncClient) -> str:
    """The pid of the worker holding `c`'s (single) connection: a probe request's access line
    names the worker and the client port."""
    r = await c.get("/health")
    addr = r.extensions["network_stream"].get_extra_info("client_addr")
    with trio.fail_after(30):
        return await server.worker_of(addr)


async def one_connection_per_worker(
    server: ProxyProcess, workers: int
) -> tuple[dict[str, httpx.AsyncClient], list[httpx.AsyncClient]]:
    """A client per worker, each holding one connection that this worker accepted, and the
    spare clients. The workers share one listening socket and whichever is first to accept
    wins, so one worker can take every connection for a while: probe in concurrent rounds until
    both have one (bounded by a deadline, not a round count)."""
    found: dict[str, httpx.AsyncClient] = {}
    spare: list[httpx.AsyncClient] = []
    with trio.move_on_after(45):
        while len(found) < workers:
            await probe_round(server, found, spare)
    assert len(found) == workers, f"the kernel never gave every worker a connection: {found}"
    return found, spare


async def probe_round(
    server: ProxyProcess, found: dict[str, httpx.AsyncClient], spare: list[httpx.AsyncClient]
) -> None:
    batch = [n_client(server.url) for _ in range(8)]
    pids: list[str] = [""] * len(batch)

    async def probe(i: int, bc: httpx.AsyncClient, out: list[str] = pids) -> None:
        out[i] = await worker_of(server, bc)

    async with trio.open_nursery() as probes:
        for i, bc in enumerate(batch):
            probes.start_soon(probe, i, bc)
    for pid, bc in zip(pids, batch, strict=True):
        if pid in found:
            spare.append(bc)
        else:
            found[pid] = bc


def n_client(url: str) -> httpx.AsyncClient:
    """A browser-like client with exactly one connection, so every request uses the same one."""
    return httpx.AsyncClient(
        base_url=url, timeout=30, headers=BROWSER_HEADERS, limits=httpx.Limits(max_connections=1)
    )


@pytest.mark.redis
async def test_resume_on_another_instance_replays_and_follows_live(
    fake_n8n: FakeN8n,
    redis_server: RedisServer,  # noqa: F811 (the imported fixture)
) -> None:
    """Two instances (separate servers, separate ports) on one Redis: the answer runs on A, the
    reconnect goes to B — deterministic, unlike the kernel's choice between two workers."""
    env = {"DEPLOYMENT_MODE": "production", "REDIS_URL": redis_server.url.replace("/0", "/4")}
    async with redis_flushed(redis_server, 4):
        pass
    async with (
        proxy_process(fake_n8n.url, **env) as a,
        proxy_process(fake_n8n.url, **env) as b,
        client(a.url) as ca,
        client(b.url) as cb,
    ):
        session = await new_session(a.url)
        async with ca.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:g2"}, headers=auth(session)
        ) as r:
            on_a = SseReader(r.aiter_lines())
            message_id = (await on_a.next())["data"]["message_id"]
            assert (await on_a.next())["data"] == {"text": "before "}
            async with cb.stream(
                "GET",
                f"/api/v1/chat/message/{message_id}",
                headers={**auth(session), "Last-Event-ID": f"{message_id}:0"},
            ) as rb:
                assert rb.status_code == 200
                on_b = SseReader(rb.aiter_lines())
                replay = await on_b.next()
                assert (replay["id"], replay["data"]) == (f"{message_id}:1", {"text": "before "})
                fake_n8n.gates["g2"].set()  # only now does A receive the rest from n8n
                live = [await on_b.next(), await on_b.next()]
                assert [e["event"] for e in live] == ["delta", "end"]
                assert live[0]["data"] == {"text": "after"}
                assert live[1]["data"]["text"] == "before after"
        # B's history shows the whole turn that A ran
        h = await cb.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth(session))
        assert [(m["role"], m["text"]) for m in h.json()["messages"]] == [
            ("user", "gate:g2"),
            ("assistant", "before after"),
        ]
        # and an expired or unknown answer is a 404 on any instance
        r404 = await cb.get(
            "/api/v1/chat/message/00000000-0000-4000-8000-000000000000",
            headers={**auth(session), "Last-Event-ID": "00000000-0000-4000-8000-000000000000:0"},
        )
        assert r404.status_code == 404


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
    # A long lease: the restarted server must not end the interrupted turn as an orphan while
    # this test looks at what was kept (that ending: test_turn_leases.py).
    env = {
        "DEPLOYMENT_MODE": "sqlite",
        "SQLITE_PATH": str(tmp_path / "qp.db"),
        "TURN_LEASE_SECONDS": "600",
    }
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
