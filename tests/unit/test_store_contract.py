"""One contract, three backends: memory, SQLite (real files) and Redis (a real redis-server; and,
marked `cluster`, a real 3+3 Redis Cluster and a Sentinel-managed primary: tests/redis_server.py).

`open_backend()` opens a store on the test's backend; for SQLite and Redis a second call opens a
second, independent client on the SAME data (another file handle / another connection pool), so
"several workers" paths are exercised; for memory it returns the same instance (one process).
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from quartproxy.core.limits import Rate, gcra
from quartproxy.store import HistoryEntry, MemoryStore, SessionRecord, Store
from quartproxy.store.redis import RedisStore
from quartproxy.store.sqlite import SqliteStore
from tests.redis_server import (  # noqa: F401 (fixtures)
    redis_server,
)

OpenBackend = Callable[[], contextlib.AbstractAsyncContextManager[Store]]
NOW = 1_700_000_000.0


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        "redis",
        pytest.param("redis-cluster", marks=pytest.mark.cluster),
        pytest.param("redis-sentinel", marks=pytest.mark.cluster),
    ]
)
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> OpenBackend:
    if request.param == "memory":
        shared = MemoryStore()

        @contextlib.asynccontextmanager
        async def memory() -> AsyncIterator[Store]:
            yield shared

        return memory
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        @contextlib.asynccontextmanager
        async def sqlite() -> AsyncIterator[Store]:
            async with SqliteStore(path, poll_interval=0.02) as s:
                yield s

        return sqlite
    fixture = {"redis": "redis_server", "redis-cluster": "redis_cluster"}.get(
        request.param, "redis_sentinel"
    )
    url: str = request.getfixturevalue(fixture).url
    prefix = f"t{uuid.uuid4().hex[:12]}:"  # each test its own key space on the shared server

    @contextlib.asynccontextmanager
    async def redis() -> AsyncIterator[Store]:
        async with RedisStore(url, prefix=prefix, block_seconds=30) as s:
            yield s

    return redis


@pytest.fixture
async def store(open_backend: OpenBackend) -> AsyncIterator[Store]:
    async with open_backend() as s:
        yield s


def session(sid: str, *, created: float = NOW, ttl: float = 3600) -> SessionRecord:
    return SessionRecord(sid, "https://a.example", "fp-hash", created, created + ttl, {"k": [1]})


def entry(mid: str, role: str, text: str, at: float) -> HistoryEntry:
    return HistoryEntry(mid, role, text, at)


# -- rate limits -------------------------------------------------------------------------------
async def test_exactly_n_of_m_concurrent_hits_pass(store: Store) -> None:
    rate = Rate(5, 60)
    allowed: list[bool] = []

    async def one() -> None:
        allowed.append((await store.hit("ip:1.2.3.4", rate, NOW)).allowed)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(one)
    assert allowed.count(True) == 5
    assert len(allowed) == 50


async def test_limit_is_shared_between_two_clients_of_one_backend(
    open_backend: OpenBackend,
) -> None:
    rate = Rate(7, 3600)
    allowed: list[bool] = []
    async with open_backend() as a, open_backend() as b:

        async def one(s: Store) -> None:
            allowed.append((await s.hit("shared", rate, NOW)).allowed)

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(one, a if i % 2 else b)
    assert allowed.count(True) == 7


async def test_retry_after_and_remaining(store: Store) -> None:
    rate = Rate(5, 60)  # one request every 12 s, burst of 5
    remaining = [(await store.hit("k", rate, NOW)).remaining for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    denied = await store.hit("k", rate, NOW + 1)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(11.0)
    assert not (await store.hit("k", rate, NOW + 11.9)).allowed
    assert (await store.hit("k", rate, NOW + 12)).allowed
    assert (await store.hit("other", rate, NOW + 1)).allowed  # keys are independent


async def test_hits_agree_with_the_pure_gcra_step(store: Store) -> None:
    rng = random.Random(5)
    rate = Rate(3, 10)
    tat: float | None = None
    now = NOW
    for _ in range(200):
        now += rng.choice([0.0, 0.001, 0.5, 1.7, 3.3333333, 4.0, 11.0])
        expected, new_tat = gcra(tat, now, rate)
        if new_tat is not None:
            tat = new_tat
        got = await store.hit("model", rate, now)
        assert got == expected


async def test_incr_counts_until_expiry(store: Store) -> None:
    assert [await store.incr("c", 10, NOW + i) for i in range(3)] == [1, 2, 3]
    assert await store.incr("d", 10, NOW) == 1
    assert await store.incr("c", 10, NOW + 9.9) == 4
    assert await store.incr("c", 10, NOW + 10) == 1  # window started at NOW with the first hit
    assert await store.incr("c", 10, NOW + 11) == 2


async def test_hit_many_stops_at_the_first_refusal_and_charges_nothing_after_it(
    store: Store,
) -> None:
    ip, sess, origin = ("ip", Rate(2, 60)), ("session", Rate(1, 60)), ("origin", Rate(10, 60))
    first = await store.hit_many([ip, sess, origin], NOW)
    assert [(d.allowed, d.remaining) for d in first] == [(True, 1), (True, 0), (True, 9)]

    # the session tier refuses: the ip tier before it was charged, the origin tier was not
    second = await store.hit_many([ip, sess, origin], NOW + 1)
    assert [d.allowed for d in second] == [True, False]
    assert second[-1].retry_after == pytest.approx(59.0)
    third = await store.hit_many([ip, sess, origin], NOW + 2)
    assert [d.allowed for d in third] == [False]  # the ip tier's 2 are spent: it refuses first
    assert third[0].retry_after == pytest.approx(28.0)  # 2/60: one back every 30 s
    assert (await store.hit("origin", origin[1], NOW + 3)).remaining == 8  # 2nd charge only

    assert await store.hit_many([], NOW) == []


async def test_hit_many_agrees_with_the_pure_gcra_steps_in_order(store: Store) -> None:
    rng = random.Random(11)
    rates = {"a": Rate(3, 10), "b": Rate(2, 7), "c": Rate(5, 30)}
    tats: dict[str, float | None] = dict.fromkeys(rates)
    now = NOW
    for _ in range(150):
        now += rng.choice([0.0, 0.001, 0.5, 1.7, 3.3333333, 4.0, 11.0])
        keys = rng.sample(sorted(rates), rng.randint(1, 3))
        expected = []
        for key in keys:  # the model: one gcra step per key, in order, up to a refusal
            decision, new_tat = gcra(tats[key], now, rates[key])
            expected.append(decision)
            if new_tat is None:
                break
            tats[key] = new_tat
        assert await store.hit_many([(k, rates[k]) for k in keys], now) == expected


async def test_hit_many_from_two_clients_lets_exactly_n_through_all_tiers(
    open_backend: OpenBackend,
) -> None:
    tiers = [("ip", Rate(5, 3600)), ("site", Rate(1000, 3600))]
    passed: list[bool] = []
    async with open_backend() as a, open_backend() as b:

        async def one(s: Store) -> None:
            decisions = await s.hit_many(tiers, NOW)
            passed.append(len(decisions) == 2 and decisions[-1].allowed)

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(one, a if i % 2 else b)
        # the 35 refused by the ip tier never reached the site tier
        assert (await a.hit("site", tiers[1][1], NOW)).remaining == 1000 - 5 - 1
    assert passed.count(True) == 5


async def test_incr_many_counts_each_key_like_incr(store: Store) -> None:
    assert await store.incr_many([("a", 10), ("b", 5)], NOW) == [1, 1]
    assert await store.incr_many([("a", 10), ("b", 5)], NOW + 1) == [2, 2]
    assert await store.incr_many([("b", 5), ("a", 10)], NOW + 5) == [1, 3]  # b's window ended
    assert await store.incr("a", 10, NOW + 6) == 4
    assert await store.incr_many([("c", 10), ("c", 10)], NOW) == [1, 2]  # in order
    assert await store.incr_many([], NOW) == []
    assert await store.incr_many([("a", 10)], NOW + 10) == [1]


# -- sessions ----------------------------------------------------------------------------------
async def test_sessions_roundtrip_and_expire(store: Store) -> None:
    rec = session("s1")
    await store.put_session(rec)
    assert await store.get_session("s1", NOW + 1) == rec
    assert await store.get_session("s1", NOW + 3600) is None
    assert await store.get_session("unknown", NOW) is None


async def test_delete_session_erases_history_buffers_and_busy_flag(store: Store) -> None:
    await store.put_session(session("s1"))
    await store.put_session(session("s2"))
    for sid in ("s1", "s2"):
        await store.append_history(sid, [entry(f"m-{sid}", "user", "hi", NOW)])
        await store.buffer_append(f"m-{sid}", sid, [(0, {"event": "start"})], 300, NOW)
        assert await store.acquire_turn(sid, f"m-{sid}", 60, NOW)

    await store.delete_session("s1")

    assert await store.get_session("s1", NOW) is None
    assert await store.buffer_read("m-s1", -1, NOW) is None
    assert await store.acquire_turn("s1", "m-new", 60, NOW)
    if store.keeps_history:
        assert await store.history("s1") == []
    # the other session is untouched
    assert await store.get_session("s2", NOW) is not None
    slice_ = await store.buffer_read("m-s2", -1, NOW)
    assert slice_ is not None and slice_.events == [(0, {"event": "start"})]
    assert not await store.acquire_turn("s2", "m-other", 60, NOW)
    assert [e.text for e in await store.history("s2")] == ["hi"]


async def test_late_writes_for_a_deleted_session_are_dropped(open_backend: OpenBackend) -> None:
    # An answer still running on another worker must not write the erased session back.
    async with open_backend() as deleter, open_backend() as other_worker:
        await other_worker.buffer_append("m", "s1", [(0, {"event": "start"})], 300, NOW)
        await other_worker.append_history("s1", [entry("m", "user", "secret", NOW)])
        await deleter.delete_session("s1")
        await other_worker.buffer_append("m", "s1", [(1, {"event": "delta"})], 300, NOW)
        await other_worker.buffer_append(
            "m2", "s1", [(0, {"event": "start"}), (1, {"event": "delta"})], 300, NOW
        )
        await other_worker.append_history("s1", [entry("m", "assistant", "answer", NOW)])
        for s in (deleter, other_worker):
            assert await s.buffer_read("m", -1, NOW) is None
            assert await s.buffer_read("m2", -1, NOW) is None
            assert await s.history("s1") == []
        # other sessions are unaffected
        await other_worker.append_history("s2", [entry("m3", "user", "fine", NOW)])
        assert [e.text for e in await deleter.history("s2")] == ["fine"]


# -- one answer in flight per session ------------------------------------------------------------
async def test_acquire_and_release_turn(store: Store) -> None:
    assert await store.acquire_turn("s", "m1", 30, NOW)
    assert not await store.acquire_turn("s", "m2", 30, NOW + 1)
    await store.release_turn("s", "m2")  # not the holder: nothing changes
    assert not await store.acquire_turn("s", "m2", 30, NOW + 2)
    await store.release_turn("s", "m1")
    assert await store.acquire_turn("s", "m2", 30, NOW + 3)
    # a crashed holder's flag expires
    assert await store.acquire_turn("s", "m3", 30, NOW + 33)
    assert await store.acquire_turn("other", "m9", 30, NOW)


async def test_concurrent_acquire_has_one_winner(open_backend: OpenBackend) -> None:
    wins: list[str] = []
    async with open_backend() as a, open_backend() as b:

        async def one(s: Store, mid: str) -> None:
            if await s.acquire_turn("s", mid, 30, NOW):
                wins.append(mid)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, a if i % 2 else b, f"m{i}")
    assert len(wins) == 1


# -- a turn's first and last write (begin_turn, finish_turn) -----------------------------------
START = {"type": "start", "message_id": "m", "session_id": "s"}
END = {"type": "end", "message_id": "m", "text": "ab"}
ERROR = {"type": "error", "code": "shutting_down", "message": "restart"}


def delta(text: str) -> dict[str, Any]:
    return {"type": "delta", "text": text}


async def _begin(s: Store, sid: str, mid: str, at: float = NOW, text: str = "hi") -> bool:
    start = {**START, "message_id": mid, "session_id": sid}
    return await s.begin_turn(
        sid,
        mid,
        [(0, start)],
        [entry(mid, "user", text, at)],
        busy_ttl=30,
        buffer_ttl=300,
        now=at,
    )


async def _finish(
    s: Store, sid: str, mid: str, events: list[tuple[int, dict[str, Any]]], text: str | None
) -> list[tuple[int, dict[str, Any]]] | None:
    history = [] if text is None else [entry(mid, "assistant", text, NOW + 1)]
    return await s.finish_turn(sid, mid, events, history, buffer_ttl=300, now=NOW + 1)


async def _events(s: Store, mid: str) -> list[tuple[int, dict[str, Any]]] | None:
    part = await s.buffer_read(mid, -1, NOW + 1)
    return None if part is None else part.events


async def test_begin_turn_takes_the_flag_and_writes_start_and_question(store: Store) -> None:
    assert await _begin(store, "s", "m")
    assert await _events(store, "m") == [(0, START)]
    assert [(e.role, e.text) for e in await store.history("s")] == [("user", "hi")]
    assert not await store.acquire_turn("s", "other", 30, NOW + 1)  # the flag is m's


async def test_begin_turn_refused_writes_nothing(store: Store) -> None:
    assert await _begin(store, "s", "m1", text="first")
    assert not await _begin(store, "s", "m2", at=NOW + 1, text="second")
    assert await _events(store, "m2") is None
    assert [e.text for e in await store.history("s")] == ["first"]
    await store.release_turn("s", "m2")  # the refused message never held the flag
    assert not await store.acquire_turn("s", "m3", 30, NOW + 2)
    # the flag expires (a crashed holder), then begin_turn succeeds
    assert await _begin(store, "s", "m4", at=NOW + 31)


async def test_concurrent_begin_turn_has_one_winner_and_only_its_writes(
    open_backend: OpenBackend,
) -> None:
    wins: list[str] = []
    async with open_backend() as a, open_backend() as b:

        async def one(s: Store, mid: str) -> None:
            if await _begin(s, "s", mid, text=mid):
                wins.append(mid)

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(one, a if i % 2 else b, f"m{i}")
        assert len(wins) == 1
        for i in range(12):
            assert (await _events(a, f"m{i}") is not None) == (f"m{i}" in wins)
        assert [e.text for e in await b.history("s")] == wins


async def test_finish_turn_writes_the_end_and_answer_and_releases_the_flag(store: Store) -> None:
    assert await _begin(store, "s", "m")
    await store.buffer_append("m", "s", [(1, delta("a")), (2, delta("b"))], 300, NOW)
    assert await _finish(store, "s", "m", [(3, END)], "ab") is None
    assert await _events(store, "m") == [(0, START), (1, delta("a")), (2, delta("b")), (3, END)]
    assert [(e.role, e.text) for e in await store.history("s")] == [
        ("user", "hi"),
        ("assistant", "ab"),
    ]
    assert await store.acquire_turn("s", "next", 30, NOW + 2)


async def test_finish_turn_releases_only_its_own_flag(store: Store) -> None:
    assert await _begin(store, "s", "m1")
    # an answer whose flag expired and was taken by another one
    assert await _finish(store, "s", "m0", [(1, ERROR)], None) is None
    assert not await store.acquire_turn("s", "x", 30, NOW + 2)
    assert await _finish(store, "s", "m1", [(1, delta("a")), (2, END)], "a") is None
    assert await _events(store, "m1") == [
        (0, {**START, "message_id": "m1"}),
        (1, delta("a")),
        (2, END),
    ]
    assert await store.acquire_turn("s", "x", 30, NOW + 2)


async def test_finish_turn_without_events_only_releases(store: Store) -> None:
    assert await _begin(store, "s", "m")
    assert await _finish(store, "s", "m", [], "nothing to end") is None
    assert await _events(store, "m") == [(0, START)]
    assert [e.text for e in await store.history("s")] == ["hi"]
    assert await store.acquire_turn("s", "next", 30, NOW + 2)


async def test_turn_writes_for_an_erased_session_are_dropped(open_backend: OpenBackend) -> None:
    async with open_backend() as deleter, open_backend() as worker:
        assert await _begin(worker, "s", "m")
        await deleter.delete_session("s")
        assert await _finish(worker, "s", "m", [(1, END)], "late answer") is None
        assert await _begin(worker, "s", "m2")  # the flag, but no writes
        assert await _finish(worker, "s", "m2", [(1, END)], "late answer") is None
        for s in (deleter, worker):
            assert await _events(s, "m") is None
            assert await _events(s, "m2") is None
            assert await s.history("s") == []
        assert await worker.acquire_turn("s", "m3", 30, NOW + 2)  # m2's finish released it


async def test_finish_turn_after_a_lost_write_appends_after_it_and_returns_it(
    store: Store,
) -> None:
    # The deltas at 1-2 were stored but their caller never learnt it (a reply lost, a cancelled
    # Redis call), so it asks for its final event at seq 1.
    assert await _begin(store, "s", "m")
    await store.buffer_append("m", "s", [(1, delta("a")), (2, delta("b"))], 300, NOW)
    got = await _finish(store, "s", "m", [(1, delta("c")), (2, ERROR)], None)
    expected = [(1, delta("a")), (2, delta("b")), (3, delta("c")), (4, ERROR)]
    assert got == expected
    assert await _events(store, "m") == [(0, START), *expected]
    assert await store.acquire_turn("s", "next", 30, NOW + 2)


async def test_finish_turn_after_a_lost_final_write_keeps_that_end(store: Store) -> None:
    # The End (and answer) were stored, the reply was lost; the caller then records an error
    # at the same seq: the buffer keeps its one final event, and the caller learns it.
    assert await _begin(store, "s", "m")
    await store.buffer_append("m", "s", [(1, delta("a"))], 300, NOW)
    assert await _finish(store, "s", "m", [(2, END)], "a") is None
    got = await _finish(store, "s", "m", [(2, ERROR)], "never written")
    assert got == [(2, END)]
    assert await _events(store, "m") == [(0, START), (1, delta("a")), (2, END)]
    assert [e.text for e in await store.history("s")] == ["hi", "a"]
    assert await store.acquire_turn("s", "next", 30, NOW + 2)


async def test_finish_turn_wakes_waiting_readers(open_backend: OpenBackend) -> None:
    async with open_backend() as writer, open_backend() as other:
        assert await _begin(writer, "s", "m")
        woke: list[str] = []

        async def wait(name: str, s: Store) -> None:
            await s.buffer_wait("m", 0)
            woke.append(name)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait, "same", writer)
                nursery.start_soon(wait, "other", other)
                await trio.testing.wait_all_tasks_blocked()
                assert woke == []
                assert await _finish(writer, "s", "m", [(1, END)], "") is None
        assert sorted(woke) == ["other", "same"]


# -- history -----------------------------------------------------------------------------------
async def test_history_keeps_what_was_attached(store: Store) -> None:
    """Names, types and sizes of a message's files (attachments), never their bytes."""
    files = (("cat.png", "image/png", 1234), ("ré sumé.pdf", "application/pdf", 0))
    await store.append_history(
        "s",
        [HistoryEntry("m1", "user", "look", NOW, files=files), entry("m1", "assistant", "ok", NOW)],
    )
    got = await store.history("s")
    if store.keeps_history:
        assert [e.files for e in got] == [files, ()]


async def test_history_order_limit_and_purge(store: Store) -> None:
    await store.append_history(
        "s", [entry("m1", "user", "one", NOW), entry("m1", "assistant", "two", NOW + 1)]
    )
    await store.append_history("s", [entry("m2", "user", "three", NOW + 100)])
    await store.append_history("t", [entry("m3", "user", "other", NOW + 2)])
    await store.append_history("s", [])
    assert [e.text for e in await store.history("s")] == ["one", "two", "three"]
    assert [e.text for e in await store.history("s", limit=2)] == ["two", "three"]
    assert await store.history("s", limit=0) == []
    assert await store.history("nobody") == []
    got = (await store.history("s"))[1]
    assert got == entry("m1", "assistant", "two", NOW + 1)

    assert await store.purge_history(NOW + 50) == 3
    assert [e.text for e in await store.history("s")] == ["three"]
    assert await store.history("t") == []
    assert await store.purge_history(NOW + 50) == 0
    await store.append_history("t", [entry("m4", "user", "new", NOW + 200)])
    assert await store.purge_history(NOW + 150) == 1
    assert [e.text for e in await store.history("t")] == ["new"]


# -- answer buffers ----------------------------------------------------------------------------
async def test_buffer_append_read_after_and_expiry(store: Store) -> None:
    events: list[dict[str, Any]] = [
        {"event": "start", "data": {"message_id": "m"}},
        {"event": "delta", "data": {"text": "Hél"}},
        {"event": "end", "data": {"text": "Hél"}},
    ]
    for seq, ev in enumerate(events):
        await store.buffer_append("m", "s", [(seq, ev)], 300, NOW + seq)
    full = await store.buffer_read("m", -1, NOW + 3)
    assert full is not None
    assert full.session_id == "s"
    assert full.events == list(enumerate(events))
    after = await store.buffer_read("m", 0, NOW + 3)
    assert after is not None and [s for s, _ in after.events] == [1, 2]
    done = await store.buffer_read("m", 2, NOW + 3)
    assert done is not None and done.events == []  # known, nothing new
    assert await store.buffer_read("unknown", -1, NOW) is None
    # expires `ttl` after the last event
    assert await store.buffer_read("m", -1, NOW + 2 + 299) is not None
    assert await store.buffer_read("m", -1, NOW + 2 + 300) is None


async def test_buffer_append_is_idempotent(store: Store) -> None:
    await store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    await store.buffer_append("m", "s", [(1, {"n": 1})], 300, NOW)
    await store.buffer_append("m", "s", [(1, {"n": "again"})], 300, NOW)
    await store.buffer_append("m", "s", [(0, {"n": "again"})], 300, NOW)
    slice_ = await store.buffer_read("m", -1, NOW)
    assert slice_ is not None and slice_.events == [(0, {"n": 0}), (1, {"n": 1})]


async def test_buffer_append_writes_a_batch_and_skips_its_replayed_events(
    open_backend: OpenBackend,
) -> None:
    async with open_backend() as writer, open_backend() as reader:
        await writer.buffer_append("m", "s", [(0, {"n": 0}), (1, {"n": 1})], 300, NOW)
        await writer.buffer_append(
            "m", "s", [(1, {"n": "again"}), (2, {"n": 2}), (3, {"n": 3})], 300, NOW
        )
        for s in (writer, reader):
            slice_ = await s.buffer_read("m", -1, NOW)
            assert slice_ is not None and slice_.session_id == "s"
            assert slice_.events == [(i, {"n": i}) for i in range(4)]
        # within a batch too, each event must come after the last one stored
        await writer.buffer_append(
            "m", "s", [(5, {"n": 5}), (4, {"n": 4}), (6, {"n": 6})], 300, NOW
        )
        slice_ = await reader.buffer_read("m", 3, NOW)
        assert slice_ is not None and slice_.events == [(5, {"n": 5}), (6, {"n": 6})]


async def test_buffer_append_batch_of_replays_or_nothing_changes_nothing(store: Store) -> None:
    await store.buffer_append("m", "s", [(0, {"n": 0}), (1, {"n": 1})], 300, NOW)
    await store.buffer_append("m", "s", [(0, {"n": "x"}), (1, {"n": "y"})], 300, NOW + 100)
    await store.buffer_append("m", "s", [], 300, NOW + 100)
    await store.buffer_append("empty", "s", [], 300, NOW)
    assert await store.buffer_read("empty", -1, NOW) is None
    slice_ = await store.buffer_read("m", -1, NOW + 299)
    assert slice_ is not None and slice_.events == [(0, {"n": 0}), (1, {"n": 1})]
    # only a batch that adds an event moves the expiry
    assert await store.buffer_read("m", -1, NOW + 300) is None
    await store.buffer_append("m2", "s", [(0, {"n": 0})], 300, NOW)
    await store.buffer_append("m2", "s", [(0, {"n": 0}), (1, {"n": 1})], 300, NOW + 100)
    assert await store.buffer_read("m2", -1, NOW + 399) is not None
    assert await store.buffer_read("m2", -1, NOW + 400) is None


async def test_buffer_append_takes_a_long_batch(store: Store) -> None:
    events = [(i, {"event": "delta", "data": {"text": f"t{i} é"}}) for i in range(2000)]
    await store.buffer_append("m", "s", events, 300, NOW)
    slice_ = await store.buffer_read("m", -1, NOW)
    assert slice_ is not None and slice_.events == events


async def _wakes_on_append(waiter_store: Store, writer_store: Store) -> None:
    await writer_store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    woke = trio.Event()

    async def waiter() -> None:
        await waiter_store.buffer_wait("m", 0)
        woke.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert not woke.is_set()  # nothing after seq 0 yet: it must be waiting
            await writer_store.buffer_append("m", "s", [(1, {"n": 1}), (2, {"n": 2})], 300, NOW)
            await woke.wait()
    slice_ = await waiter_store.buffer_read("m", 0, NOW)
    assert slice_ is not None and slice_.events == [(1, {"n": 1}), (2, {"n": 2})]


async def test_buffer_wait_wakes_on_append_in_the_same_process(store: Store) -> None:
    await _wakes_on_append(store, store)


async def test_buffer_wait_wakes_on_append_by_another_client(open_backend: OpenBackend) -> None:
    async with open_backend() as reader, open_backend() as writer:
        await _wakes_on_append(reader, writer)


async def test_buffer_wait_returns_at_once_when_events_exist(open_backend: OpenBackend) -> None:
    async with open_backend() as reader, open_backend() as writer:
        await writer.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
        await writer.buffer_append("m", "s", [(1, {"n": 1})], 300, NOW)
        with trio.fail_after(20):
            await reader.buffer_wait("m", 0)
            await reader.buffer_wait("m", -1)
            await writer.buffer_wait("m", 0)


async def test_buffer_wait_wakes_every_waiter_then_waits_again(store: Store) -> None:
    """One append wakes all waiters; a wait after that waits for the next append (the wake-up
    Event is made per wait, not per append)."""
    await store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    woke: list[int] = []

    async def waiter(after: int) -> None:
        await store.buffer_wait("m", after)
        woke.append(after)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, 0)
            nursery.start_soon(waiter, 0)
            await trio.testing.wait_all_tasks_blocked()
            assert woke == []
            await store.buffer_append("m", "s", [(1, {"n": 1})], 300, NOW)
        assert woke == [0, 0]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, 1)
            await trio.testing.wait_all_tasks_blocked()
            assert woke == [0, 0]  # seq 1 is known: this one waits for seq 2
            await store.buffer_append("m", "s", [(2, {"n": 2})], 300, NOW)
        assert woke == [0, 0, 1]


async def test_buffer_wait_is_woken_by_session_deletion(store: Store) -> None:
    await store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.buffer_wait, "m", 0)
            await trio.testing.wait_all_tasks_blocked()
            await store.delete_session("s")
    assert await store.buffer_read("m", -1, NOW) is None


async def test_buffer_wait_is_cancellable(store: Store) -> None:
    await store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    with trio.move_on_after(0.05) as scope:
        await store.buffer_wait("m", 0)
    assert scope.cancelled_caught
    # the store still works after a cancelled wait
    await store.buffer_append("m", "s", [(1, {"n": 1})], 300, NOW)
    slice_ = await store.buffer_read("m", 0, NOW)
    assert slice_ is not None and slice_.events == [(1, {"n": 1})]


async def test_ping(store: Store) -> None:
    await store.ping()


# -- API keys' last use -------------------------------------------------------------------------


async def test_api_key_uses_keep_the_latest_use_of_each_key(open_backend: OpenBackend) -> None:
    async with open_backend() as a, open_backend() as b:
        assert await a.api_key_uses(["app1", "app2"]) == {}
        await a.note_api_key_use("app1", NOW + 10)
        await b.note_api_key_use("app1", NOW + 5)  # a worker noting an older use
        await b.note_api_key_use("app2", NOW)
        for s in (a, b):
            assert await s.api_key_uses(["app1", "app2", "app3"]) == {
                "app1": NOW + 10,
                "app2": NOW,
            }
            assert await s.api_key_uses(["app2"]) == {"app2": NOW}
            assert await s.api_key_uses([]) == {}
        await a.note_api_key_use("app1", NOW + 20)
        await a.forget_api_key("app2")
        assert await b.api_key_uses(["app1", "app2"]) == {"app1": NOW + 20}
