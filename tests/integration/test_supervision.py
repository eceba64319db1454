"""The supervisor of `python -m quartproxy --workers N` (quartproxy/supervisor.py) with real
processes: a worker killed with SIGKILL is replaced while the others keep serving, and workers
that cannot start lead to a back-off and a clear stop, not to a restart storm.

Synchronisation is on the server's own log lines, on the fake n8n's gates and on bounded polls,
never on sleeps."""

from __future__ import annotations

import os
import signal
from contextlib import AsyncExitStack, suppress
from typing import Any

import httpx
import pytest
import trio

from tests.ops_support import (
    ROOT,
    headers,
    new_session,
    scrape,
    server_env,
    server_process,
    serving_pid,
    value,
    worker_pids,
)
from tests.redis_server import RedisServer
from tests.support import BROWSER_HEADERS, FakeN8n, parse_sse


def event(name: str, **fields: Any) -> Any:
    return lambda line: (
        line.get("event") == name and all(line.get(k) == v for k, v in fields.items())
    )


async def resume(url: str, session: dict[str, str], mid: str) -> list[Any]:
    """A resuming client's events from the start of the answer to its final one."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=BROWSER_HEADERS) as client:
        r = await client.get(
            f"/api/v1/chat/message/{mid}", headers={**headers(session), "Last-Event-ID": f"{mid}:0"}
        )
    assert r.status_code == 200, r.text
    return parse_sse(r.text)


def serving(line: dict[str, Any]) -> bool:
    return "Running on" in str(line.get("msg", ""))


async def read_until(chunks: Any, needle: str) -> str:
    seen = ""
    async for text in chunks:
        seen += text
        if needle in seen:
            return seen
    raise AssertionError(f"stream ended without {needle!r}: {seen!r}")


@pytest.mark.redis
async def test_a_killed_worker_is_replaced_while_the_other_keeps_streaming(
    fake_n8n: FakeN8n, tmp_path: Any
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    env = server_env(fake_n8n.url, DEPLOYMENT_MODE="production", REDIS_URL=redis.url)
    try:
        async with server_process(env, workers=2, graceful=5) as server, AsyncExitStack() as open_:
            port = int(server.url.rsplit(":", 1)[1])
            with trio.fail_after(90):
                await server.wait_log(serving, count=2)
            workers = worker_pids(server.proc.pid)
            assert len(workers) == 2
            # Live answers, each on its own connection, until both workers serve one (which
            # worker accepts a connection is the kernel's choice: bounded tries).
            streams: dict[int, tuple[str, Any]] = {}
            sessions: dict[int, dict[str, str]] = {}
            for i in range(16):
                client = await open_.enter_async_context(
                    httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS)
                )
                s = await new_session(client)
                r = await open_.enter_async_context(
                    client.stream(
                        "POST",
                        "/api/v1/chat/message",
                        json={"message": f"gate:g{i}"},
                        headers=headers(s),
                    )
                )
                chunks = r.aiter_text()
                seen = await read_until(chunks, "before")
                _, client_port = r.extensions["network_stream"].get_extra_info("client_addr")
                pid = serving_pid(port, client_port)
                assert pid in workers
                streams.setdefault(pid, (f"g{i}", (chunks, seen)))
                sessions.setdefault(pid, s)
                if len(streams) == 2:
                    break
            assert len(streams) == 2, "every stream landed on one worker"
            victim, survivor = sorted(streams)

            os.kill(victim, signal.SIGKILL)
            with trio.fail_after(30):
                (died,) = await server.wait_log(event("worker_died", pid=victim))
            assert died["exitcode"] == -signal.SIGKILL
            assert "signal SIGKILL" in died["msg"]
            assert died["new_pid"] in worker_pids(server.proc.pid)

            # The survivor's answer was not touched: it goes on to its end.
            gate, (chunks, seen) = streams[survivor]
            fake_n8n.gates[gate].set()
            seen += "".join([t async for t in chunks])
            events = parse_sse(seen)
            assert [e.event for e in events] == ["start", "delta", "delta", "end"]
            assert events[-1].data["text"] == "before after"
            # The victim's stream was cut with its worker (its turn's end is the leases' job).
            victim_gate, (victim_chunks, victim_seen) = streams[victim]
            with suppress(httpx.HTTPError):
                victim_seen += "".join([t async for t in victim_chunks])
            assert "event: end" not in victim_seen
            # ... which the surviving worker's orphan sweep does within the documented bound
            # (TURN_LEASE_SECONDS x 4/3, 8 s by default): a resuming client gets the part that
            # was sent, then the contract's error, and the history keeps it marked incomplete.
            victim_mid = parse_sse(victim_seen)[0].data["message_id"]
            with trio.fail_after(8 + 10):  # the bound, plus the slack of a loaded 2-core machine
                resumed = await resume(server.url, sessions[victim], victim_mid)
            assert [e.event for e in resumed] == ["delta", "error"]
            assert resumed[0].data == {"text": "before "}
            assert resumed[-1].data["code"] == "upstream_error"

            # The server is still up and serves new visitors, with no external restart.
            assert server.proc.returncode is None
            with trio.fail_after(30):
                async with httpx.AsyncClient(
                    base_url=server.url, timeout=30, headers=BROWSER_HEADERS
                ) as client:
                    s = await new_session(client)
                    r = await client.post(
                        "/api/v1/chat/message", json={"message": "hello"}, headers=headers(s)
                    )
                    assert r.status_code == 200, r.text
                    assert [e.event for e in parse_sse(r.text)][-1] == "end"
                    health = await client.get("/health")
                    assert health.status_code == 200, health.text
                    assert health.json()["workers"]["restarts"] == {
                        "died": 1,
                        "recycled": 0,
                        "reload": 0,
                    }
                    await server.wait_log(serving, count=3)  # the replacement serves too
                    metrics = await scrape(client)
            assert value(metrics, "quartproxy_worker_restarts_total", reason="died") == 1
            # prometheus-client was told the victim is gone: its live gauges no longer count
            # (the victim had one open stream; the survivor's has ended; none are open now).
            assert value(metrics, "quartproxy_open_streams", channel="sse") == 0
            assert value(metrics, "quartproxy_workers") == 2
            assert survivor in worker_pids(server.proc.pid)
            # The supervisor keeps no metric files of its own (only workers record values).
            (made,) = [line["path"] for line in server.lines if line.get("event") == "metrics_dir"]
            files = os.listdir(made)
            assert files and not [f for f in files if f.endswith(f"_{server.proc.pid}.db")]
            fake_n8n.gates[victim_gate].set()
    finally:
        for gate in list(fake_n8n.gates):
            fake_n8n.gates[gate].set()
        redis.stop()


async def test_workers_that_cannot_start_back_off_then_the_server_stops(
    fake_n8n: FakeN8n, tmp_path: Any
) -> None:
    """A store the workers cannot open (the settings are valid, the path is not writable):
    each worker dies at start. The supervisor replaces them with a growing delay and, after six
    early deaths in a row, stops with exit code 1 and one critical line."""
    env = server_env(
        fake_n8n.url,
        DEPLOYMENT_MODE="sqlite",
        SQLITE_PATH=str(tmp_path / "missing" / "dir" / "quartproxy.db"),
    )
    async with server_process(env, workers=2, graceful=5) as server:
        with trio.fail_after(120):
            code = await server.proc.wait()
    assert code == 1
    deaths = [line for line in server.lines if line.get("event") == "worker_died"]
    (final,) = [line for line in server.lines if line.get("event") == "workers_failing"]
    assert [d["delay"] for d in deaths] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert [d["streak"] for d in deaths] == [1, 2, 3, 4, 5]
    assert final["streak"] == 6
    assert not any(d["ready"] for d in [*deaths, final])
    assert "giving up" in final["msg"]
    assert final["level"] == "CRITICAL"
    # six workers were started in all: two at first, four replacements, none after giving up
    assert sum(1 for line in server.lines if serving(line)) <= 6


async def test_a_worker_recycled_by_max_requests_is_replaced_and_counted(
    fake_n8n: FakeN8n, tmp_path: Any
) -> None:
    toml = (ROOT / "hypercorn.toml").read_text()
    (tmp_path / "hypercorn.toml").write_text(toml + "\nmax_requests = 3\nmax_requests_jitter = 0\n")
    env = server_env(
        fake_n8n.url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "quartproxy.db")
    )
    async with server_process(env, workers=2, graceful=5, cwd=tmp_path) as server:
        with trio.fail_after(60):
            await server.wait_log(serving, count=2)
            for _ in range(40):  # bounded: 2 workers x 3 requests recycle one long before
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                    r = await client.get("/health")
                    assert r.status_code == 200, r.text
                if any(line.get("event") == "worker_recycled" for line in server.lines):
                    break
            (recycled, *_) = await server.wait_log(event("worker_recycled"))
            assert recycled["new_pid"] in worker_pids(server.proc.pid)
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                restarts = (await client.get("/health")).json()["workers"]["restarts"]
        assert restarts["recycled"] >= 1
        assert restarts["died"] == 0
        assert server.proc.returncode is None


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_workers_do_not_outlive_a_killed_supervisor(fake_n8n: FakeN8n, tmp_path: Any) -> None:
    """A supervisor killed with SIGKILL cannot stop its workers; left alone they would serve on
    as orphans holding the port. They get a SIGTERM from the kernel instead, and drain."""
    env = server_env(
        fake_n8n.url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "quartproxy.db")
    )
    workers: set[int] = set()
    try:
        async with server_process(env, workers=2, graceful=5) as server:
            with trio.fail_after(60):
                await server.wait_log(serving, count=2)
            workers = worker_pids(server.proc.pid)
            assert len(workers) == 2
            server.proc.kill()
            await server.proc.wait()
            for _ in range(300):  # a bounded poll of the process table (30 s)
                if not any(running(pid) for pid in workers):
                    break
                await trio.sleep(0.1)
            assert not [pid for pid in workers if running(pid)]
    finally:
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
