"""One contract, three backends: memory, SQLite (real files) and Redis (a real redis-server).

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
from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)

OpenBackend = Callable[[], contextlib.AbstractAsyncContextManager[Store]]
NOW = 1_700_000_000.0


@pytest.fixture(params=["memory", "sqlite", "redis"])
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
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"t{uuid.uuid4().hex[:12]}:"  # each test its own key space on the shared server

    @contextlib.asynccontextmanager
    async def redis() -> AsyncIterator[Store]:
        async with RedisStore(server.url, prefix=prefix, block_seconds=30) as s:
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
        await store.buffer_append(f"m-{sid}", sid, 0, {"event": "start"}, 300, NOW)
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
        await other_worker.buffer_append("m", "s1", 0, {"event": "start"}, 300, NOW)
        await other_worker.append_history("s1", [entry("m", "user", "secret", NOW)])
        await deleter.delete_session("s1")
        await other_worker.buffer_append("m", "s1", 1, {"event": "delta"}, 300, NOW)
        await other_worker.buffer_append("m2", "s1", 0, {"event": "start"}, 300, NOW)
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


# -- history -----------------------------------------------------------------------------------
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
        await store.buffer_append("m", "s", seq, ev, 300, NOW + seq)
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
    await store.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
    await store.buffer_append("m", "s", 1, {"n": 1}, 300, NOW)
    await store.buffer_append("m", "s", 1, {"n": "again"}, 300, NOW)
    await store.buffer_append("m", "s", 0, {"n": "again"}, 300, NOW)
    slice_ = await store.buffer_read("m", -1, NOW)
    assert slice_ is not None and slice_.events == [(0, {"n": 0}), (1, {"n": 1})]


async def _wakes_on_append(waiter_store: Store, writer_store: Store) -> None:
    await writer_store.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
    woke = trio.Event()

    async def waiter() -> None:
        await waiter_store.buffer_wait("m", 0)
        woke.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert not woke.is_set()  # nothing after seq 0 yet: it must be waiting
            await writer_store.buffer_append("m", "s", 1, {"n": 1}, 300, NOW)
            await woke.wait()
    slice_ = await waiter_store.buffer_read("m", 0, NOW)
    assert slice_ is not None and slice_.events == [(1, {"n": 1})]


async def test_buffer_wait_wakes_on_append_in_the_same_process(store: Store) -> None:
    await _wakes_on_append(store, store)


async def test_buffer_wait_wakes_on_append_by_another_client(open_backend: OpenBackend) -> None:
    async with open_backend() as reader, open_backend() as writer:
        await _wakes_on_append(reader, writer)


async def test_buffer_wait_returns_at_once_when_events_exist(open_backend: OpenBackend) -> None:
    async with open_backend() as reader, open_backend() as writer:
        await writer.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
        await writer.buffer_append("m", "s", 1, {"n": 1}, 300, NOW)
        with trio.fail_after(20):
            await reader.buffer_wait("m", 0)
            await reader.buffer_wait("m", -1)
            await writer.buffer_wait("m", 0)


async def test_buffer_wait_wakes_every_waiter_then_waits_again(store: Store) -> None:
    """One append wakes all waiters; a wait after that waits for the next append (the wake-up
    Event is made per wait, not per append)."""
    await store.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
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
            await store.buffer_append("m", "s", 1, {"n": 1}, 300, NOW)
        assert woke == [0, 0]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, 1)
            await trio.testing.wait_all_tasks_blocked()
            assert woke == [0, 0]  # seq 1 is known: this one waits for seq 2
            await store.buffer_append("m", "s", 2, {"n": 2}, 300, NOW)
        assert woke == [0, 0, 1]


async def test_buffer_wait_is_woken_by_session_deletion(store: Store) -> None:
    await store.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.buffer_wait, "m", 0)
            await trio.testing.wait_all_tasks_blocked()
            await store.delete_session("s")
    assert await store.buffer_read("m", -1, NOW) is None


async def test_buffer_wait_is_cancellable(store: Store) -> None:
    await store.buffer_append("m", "s", 0, {"n": 0}, 300, NOW)
    with trio.move_on_after(0.05) as scope:
        await store.buffer_wait("m", 0)
    assert scope.cancelled_caught
    # the store still works after a cancelled wait
    await store.buffer_append("m", "s", 1, {"n": 1}, 300, NOW)
    slice_ = await store.buffer_read("m", 0, NOW)
    assert slice_ is not None and slice_.events == [(1, {"n": 1})]


async def test_ping(store: Store) -> None:
    await store.ping()
