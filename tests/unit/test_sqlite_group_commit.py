"""Group commit of buffer appends in the SQLite store (store/group.py): appends of several
answers that queue while the store's worker is busy go in one transaction; every caller of a
group gets the group's outcome (a failed transaction fails all of them, atomically); the order
of arrival is the order of writing; a cancelled caller's append happened exactly when its call
returned. Transactions are counted with SQLite's own trace hook (the COMMITs the connection ran),
not with the store's counter and not with time.

The store's worker is held by the test (its CapacityLimiter: what another store call does while
it runs) so that appends queue deterministically; `wait_all_tasks_blocked` tells when they have.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from quartproxy import metrics
from quartproxy.core.events import Delta
from quartproxy.store import MemoryStore, StoreUnavailable
from quartproxy.store.sqlite import SqliteStore
from quartproxy.turns import SHUTTING_DOWN
from tests.unit.test_turn_runner import (
    Hooks,
    Upstream,
    assert_buffer_is_what_was_published,
    running,
)
from tests.unit.test_turn_runner import request as turn_request

NOW = 1_700_000_000.0
TTL = 300.0


def delta(seq: int, text: str = "x") -> tuple[int, dict[str, Any]]:
    return seq, {"type": "delta", "text": text}


class Commits:
    """The write transactions the store's connection committed (BEGIN IMMEDIATE ... COMMIT),
    from SQLite's trace callback (reads run in transactions of their own)."""

    def __init__(self, store: SqliteStore) -> None:
        assert store._conn is not None
        self.count = 0
        self._writing = False
        store._conn.set_trace_callback(self._trace)

    def _trace(self, statement: str) -> None:
        statement = statement.strip().upper()
        if statement.startswith("BEGIN"):
            self._writing = statement == "BEGIN IMMEDIATE"
        elif statement == "COMMIT" and self._writing:
            self.count += 1
            self._writing = False


@contextlib.asynccontextmanager
async def opened(path: Path, **kw: Any) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(path, **kw) as store:
        yield store


BOUND = 20.0  # seconds: a lost wake-up fails the test instead of hanging it


@contextlib.asynccontextmanager
async def nursery_bounded() -> AsyncIterator[trio.Nursery]:
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            yield nursery


@contextlib.asynccontextmanager
async def worker_held(store: SqliteStore) -> AsyncIterator[None]:
    """Hold the store's only worker (as a running store call does) until the block ends, and
    before that let every task started in the block reach its wait."""
    await store._limiter.acquire()
    try:
        yield
        await trio.testing.wait_all_tasks_blocked()
    finally:
        store._limiter.release()


@contextlib.contextmanager
def write_locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer: holds the database's write lock until released."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.rollback()
        other.close()


def scraped(name: str) -> float:
    """The value /metrics shows for a metric without labels."""
    for line in metrics.render().decode().splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def seqs(store: SqliteStore, message_id: str) -> list[int]:
    got = await store.buffer_read(message_id, 0, NOW)
    return [] if got is None else [seq for seq, _ in got.events]


async def test_concurrent_appends_of_many_answers_share_one_transaction(tmp_path: Path) -> None:
    commits_before = scraped("quartproxy_store_buffer_commits_total")
    appends_before = scraped("quartproxy_store_buffer_appends_total")
    async with opened(tmp_path / "s.db") as store:
        commits = Commits(store)
        async with nursery_bounded() as nursery, worker_held(store):
            for i in range(50):
                nursery.start_soon(store.buffer_append, f"m{i}", f"s{i}", [delta(1)], TTL, NOW)
        assert commits.count == 1  # one commit for 50 answers' deltas (was 50)
        assert (store._group.groups, store._group.writes) == (1, 50)
        # what an operator sees: one commit, 50 appends
        assert scraped("quartproxy_store_buffer_commits_total") - commits_before == 1
        assert scraped("quartproxy_store_buffer_appends_total") - appends_before == 50
        for i in range(50):
            assert await seqs(store, f"m{i}") == [1]
        # idle again: a lone append is its own group and commits at once
        await store.buffer_append("m0", "s0", [delta(2)], TTL, NOW)
        assert commits.count == 2 and await seqs(store, "m0") == [1, 2]


async def test_a_lone_append_arms_no_timer(tmp_path: Path) -> None:
    """No collection window: while a lone append is on its way to disk, the only deadline
    armed is this test's own bound."""
    async with opened(tmp_path / "s.db") as store:
        with trio.fail_after(BOUND) as bound:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.buffer_append, "m", "s", [delta(1)], TTL, NOW)
                await trio.testing.wait_all_tasks_blocked()
                next_in = trio.lowlevel.current_statistics().seconds_to_next_deadline
                assert trio.current_time() + next_in == pytest.approx(bound.deadline, abs=1e-3)
        assert await seqs(store, "m") == [1]


async def test_appends_that_queue_during_a_commit_form_the_next_group(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as store:
        commits = Commits(store)
        async with nursery_bounded() as nursery:
            async with worker_held(store):
                nursery.start_soon(store.buffer_append, "a", "s", [delta(1)], TTL, NOW)
            # the group of "a" is being written (or done): these queue behind it
            async with worker_held(store):
                for i in range(20):
                    nursery.start_soon(store.buffer_append, f"b{i}", "s", [delta(1)], TTL, NOW)
        assert commits.count == 2 and store._group.writes == 21


async def test_a_failed_transaction_fails_every_caller_of_its_group(tmp_path: Path) -> None:
    """Locked by another process past the busy timeout: every caller of the group gets
    StoreUnavailable (the contract's store_unavailable), not only the one that wrote it."""
    path = tmp_path / "s.db"
    async with opened(path, busy_timeout=0.2) as store:
        commits = Commits(store)
        outcomes: dict[str, str] = {}

        async def append(message_id: str) -> None:
            try:
                await store.buffer_append(message_id, "s", [delta(1)], TTL, NOW)
                outcomes[message_id] = "stored"
            except StoreUnavailable as exc:
                outcomes[message_id] = "unavailable" if "locked" in str(exc) else str(exc)

        with write_locked(path):
            async with nursery_bounded() as nursery, worker_held(store):
                for i in range(30):
                    nursery.start_soon(append, f"m{i}")
        assert outcomes == {f"m{i}": "unavailable" for i in range(30)}
        assert store._group.groups == 1 and commits.count == 0
        # the lock is gone: the store works again, and nothing of the failed group was kept
        await append("m0")
        assert outcomes["m0"] == "stored" and await seqs(store, "m0") == [1]
        assert [await seqs(store, f"m{i}") for i in range(1, 30)] == [[]] * 29


async def test_a_failure_inside_the_group_rolls_back_all_of_it(tmp_path: Path) -> None:
    """A real SQLite error at one append in the middle of a group (a trigger raising, as a full
    disk would on any page): the appends before it in the same transaction are rolled back and
    every caller is told; no caller is told 'stored' for a write that was not."""
    async with opened(tmp_path / "s.db") as store:
        assert store._conn is not None
        store._conn.execute(
            "CREATE TEMP TRIGGER poison BEFORE INSERT ON buffer_events "
            "WHEN NEW.message_id = 'm5' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        failed: list[str] = []

        async def append(message_id: str) -> None:
            try:
                await store.buffer_append(message_id, "s", [delta(1)], TTL, NOW)
            except StoreUnavailable:
                failed.append(message_id)

        async with nursery_bounded() as nursery, worker_held(store):
            for i in range(10):
                nursery.start_soon(append, f"m{i}")
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert sorted(failed) == sorted(f"m{i}" for i in range(10))
        assert [await seqs(store, f"m{i}") for i in range(10)] == [[]] * 10


async def test_arrival_order_is_write_order_per_answer(tmp_path: Path) -> None:
    """Batches of three answers, queued in a shuffled order (replays and gaps included), end up
    exactly as the same calls made one after the other on the memory store."""
    rng = random.Random(20)
    calls = [(f"m{m}", [delta(s, f"{m}.{s}")]) for m in range(3) for s in range(1, 11)]
    rng.shuffle(calls)
    calls += [("m0", [delta(3), delta(11)]), ("m1", [delta(12, "a"), delta(13, "b")])]
    memory = MemoryStore()
    for message_id, events in calls:
        await memory.buffer_append(message_id, "s", events, TTL, NOW)
    async with opened(tmp_path / "s.db") as store:
        async with nursery_bounded() as nursery, worker_held(store):
            for message_id, events in calls:
                nursery.start_soon(store.buffer_append, message_id, "s", events, TTL, NOW)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert store._group.groups == 1
        for m in range(3):
            want = await memory.buffer_read(f"m{m}", 0, NOW)
            got = await store.buffer_read(f"m{m}", 0, NOW)
            assert want is not None and got is not None and got.events == want.events


class Caller:
    """One append in its own cancel scope: whether its call returned or raised Cancelled."""

    def __init__(self, store: SqliteStore, message_id: str) -> None:
        self.store, self.message_id = store, message_id
        self.scope = trio.CancelScope()
        self.returned = False

    async def run(self) -> None:
        with self.scope:
            await self.store.buffer_append(self.message_id, "s", [delta(1)], TTL, NOW)
            self.returned = True  # no checkpoint between the return and here


@pytest.mark.parametrize("which", ["leader", "waiter"])
async def test_a_caller_cancelled_while_queued_is_withdrawn(tmp_path: Path, which: str) -> None:
    """Cancelled before its group was taken: its append never happens (not in this group, not
    later: it cannot land after its turn's finish), the others are written once each."""
    async with opened(tmp_path / "s.db") as store:
        commits = Commits(store)
        callers = [Caller(store, f"m{i}") for i in range(4)]
        cancelled = callers[0] if which == "leader" else callers[2]
        async with nursery_bounded() as nursery, worker_held(store):
            for caller in callers:  # callers[0] leads: it waits for the worker
                nursery.start_soon(caller.run)
                await trio.testing.wait_all_tasks_blocked()
            cancelled.scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
        assert cancelled.scope.cancelled_caught and not cancelled.returned
        assert [c.returned for c in callers if c is not cancelled] == [True] * 3
        assert commits.count == 1 and store._group.writes == 3
        # its turn ends; later groups never carry the withdrawn append
        await store.finish_turn(
            "s",
            cancelled.message_id,
            [(1, {"type": "end", "text": ""})],
            [],
            buffer_ttl=TTL,
            now=NOW,
        )
        await store.buffer_append("later", "s", [delta(1)], TTL, NOW)
        got = await store.buffer_read(cancelled.message_id, 0, NOW)
        assert got is not None and [r["type"] for _, r in got.events] == ["end"]
        for caller in callers:
            if caller is not cancelled:
                assert await seqs(store, caller.message_id) == [1]


async def test_a_caller_cancelled_while_its_group_commits_gets_the_outcome(
    tmp_path: Path,
) -> None:
    """Cancelled after its group was taken (the transaction is waiting for another process's
    lock): it waits for the commit, its call returns (so the runner publishes what is stored),
    and the cancellation reaches it at its next checkpoint."""
    path = tmp_path / "s.db"
    async with opened(path) as store:
        callers = [Caller(store, f"m{i}") for i in range(3)]
        with write_locked(path) as other:
            async with nursery_bounded() as nursery:
                async with worker_held(store):
                    for caller in callers:
                        nursery.start_soon(caller.run)
                # the leader holds the worker, its thread waits for the lock: group taken
                await trio.testing.wait_all_tasks_blocked()
                callers[1].scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert not callers[1].returned  # still waiting for its group
                other.rollback()  # the other process lets go
        assert [c.returned for c in callers] == [True, True, True]
        assert store._group.groups == 1
        for caller in callers:
            assert await seqs(store, caller.message_id) == [1]


@pytest.mark.parametrize("seed", range(12))
async def test_a_group_writes_what_the_calls_one_by_one_would(tmp_path: Path, seed: int) -> None:
    """Random groups (replays, gaps, final events followed by more appends, an erased session,
    answers buffered before the group) against the memory store, the same calls one by one."""
    rng = random.Random(seed)
    answers = [(f"m{i}", f"s{i % 3}") for i in range(5)]  # s2 is erased before the group
    before = [(m, s, [delta(1)]) for m, s in answers[:3]]
    before.append(("m1", "s1", [(2, {"type": "end", "text": "1"})]))  # m1 ended before
    calls = []
    for _ in range(rng.randint(1, 40)):
        message_id, session_id = rng.choice(answers)
        events = []
        for _ in range(rng.randint(1, 3)):
            seq = rng.randint(1, 12)
            kind = rng.choice(["delta", "delta", "delta", "end", "error"])
            events.append((seq, {"type": kind, "text": f"{seq}"}))
        calls.append((message_id, session_id, events))
    memory = MemoryStore()
    async with opened(tmp_path / "s.db") as store:
        for backend in (memory, store):
            for message_id, session_id, events in before:
                await backend.buffer_append(message_id, session_id, events, TTL, NOW)
            await backend.delete_session("s2")
        for message_id, session_id, events in calls:
            await memory.buffer_append(message_id, session_id, events, TTL, NOW)
        async with nursery_bounded() as nursery, worker_held(store):
            for message_id, session_id, events in calls:
                nursery.start_soon(store.buffer_append, message_id, session_id, events, TTL, NOW)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert store._group.groups == len(before) + 1
        for message_id, _ in answers:
            want = await memory.buffer_read(message_id, 0, NOW)
            got = await store.buffer_read(message_id, 0, NOW)
            assert (got and got.events) == (want and want.events), message_id


# -- the turn runner over a group: what it publishes is what the buffer holds ------------------
@pytest.mark.parametrize("when", ["queued", "committing"])
async def test_a_turn_cancelled_while_its_append_waits_publishes_what_is_stored(
    tmp_path: Path, when: str
) -> None:
    """Shutdown (cancel_all) while the second read's append waits: still queued, it is
    withdrawn and never published; already in a committing group, it is stored, published,
    and the turn ends after it. Either way live listeners and the buffer agree and end with
    shutting_down."""
    path = tmp_path / "s.db"
    async with opened(path) as sqlite:
        store = Hooks(sqlite)
        upstream = Upstream([[Delta("a")], [Delta("b")], [Delta("never")]], pause_after=1)
        async with running(store, upstream) as runner:
            turn = await runner.start(turn_request())
            await upstream.paused.wait()  # the first read is stored and published
            with write_locked(path) as other:
                if when == "queued":
                    await sqlite._limiter.acquire()  # the worker is busy: the append queues
                upstream.go_on.set()
                await trio.testing.wait_all_tasks_blocked()
                runner.cancel_all()
                await trio.testing.wait_all_tasks_blocked()
                if when == "queued":
                    sqlite._limiter.release()
            other.close()
        published = [e for e in turn.events if isinstance(e, Delta)]
        assert published == ([Delta("a")] if when == "queued" else [Delta("a"), Delta("b")])
        assert turn.events[-1] == SHUTTING_DOWN
        await assert_buffer_is_what_was_published(store, turn)


@pytest.mark.parametrize("seed", range(4))
async def test_random_cancellations_never_lose_or_invent_a_write(tmp_path: Path, seed: int) -> None:
    """300 appends (one answer each) from tasks started one after the other, a third of them
    cancelled at random moments while the worker is now and then held (as other store calls
    hold it): every call that returned is stored, every call that raised Cancelled is not, and
    every task ends (bounded)."""
    rng = random.Random(seed)
    async with opened(tmp_path / "s.db") as store:
        callers = [Caller(store, f"m{i}") for i in range(300)]
        doomed = set(rng.sample(range(300), 100))
        pending: list[Caller] = []
        async with nursery_bounded() as nursery:
            for i, caller in enumerate(callers):
                nursery.start_soon(caller.run)
                if i in doomed:
                    pending.append(caller)
                held = rng.random() < 0.1
                if held:
                    await store._limiter.acquire()
                for _ in range(rng.randint(0, 3)):
                    await trio.lowlevel.checkpoint()
                if pending and rng.random() < 0.4:
                    pending.pop(rng.randrange(len(pending))).scope.cancel()
                if held:
                    store._limiter.release()
            for caller in pending:
                caller.scope.cancel()
        stored = {c.message_id for c in callers if await seqs(store, c.message_id) == [1]}
        assert stored == {c.message_id for c in callers if c.returned}
        assert all(c.returned != c.scope.cancelled_caught for c in callers)
        assert store._group.writes == len(stored)  # withdrawn writes were never carried
        assert 1 < store._group.groups < len(stored)  # grouped, and more than one group
        withdrawn = sum(c.scope.cancelled_caught for c in callers)
        assert withdrawn > 10  # the cancellations did hit queued writes
