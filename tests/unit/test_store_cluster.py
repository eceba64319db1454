"""What only a Redis Cluster / Sentinel set promises: one slot per session, exact limits from
several clients, and a turn that survives its primary's failover (tests/redis_server.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from quartproxy.core.limits import Rate
from quartproxy.store import HistoryEntry, SessionRecord
from quartproxy.store.redis import RedisStore
from tests.redis_server import RedisCluster, RedisSentinelSet, cli, poll

pytestmark = pytest.mark.cluster
NOW = 1_700_000_000.0
TTL = 300.0


def _prefix() -> str:
    return f"c{uuid.uuid4().hex[:10]}:"


def _record(seq: int, text: str) -> dict[str, Any]:
    return {"type": "delta", "text": text}


async def _begin(s: RedisStore, sid: str, mid: str, owner: str = "") -> bool:
    return await s.begin_turn(
        sid,
        mid,
        [(0, {"type": "start", "messageId": mid})],
        [HistoryEntry(f"{mid}-q", "user", "question", NOW)],
        busy_ttl=30,
        buffer_ttl=TTL,
        now=NOW,
        owner=owner,
    )


async def _finish(s: RedisStore, sid: str, mid: str, seq: int, owner: str = "") -> None:
    await s.finish_turn(
        sid,
        mid,
        [(seq, {"type": "end", "messageId": mid, "text": "abc"})],
        [HistoryEntry(mid, "assistant", "abc", NOW + 1)],
        buffer_ttl=TTL,
        now=NOW + 1,
        owner=owner,
    )


async def test_every_key_of_a_session_shares_one_slot(redis_cluster: RedisCluster) -> None:
    prefix = _prefix()
    sid, mid = "sess-slot-1", "msg-slot-1"
    async with RedisStore(redis_cluster.url, prefix=prefix) as s:
        await s.put_session(SessionRecord(sid, "https://a.example", "fp", NOW, NOW + 3600))
        assert await _begin(s, sid, mid, owner="w1")
        await s.buffer_append(mid, sid, [(1, _record(1, "a"))], TTL, NOW)
        await s.append_history(sid, [HistoryEntry("x", "user", "more", NOW)])
        await s.delete_session("other-session")  # an erased marker elsewhere
    keys: list[str] = []
    for node in redis_cluster.live():
        keys += cli(node.port, "KEYS", f"{prefix}*").split()
    mine = [k for k in keys if sid in k or mid in k]
    kinds = {k.split("}:", 1)[1] for k in mine}
    assert {"sess", "busy", "hist", "sbuf", f"buf:{mid}", f"bufm:{mid}", "sid"} <= kinds
    port = redis_cluster.nodes[0].port
    slots = {k: int(cli(port, "CLUSTER", "KEYSLOT", k)) for k in mine if not k.endswith("}:sid")}
    assert len(set(slots.values())) == 1, slots
    # the message -> session pointer is the one key of the answer found by message id alone
    assert any(k.endswith(f"{{m:{mid}}}:sid") for k in mine)


async def test_a_50_way_burst_from_two_clients_is_exact_on_every_tier(
    redis_cluster: RedisCluster,
) -> None:
    # ip, session and origin tiers of one request: one script on the {rl} slot, so exact
    prefix = _prefix()
    tiers = [
        ("ip:203.0.113.7", Rate(7, 3600)),
        ("session:s1", Rate(1000, 3600)),
        ("origin:https://a.example", Rate(1000, 3600)),
    ]
    results: list[bool] = []
    async with (
        RedisStore(redis_cluster.url, prefix=prefix) as a,
        RedisStore(redis_cluster.url, prefix=prefix) as b,
    ):

        async def one(s: RedisStore) -> None:
            decisions = await s.hit_many(tiers, NOW)
            results.append(len(decisions) == 3 and decisions[-1].allowed)

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, a if i % 2 else b)
        assert results.count(True) == 7
        # a request refused by the ip tier charged none of the tiers after it
        assert (await a.hit("session:s1", tiers[1][1], NOW)).remaining == 1000 - 7 - 1
        assert (await b.hit("origin:https://a.example", tiers[2][1], NOW)).remaining == 992


async def _turn_across_failover(url: str, fail: Any, sid: str) -> None:
    """A turn whose first writes are acknowledged, then `fail()` (the primary goes), then the
    rest of the turn: every write lands, a new client reads the whole answer."""
    mid = f"m-{sid}"
    prefix = _prefix()
    async with RedisStore(url, prefix=prefix, failover_wait=20) as s:
        assert await _begin(s, sid, mid, owner="w1")
        await s.buffer_append(mid, sid, [(1, _record(1, "a")), (2, _record(2, "b"))], TTL, NOW)
        await fail()
        # the turn goes on: these calls wait out the promotion (retried), then land
        await s.buffer_append(mid, sid, [(3, _record(3, "c"))], TTL, NOW)
        await s.renew_worker("w1", [(sid, mid)], 30, NOW)
        await _finish(s, sid, mid, 4, owner="w1")
        await s.ping()
    async with RedisStore(url, prefix=prefix) as other:  # another instance, after the failover
        part = await other.buffer_read(mid, -1, NOW + 2)
        assert part is not None and part.session_id == sid
        assert [seq for seq, _ in part.events] == [0, 1, 2, 3, 4]
        assert part.events[-1][1]["type"] == "end"
        assert [e.text for e in await other.history(sid)] == ["question", "abc"]
        assert await other.acquire_turn(sid, "next", 30, NOW + 2)  # released by the finish
        assert await other.lapsed_turns(NOW + 1000) == []  # no longer w1's


async def test_a_turn_survives_its_primary_killed_and_the_replica_promoted(
    redis_cluster: RedisCluster,
) -> None:
    sid = f"fo-{uuid.uuid4().hex[:8]}"
    primary = redis_cluster.primary_of(f"x{{s:{sid}}}")
    replica = redis_cluster.replica_of(primary)

    async def kill_primary() -> None:
        # acknowledged writes have reached the replica (async replication: the window of the
        # last milliseconds before a crash is Redis' own; see docs/topologies.md)
        poll(lambda: _replicated(primary.port), "the replica to catch up")
        assert primary.proc is not None
        primary.proc.kill()
        primary.proc.wait()
        primary.proc = None

    try:
        await _turn_across_failover(redis_cluster.url, kill_primary, sid)
        assert cli(replica.port, "ROLE").split("\n")[0] == "master"  # promoted
    finally:
        if primary.proc is None:  # back as a replica, for the tests after this one
            primary.start()
            poll(redis_cluster.healthy, "the cluster to heal")


async def test_a_turn_survives_a_sentinel_failover(redis_sentinel: RedisSentinelSet) -> None:
    before = redis_sentinel.primary_port()

    async def failover() -> None:
        poll(lambda: _replicated(before), "the replica to catch up")
        cli(redis_sentinel.sentinels[0].port, "SENTINEL", "FAILOVER", redis_sentinel.service)
        poll(lambda: redis_sentinel.primary_port() != before, "Sentinel to name a new primary")
        # Until Sentinel has turned the old primary into a replica it still takes writes,
        # which its resync then drops: Redis' own window (docs/topologies.md), not tested here.
        poll(lambda: cli(before, "ROLE").startswith("slave"), "the old primary to be demoted")

    await _turn_across_failover(redis_sentinel.url, failover, f"sf-{uuid.uuid4().hex[:8]}")
    assert redis_sentinel.primary_port() != before


def _replicated(port: int) -> bool:
    info = dict(
        line.split(":", 1) for line in cli(port, "INFO", "replication").splitlines() if ":" in line
    )
    offset = info["master_repl_offset"]
    return "slave0" in info and f"offset={offset}," in info["slave0"]
