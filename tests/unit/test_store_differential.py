"""The three backends decide alike: one random sequence of store operations (sessions, a turn's
begin / appends / finish with lost-reply and orphan cases, history, rate limits, counters,
worker leases) runs against memory, SQLite (a real file) and Redis (a real redis-server), and
every observable result must be the same. The buffer rules are core.turn_buffer's in memory
and SQLite and Lua in Redis: this is what keeps the Lua honest.

Times are the logical `now` passed to every call. Redis also expires keys on its own clock, so
the clock here moves by at most MAX_ADVANCE in a sequence, below every TTL that Redis keeps
on its own clock (buffers, counters, erased sessions): within that, the results must agree.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from quartproxy.core.limits import Rate
from quartproxy.store import HistoryEntry, MemoryStore, SessionRecord, Store
from quartproxy.store.redis import RedisStore
from quartproxy.store.sqlite import SqliteStore
from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.0
LONG = 3600.0  # buffers and counters: never expire within a sequence (see the docstring)
MAX_ADVANCE = 900.0
SESSIONS = ["s0", "s1"]
TURNS = [("s0", "m0"), ("s0", "m1"), ("s1", "m2")]  # (session, message)
M0 = TURNS[0]
WORKERS = ["w0", "w1"]
RATES = [Rate(2, 10), Rate(3, 60)]

Op = tuple[Any, ...]


def _record(kind: str, i: int, mid: str) -> dict[str, Any]:
    if kind == "delta":
        return {"type": "delta", "text": f"t{i}"}
    if kind == "end":
        return {"type": "end", "message_id": mid, "text": f"answer {i}"}
    return {"type": "error", "code": "upstream_error", "message": f"failed {i}"}


turn = st.sampled_from(TURNS)


def owner_of(mid: str, drawn: str) -> str:
    """A turn is begun (and retried, and finished) by the one worker that made its message id
    (ids are uuid4s of that worker): "" stays "no owner", any drawn worker becomes that one."""
    return WORKERS[sum(map(ord, mid)) % len(WORKERS)] if drawn else ""


seq = st.integers(0, 3)
# A turn's writes: a finish whose first seq the buffer already holds is a lost reply's replay,
# one after a final event an orphan's end; appends of any kind interleave with them.
turn_ops = st.one_of(
    st.tuples(st.just("release"), turn),
    st.tuples(
        st.just("begin"), turn, st.sampled_from([10.0, 100.0]), st.sampled_from(["", *WORKERS])
    ),
    st.tuples(
        st.just("append"),
        turn,
        seq,
        st.lists(st.sampled_from(["delta", "end", "error"]), min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("finish"),
        turn,
        seq,
        st.integers(0, 2),  # deltas before the final event
        st.sampled_from(["end", "error"]),
        st.sampled_from(["", *WORKERS]),
        st.booleans(),  # with a history entry
    ),
    st.tuples(st.just("read"), turn, st.integers(-1, 7)),
)
other_ops = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([0.0, 1.0, 5.0, 30.0, 120.0])),
    st.tuples(st.just("put_session"), st.sampled_from(SESSIONS), st.sampled_from([20.0, LONG])),
    st.tuples(st.just("get_session"), st.sampled_from(SESSIONS)),
    st.tuples(st.just("delete_session"), st.sampled_from(SESSIONS)),
    st.tuples(st.just("acquire"), turn, st.sampled_from([10.0, 100.0])),
    st.tuples(st.just("history"), st.sampled_from(SESSIONS), st.sampled_from([1, 3, 200])),
    st.tuples(
        st.just("hit_many"),
        st.lists(st.tuples(st.sampled_from(["k0", "k1"]), st.integers(0, 1)), max_size=3),
    ),
    st.tuples(
        st.just("incr_many"), st.lists(st.sampled_from(["c0", "c1"]), min_size=1, max_size=2)
    ),
    st.tuples(
        st.just("renew"),
        st.sampled_from(WORKERS),
        st.lists(turn, max_size=2, unique=True),
        st.sampled_from([10.0, 100.0]),
    ),
    st.tuples(st.just("lapsed")),
)
ops = st.one_of(turn_ops, turn_ops, other_ops)


async def run(store: Store, sequence: list[Op]) -> list[Any]:
    """Each operation's observable result, in order (timestamps are the test's own)."""
    now = NOW
    out: list[Any] = []
    for op in sequence:
        kind = op[0]
        result: Any = None
        if kind == "advance":
            now += op[1]
        elif kind == "put_session":
            sid, ttl = op[1], op[2]
            await store.put_session(SessionRecord(sid, "https://a.example", "f", now, now + ttl))
        elif kind == "get_session":
            result = await store.get_session(op[1], now)
        elif kind == "delete_session":
            await store.delete_session(op[1])
        elif kind == "acquire":
            (sid, mid), ttl = op[1], op[2]
            result = await store.acquire_turn(sid, mid, ttl, now)
        elif kind == "release":
            sid, mid = op[1]
            await store.release_turn(sid, mid)
        elif kind == "begin":
            (sid, mid), ttl = op[1], op[2]
            owner = owner_of(mid, op[3])
            start = {"type": "start", "message_id": mid, "session_id": sid}
            question = [HistoryEntry(mid, "user", f"q {mid}", now)]
            result = await store.begin_turn(
                sid, mid, [(0, start)], question,
                busy_ttl=ttl, buffer_ttl=LONG, now=now, owner=owner,
            )  # fmt: skip
        elif kind == "append":
            (sid, mid), first, kinds = op[1], op[2], op[3]
            events = [(first + i, _record(k, first + i, mid)) for i, k in enumerate(kinds)]
            await store.buffer_append(mid, sid, events, LONG, now)
        elif kind == "finish":
            (sid, mid), first, deltas, final, owner, with_history = op[1:]
            owner = owner_of(mid, owner)
            kinds = ["delta"] * deltas + [final]
            events = [(first + i, _record(k, first + i, mid)) for i, k in enumerate(kinds)]
            answer = [HistoryEntry(mid, "assistant", f"a {mid}", now)] if with_history else []
            result = await store.finish_turn(
                sid, mid, events, answer, buffer_ttl=LONG, now=now, owner=owner
            )
        elif kind == "read":
            (_, mid), after = op[1], op[2]
            result = await store.buffer_read(mid, after, now)
        elif kind == "history":
            result = await store.history(op[1], op[2])
        elif kind == "hit_many":
            decisions = await store.hit_many([(k, RATES[r]) for k, r in op[1]], now)
            result = [(d.allowed, d.remaining, round(d.retry_after, 3)) for d in decisions]
        elif kind == "incr_many":
            result = await store.incr_many([(k, LONG) for k in op[1]], now)
        elif kind == "renew":
            result = sorted(await store.renew_worker(op[1], op[2], op[3], now))
        elif kind == "lapsed":
            result = sorted(await store.lapsed_turns(now), key=repr)
        out.append((op, result))
    return out


def test_memory_sqlite_and_redis_agree_on_every_sequence(
    redis_server: RedisServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("differential")

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(ops, min_size=10, max_size=40))
    # The buffer rules' edges, always tried: nothing after a final event; an orphan's end kept
    # (and the late answer's history dropped); a replayed finish up to the first final event.
    @example([("append", M0, 0, ["delta", "end"]), ("append", M0, 2, ["delta"]), ("read", M0, -1)])
    @example(
        [
            ("append", M0, 0, ["end"]),
            ("finish", M0, 3, 0, "end", "", True),
            ("read", M0, -1),
            ("history", "s0", 200),
        ]
    )
    @example([("append", M0, 0, ["end", "delta"]), ("finish", M0, 0, 1, "end", "", True)])
    @example(
        [
            ("begin", M0, 10.0, "w0"),
            ("append", M0, 1, ["delta", "delta"]),
            ("finish", M0, 1, 1, "end", "w0", True),  # a lost reply: renumbered after seq 2
            ("read", M0, -1),
            ("lapsed",),
            ("history", "s0", 200),
        ]
    )
    def check(sequence: list[Op]) -> None:
        async def all_three() -> dict[str, list[Any]]:
            bounded = _bounded(sequence)
            results = {"memory": await run(MemoryStore(), bounded)}
            async with SqliteStore(workdir / f"{uuid.uuid4().hex}.db") as sqlite:
                results["sqlite"] = await run(sqlite, bounded)
            prefix = f"d{uuid.uuid4().hex[:12]}:"
            async with RedisStore(redis_server.url, prefix=prefix, block_seconds=30) as redis:
                results["redis"] = await run(redis, bounded)
            return results

        results = trio.run(all_three)
        for name in ("sqlite", "redis"):
            for i, (want, got) in enumerate(zip(results["memory"], results[name], strict=True)):
                assert got == want, f"step {i}: {name} differs from memory"

    check()


def _bounded(sequence: list[Op]) -> list[Op]:
    """The sequence with its clock moves capped at MAX_ADVANCE in total."""
    total = 0.0
    out: list[Op] = []
    for op in sequence:
        if op[0] == "advance":
            step = min(op[1], MAX_ADVANCE - total)
            total += step
            op = ("advance", step)
        out.append(op)
    return out
