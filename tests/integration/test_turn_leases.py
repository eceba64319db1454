"""Turn leases (docs/turn-leases.md): the busy flag lasts as long as the answer, and a dead
worker's answers end for a resuming client within the documented bound.

- in process (real Hypercorn, SQLite file): an answer held open by the fake n8n far longer than
  the lease keeps its session busy; then it ends normally and the session is free again;
- real processes, production mode: two single-worker instances of `python -m quartproxy` share
  one real redis-server; `kill -9` of the one running an answer; a client resuming on the other
  gets the final `error` event, history keeps the partial answer marked incomplete, and the
  same session takes a new message (the busy flag was released). Two instances instead of one
  server with `--workers 2`: a worker's death must be survived by the others whoever replaces
  it, and this does not depend on the supervisor (server.py);
- real process, sqlite mode: `kill -9`, restart, the resume gets the final event.

Waiting is always on a condition (an event read, a log line) under a `fail_after` bound, never
a sleep; the probe loop sleeps only as its polling interval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from quartproxy.core.leases import lease_timing
from tests.integration.test_modes import SseReader, auth, client, new_session
from tests.ops_support import ServerProcess, server_env, server_process
from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)
from tests.support import FakeN8n, chunk, parse_sse, running_proxy, served, settings_for

LEASE = 1.2  # TURN_LEASE_SECONDS in these tests: short, so a dead worker's turns end quickly
# How long a resuming client may wait for a dead worker's final event: the documented bound
# plus a generous margin for a loaded test machine (the old behaviour: 300 s, never within it).
RESUME_WITHIN = lease_timing(LEASE).resume_bound + 15.0


async def history(url: str, session: dict[str, str]) -> list[dict[str, Any]]:
    async with client(url) as c:
        r = await c.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth(session))
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


async def chat(url: str, session: dict[str, str], message: str) -> httpx.Response:
    async with client(url) as c:
        r = await c.post("/api/v1/chat/message", json={"message": message}, headers=auth(session))
        await r.aread()
        return r


async def resume_to_the_end(url: str, session: dict[str, str], mid: str, after: int) -> list[Any]:
    """The events a resuming client gets after `after`, up to the final one."""
    got: list[dict[str, Any]] = []
    async with (
        client(url) as c,
        c.stream(
            "GET",
            f"/api/v1/chat/message/{mid}",
            headers={**auth(session), "Last-Event-ID": f"{mid}:{after}"},
        ) as r,
    ):
        assert r.status_code == 200
        reader = SseReader(r.aiter_lines())
        while not got or got[-1]["event"] not in ("end", "error"):
            got.append(await reader.next())
    return got


async def start_held_answer(
    url: str, session: dict[str, str], gate: str, nursery: trio.Nursery
) -> tuple[str, trio.Event]:
    """Start an answer the fake n8n holds after "before "; returns its message id once the
    client has seen that delta, and an event set when the client's stream ends."""
    seen: list[str] = []
    ready = trio.Event()
    ended = trio.Event()

    async def follow() -> None:
        try:
            async with (
                client(url) as c,
                c.stream(
                    "POST", "/api/v1/chat/message", json={"message": f"gate:{gate}"},
                    headers=auth(session),
                ) as r,
            ):  # fmt: skip
                lines = r.aiter_lines()
                reader = SseReader(lines)
                seen.append((await reader.next())["data"]["message_id"])
                assert (await reader.next())["data"] == {"text": "before "}
                ready.set()
                async for _ in lines:
                    pass
        except (httpx.HTTPError, AssertionError):
            pass  # the worker was killed under it
        finally:
            ended.set()

    nursery.start_soon(follow)
    with trio.fail_after(30):
        await ready.wait()
    return seen[0], ended


# -- item 1: an answer longer than the lease -----------------------------------------------------
class DrippingN8n(FakeN8n):
    """`drip:<name>` streams "tick " deltas until `gates[name]` is set, then "done" and ends."""

    async def _answer(self, send: Any, message: str, claims: dict[str, Any]) -> None:
        cmd, _, name = message.partition(":")
        if cmd != "drip":
            await super()._answer(send, message, claims)
            return
        await self._start(send)
        await send({"type": "http.response.body", "body": chunk("begin"), "more_body": True})
        while not self.gates[name].is_set():
            part = chunk("item", "tick ")
            await send({"type": "http.response.body", "body": part, "more_body": True})
            with trio.move_on_after(0.05):  # the drip's pace, not a synchronisation
                await self.gates[name].wait()
        for part in (chunk("item", "done"), chunk("end")):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def test_an_answer_longer_than_the_lease_keeps_its_session_busy(tmp_path: Path) -> None:
    n8n = DrippingN8n()
    env = {"DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": str(tmp_path / "qp.db")}
    async with (
        served(n8n) as n8n_url,
        running_proxy(settings_for(f"{n8n_url}/webhook/chat", TURN_LEASE_SECONDS=str(LEASE), **env))
        as p,
        trio.open_nursery() as nursery,
    ):  # fmt: skip
        s = await p.session()
        events: list[dict[str, Any]] = []
        streaming = trio.Event()
        ended = trio.Event()

        async def follow() -> None:
            async with (
                client(p.url) as c,
                c.stream(
                    "POST", "/api/v1/chat/message", json={"message": "drip:long"},
                    headers=auth(s),
                ) as r,
            ):  # fmt: skip
                reader = SseReader(r.aiter_lines())
                while not events or events[-1]["event"] not in ("end", "error"):
                    events.append(await reader.next())
                    if events[-1]["event"] == "delta":
                        streaming.set()
            ended.set()

        nursery.start_soon(follow)
        with trio.fail_after(30):
            await streaming.wait()
        store = p.services.store
        # Probe the flag as another turn would, while the answer streams for 4 leases.
        t0 = time.time()
        probes = 0
        with trio.fail_after(60):
            while time.time() < t0 + 4 * LEASE:
                now = time.time()
                assert not await store.acquire_turn(s["session_id"], f"probe{probes}", 60, now)
                probes += 1
                await trio.sleep(LEASE / 10)  # the polling interval, not a synchronisation
        assert probes >= 10
        r = await chat(p.url, s, "second")
        assert r.status_code == 409 and r.json()["error"]["code"] == "busy"
        # the long answer ends normally, whole, and the session is free again
        n8n.gates["long"].set()
        with trio.fail_after(30):
            await ended.wait()
        deltas = [e["data"]["text"] for e in events if e["event"] == "delta"]
        assert len(deltas) > 10 and deltas[-1] == "done"
        assert events[-1]["event"] == "end" and events[-1]["data"]["text"] == "".join(deltas)
        r = await chat(p.url, s, "third")
        assert r.status_code == 200 and parse_sse(r.text)[-1].data["text"] == "echo: third"


# -- item 2: kill -9 of the worker running an answer ------------------------------------------
def lease_env(fake_n8n: FakeN8n, **extra: str) -> dict[str, str]:
    return server_env(fake_n8n.url, TURN_LEASE_SECONDS=str(LEASE), **extra)


async def check_orphan_ended(
    server: ServerProcess, session: dict[str, str], mid: str, gate: str
) -> None:
    """What the visitor sees of an answer whose worker died after "before "."""
    with trio.fail_after(RESUME_WITHIN):
        got = await resume_to_the_end(server.url, session, mid, 0)
    assert [e["event"] for e in got] == ["delta", "error"]
    assert got[0]["data"] == {"text": "before "}
    assert got[-1]["data"]["code"] == "upstream_error"
    assert got[-1]["id"] == f"{mid}:2"
    assert [(m["role"], m["text"], m.get("incomplete", False)) for m in await history(
        server.url, session)] == [
        ("user", f"gate:{gate}", False), ("assistant", "before ", True),
    ]  # fmt: skip
    r = await chat(server.url, session, "after the crash")
    assert r.status_code == 200, r.text  # the busy flag was released
    assert parse_sse(r.text)[-1].data["text"] == "echo: after the crash"
    found = await server.wait_log(lambda line: line.get("event") == "orphans_swept")
    assert found[0]["turns"] >= 1


@pytest.mark.redis
async def test_kill_9_of_an_instance_ends_its_answer_for_a_client_resuming_on_another(
    fake_n8n: FakeN8n,
    redis_server: RedisServer,  # noqa: F811 (the imported fixture)
) -> None:
    env = lease_env(fake_n8n, DEPLOYMENT_MODE="production", REDIS_URL=redis_server.url)
    async with (
        server_process(env) as doomed,
        server_process(env) as survivor,
        trio.open_nursery() as nursery,
    ):
        await doomed.wait_log(lambda line: "Running on" in str(line.get("msg", "")))
        await survivor.wait_log(lambda line: "Running on" in str(line.get("msg", "")))
        session = await new_session(doomed.url)
        mid, _ = await start_held_answer(doomed.url, session, "doomed", nursery)
        doomed.proc.kill()  # SIGKILL: no drain, no final event, no release
        with trio.fail_after(30):
            await doomed.proc.wait()
        await check_orphan_ended(survivor, session, mid, "doomed")
        async with client(survivor.url) as c:
            metrics = (await c.get("/metrics")).text
        assert 'quartproxy_orphaned_turns_total{result="ended"} 1.0' in metrics
        fake_n8n.gates["doomed"].set()  # let the fake n8n's handler end


async def test_sqlite_kill_9_then_restart_ends_the_interrupted_answer(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    env = lease_env(fake_n8n, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "qp.db"))
    async with trio.open_nursery() as nursery:
        async with server_process(env) as first:
            await first.wait_log(lambda line: "Running on" in str(line.get("msg", "")))
            session = await new_session(first.url)
            mid, _ = await start_held_answer(first.url, session, "cut", nursery)
            first.proc.kill()
            with trio.fail_after(30):
                await first.proc.wait()
        async with server_process(env) as restarted:
            await restarted.wait_log(lambda line: "Running on" in str(line.get("msg", "")))
            await check_orphan_ended(restarted, session, mid, "cut")
        fake_n8n.gates["cut"].set()


async def test_a_frozen_worker_whose_turn_was_ended_elsewhere_stops_it(
    make_proxy: Any, fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    """A worker cut off longer than its lease (frozen, partitioned) comes back to find its turn
    ended as an orphan by another worker: it stops the turn, its live client gets that same
    end, and nothing n8n sends later reaches the buffer after it."""
    from quartproxy.leases import sweep_orphans
    from quartproxy.store.sqlite import SqliteStore

    path = tmp_path / "qp.db"
    env = {"DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": str(path)}
    async with make_proxy(TURN_LEASE_SECONDS=str(LEASE), **env) as p:
        s = await p.session()
        async with (
            client(p.url) as c,
            c.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:frozen"}, headers=auth(s)
            ) as r,
        ):
            reader = SseReader(r.aiter_lines())
            mid = (await reader.next())["data"]["message_id"]
            assert (await reader.next())["data"] == {"text": "before "}
            # another worker, whose clock says this one's lease lapsed long ago
            async with SqliteStore(path) as other:
                assert await sweep_orphans(other, 300, lambda: time.time() + 5 * LEASE) == 1
            with trio.fail_after(30):
                final = await reader.next()
            assert final["event"] == "error" and final["data"]["code"] == "upstream_error"
            assert final["id"] == f"{mid}:2"
        fake_n8n.gates["frozen"].set()
        replay = await resume_to_the_end(p.url, s, mid, 0)
        assert [e["event"] for e in replay] == ["delta", "error"]  # n8n's "after" is not there
        r2 = await chat(p.url, s, "next")
        assert r2.status_code == 200
