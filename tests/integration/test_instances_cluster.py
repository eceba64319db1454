"""Several gateway instances on one Redis Cluster (3 primaries, 3 replicas; tests/redis_server.py):
two `python -m quartproxy` processes on their own ports stand in for two hosts.

- a visitor whose stream breaks resumes on the other instance and gets the whole answer; both
  instances show the same history;
- a 50-request burst spread over both instances meets the limits exactly: session creation
  (one tier) and chat messages (ip, session and origin tiers, one script on the `{rl}` slot);
- `kill -9` of the instance running an answer: a client resuming on the other gets the final
  error event (worker leases on the `{w}` slot, busy flags on the sessions' slots);
- the primary of a session's slot killed mid-answer: the rest of the answer is written once
  the replica is promoted and reaches the visitor whole, /health says degraded meanwhile and
  ok after, the retries are counted;
- a rolling restart of both instances behind nginx (docs/topologies.md's procedure) while
  visitors chat: every message is answered whole.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.integration.test_modes import SseReader, auth, client, new_session
from tests.integration.test_nginx import nginx_conf, nginx_in_front
from tests.integration.test_turn_leases import (
    check_orphan_ended,
    history,
    lease_env,
    resume_to_the_end,
    start_held_answer,
)
from tests.ops_support import listening_socket, server_env, server_process
from tests.redis_server import RedisCluster, poll
from tests.support import FINGERPRINT, ORIGIN, FakeN8n, parse_sse
from tests.unit.test_store_cluster import _replicated

pytestmark = [pytest.mark.cluster, pytest.mark.redis]


def cluster_env(fake_n8n: FakeN8n, cluster: RedisCluster, **extra: str) -> dict[str, str]:
    cluster.flush()  # limits and sessions of the tests before are not this test's
    return server_env(fake_n8n.url, DEPLOYMENT_MODE="production", REDIS_URL=cluster.url, **extra)


async def test_a_broken_stream_resumes_on_the_other_instance(
    fake_n8n: FakeN8n, redis_cluster: RedisCluster
) -> None:
    env = cluster_env(fake_n8n, redis_cluster)
    async with server_process(env) as a, server_process(env) as b:
        session = await new_session(a.url)
        async with trio.open_nursery() as visitor:
            mid, _ = await start_held_answer(a.url, session, "resume-b", visitor)
            visitor.cancel_scope.cancel()  # the visitor's connection to instance a breaks
        fake_n8n.gates["resume-b"].set()  # the answer goes on on instance a
        with trio.fail_after(30):
            got = await resume_to_the_end(b.url, session, mid, 1)  # seen: start, "before "
        assert [(e["event"], e["data"].get("text")) for e in got] == [
            ("delta", "after"),
            ("end", "before after"),
        ]
        assert got[-1]["id"] == f"{mid}:3"
        for url in (a.url, b.url):  # one conversation, whichever instance is asked
            assert [(m["role"], m["text"]) for m in await history(url, session)] == [
                ("user", "gate:resume-b"),
                ("assistant", "before after"),
            ]


async def test_a_burst_over_two_instances_meets_the_limits_exactly(
    fake_n8n: FakeN8n, redis_cluster: RedisCluster
) -> None:
    env = cluster_env(
        fake_n8n,
        redis_cluster,
        RATE_LIMIT_SESSION_CREATE="7/hour",
        RATE_LIMIT_IP="9/hour",
        RATE_LIMIT_SESSION="1000/hour",
        RATE_LIMIT_ORIGIN="1000/hour",
    )
    async with server_process(env) as a, server_process(env) as b:
        urls = [a.url, b.url]
        created: list[int] = []
        sessions: list[dict[str, str]] = []

        async def create(i: int) -> None:
            async with client(urls[i % 2]) as c:
                r = await c.post(
                    "/api/v1/session/create",
                    json={"fingerprint": FINGERPRINT},
                    headers={"Origin": ORIGIN},
                )
            created.append(r.status_code)
            if r.status_code == 201:
                sessions.append(dict(r.json()))

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(create, i)
        assert sorted(created) == [201] * 7 + [429] * 43

        sent: list[int] = []

        async def message(i: int) -> None:
            session = sessions[i % len(sessions)]
            async with client(urls[i % 2]) as c:
                r = await c.post(
                    "/api/v1/chat/message", json={"message": f"m{i}"}, headers=auth(session)
                )
                await r.aread()
            sent.append(r.status_code)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(message, i)
        # the ip tier lets 9 through, whichever instance they reached (some of the 9 may
        # meet their session busy with another of them: 409, charged all the same)
        assert sent.count(429) == 41
        assert set(sent) <= {200, 409, 429}


async def test_kill_9_of_an_instance_ends_its_answer_on_the_other(
    fake_n8n: FakeN8n, redis_cluster: RedisCluster
) -> None:
    redis_cluster.flush()
    env = lease_env(fake_n8n, DEPLOYMENT_MODE="production", REDIS_URL=redis_cluster.url)
    async with (
        server_process(env) as doomed,
        server_process(env) as survivor,
        trio.open_nursery() as nursery,
    ):
        session = await new_session(doomed.url)
        mid, _ = await start_held_answer(doomed.url, session, "doomed-c", nursery)
        doomed.proc.kill()  # SIGKILL: no drain, no final event, no release
        with trio.fail_after(30):
            await doomed.proc.wait()
        await check_orphan_ended(survivor, session, mid, "doomed-c")
        fake_n8n.gates["doomed-c"].set()


async def test_a_primary_killed_mid_answer_the_answer_finishes_and_health_recovers(
    fake_n8n: FakeN8n, redis_cluster: RedisCluster
) -> None:
    # a loaded test machine may take longer than production's default to promote a replica
    env = cluster_env(fake_n8n, redis_cluster, REDIS_FAILOVER_WAIT_SECONDS="40")
    async with server_process(env) as a, server_process(env) as b:
        session = await new_session(a.url)
        primary = redis_cluster.primary_of(f"qp:{{s:{session['session_id']}}}:busy")
        got: list[dict[str, Any]] = []
        ready, done = trio.Event(), trio.Event()
        health: list[int] = []

        async def visitor() -> None:
            async with (
                client(a.url) as c,
                c.stream(
                    "POST", "/api/v1/chat/message", json={"message": "gate:failover"},
                    headers=auth(session),
                ) as r,
            ):  # fmt: skip
                reader = SseReader(r.aiter_lines())
                while not got or got[-1]["event"] not in ("end", "error"):
                    got.append(await reader.next())
                    if len(got) == 2:
                        ready.set()
            done.set()

        async def watch_health() -> None:
            async with client(a.url) as c:
                while not done.is_set() or health[-1:] != [200]:
                    health.append((await c.get("/health")).status_code)
                    await trio.sleep(0.1)  # polling interval

        try:
            with trio.fail_after(90):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(visitor)
                    await ready.wait()  # start, "before " seen and stored
                    nursery.start_soon(watch_health)
                    while not health:  # noqa: ASYNC110 (a list filled by watch_health)
                        await trio.sleep(0.05)  # polling interval
                    poll(lambda: _replicated(primary.port), "the replica to catch up")
                    assert primary.proc is not None
                    primary.proc.kill()  # the primary of this session's slot dies
                    primary.proc.wait()
                    primary.proc = None
                    fake_n8n.gates["failover"].set()  # the rest of the answer comes now
        finally:
            if primary.proc is None:
                primary.start()
                poll(redis_cluster.healthy, "the cluster to heal")
        # the answer was written across the failover and reached the visitor whole
        assert [e["event"] for e in got] == ["start", "delta", "delta", "end"], got
        assert got[-1]["data"]["text"] == "before after"
        # ok before, degraded while it lasted, then ok
        assert health[0] == 200 and 503 in health and health[-1] == 200, health
        assert [(m["role"], m["text"]) for m in await history(b.url, session)] == [
            ("user", "gate:failover"),
            ("assistant", "before after"),
        ]
        async with client(a.url) as c:
            metrics = (await c.get("/metrics")).text
        retries = re.search(r"^quartproxy_store_failover_retries_total (\S+)$", metrics, re.M)
        assert retries is not None and float(retries.group(1)) >= 1, metrics[-2000:]


async def _reload_nginx(tmp: Path, front: str, servers: list[str]) -> None:
    """Rewrite the test nginx's upstream and reload it (SIGHUP), as an operator would; returns
    once the old worker process has exited (its requests all done)."""
    log = tmp / "error.log"
    before = log.read_text().count(" exited with code")
    port = int(front.rsplit(":", 1)[1])
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, port, ";\n        server ".join(servers)))
    os.kill(int((tmp / "nginx.pid").read_text()), signal.SIGHUP)
    # the old worker has finished the requests it took under the old upstream list (async: the
    # visitors of this test must go on reading for it to finish)
    with trio.fail_after(60):
        while log.read_text().count(" exited with code") <= before:  # noqa: ASYNC110
            await trio.sleep(0.05)  # polling interval


@pytest.mark.nginx
async def test_a_rolling_restart_behind_nginx_loses_no_answer(
    fake_n8n: FakeN8n, redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """The shipped nginx snippet over two instances, restarted one at a time as
    docs/topologies.md says: mark the instance `down` in the upstream and reload nginx, SIGTERM
    it (the drain finishes its answers), start the new process, put it back. Visitors keep
    chatting through nginx all along: every message gets its whole answer, none is refused."""
    high = {f"RATE_LIMIT_{t}": "100000/minute" for t in ("IP", "SESSION", "ORIGIN")}
    env = cluster_env(fake_n8n, redis_cluster, **high)
    socks = [listening_socket(), listening_socket()]
    addrs = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    answered: list[int] = []
    stop = trio.Event()

    async def visitor(front: str, k: int) -> None:
        session = await new_session(front)
        i = 0
        while not stop.is_set() or i < 3:
            text = f"v{k} m{i}"
            async with client(front) as c:
                r = await c.post(
                    "/api/v1/chat/message", json={"message": text}, headers=auth(session)
                )
                await r.aread()
            assert r.status_code == 200, (r.status_code, r.text[-300:])
            last = parse_sse(r.text)[-1]
            assert (last.event, last.data["text"]) == ("end", f"echo: {text}"), r.text
            answered.append(k)
            i += 1

    restart = [trio.Event(), trio.Event()]
    started = [0, 0]  # processes that came up on each socket
    done = trio.Event()

    async def keep(index: int) -> None:
        """Instance `index`: one process, then on `restart[index]` a SIGTERM (the drain) and
        a new process on the same socket, which runs until `done`."""
        for generation in (0, 1):
            async with server_process(env, sock=socks[index]) as srv:
                await srv.wait_log(lambda line: "Running on" in str(line.get("msg", "")))
                started[index] += 1
                await (restart[index] if generation == 0 else done).wait()
                if generation == 0:
                    srv.signal(signal.SIGTERM)
                    with trio.fail_after(60):
                        await srv.proc.wait()

    async def until(condition: Any) -> None:
        while not condition():  # noqa: ASYNC110 (progress of other tasks, no event)
            await trio.sleep(0.05)  # polling interval

    try:
        with trio.fail_after(150):
            async with trio.open_nursery() as instances:
                for index in (0, 1):
                    instances.start_soon(keep, index)
                await until(lambda: started == [1, 1])
                async with (
                    nginx_in_front(";\n        server ".join(addrs), tmp_path) as front,
                    trio.open_nursery() as visitors,
                ):
                    for k in range(4):
                        visitors.start_soon(visitor, front, k)
                    for index in (0, 1):
                        before = len(answered)
                        await until(lambda b=before: len(answered) >= b + 4)
                        out = [a + (" down" if i == index else "") for i, a in enumerate(addrs)]
                        await _reload_nginx(tmp_path, front, out)
                        restart[index].set()
                        await until(lambda i=index: started[i] == 2)
                        await _reload_nginx(tmp_path, front, addrs)
                    before = len(answered)
                    await until(lambda: len(answered) >= before + 8)
                    stop.set()
                done.set()
    finally:
        for sock in socks:
            sock.close()
    assert sorted(set(answered)) == [0, 1, 2, 3] and len(answered) >= 16
