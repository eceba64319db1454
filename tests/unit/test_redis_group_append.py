"""Grouped buffer appends in the Redis store (store/redis/buffers.py over store/group.py):
on one Redis (and behind Sentinel) the appends of several answers that queue while a round trip
is in flight go in the next one, as one `buf_append_many` script. Round trips are counted by the
server itself (INFO commandstats after CONFIG RESETSTAT), not with the store's counter and not
with time. A real redis-server of its own per test (tests/redis_server.py): the failure tests
stop or pause it.

Appends queue deterministically while the test holds the group's limiter (what a round trip in
flight does); `wait_all_tasks_blocked` tells when they have. A round trip is held in flight by
Redis itself: CLIENT PAUSE WRITE holds every script until CLIENT UNPAUSE.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from quartproxy.core.events import Delta
from quartproxy.store import MemoryStore, StoreUnavailable
from quartproxy.store.redis import RedisStore
from quartproxy.turns import SHUTTING_DOWN
from tests.redis_server import RedisServer, cli
from tests.unit.test_turn_runner import (
    Hooks,
    Upstream,
    assert_buffer_is_what_was_published,
    running,
)
from tests.unit.test_turn_runner import request as turn_request

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.0
TTL = 300.0
BOUND = 20.0  # seconds: a lost wake-up fails the test instead of hanging it


def delta(seq: int, text: str = "x") -> tuple[int, dict[str, Any]]:
    return seq, {"type": "delta", "text": text}


@pytest.fixture
def server(tmp_path: Path) -> Any:
    srv = RedisServer(tmp_path / "redis")
    srv.start()
    yield srv
    srv.stop()


@contextlib.asynccontextmanager
async def opened(server: RedisServer, **kw: Any) -> AsyncIterator[RedisStore]:
    async with RedisStore(server.url, prefix=f"t{uuid.uuid4().hex[:8]}:", **kw) as store:
        # connections made and both scripts cached: what is counted next is the appends alone
        await store.buffer_append("warm", "warm", [delta(1)], TTL, NOW)
        await store.buffer_read("warm", 0, NOW)
        yield store


def reset_counts(server: RedisServer) -> None:
    cli(server.port, "CONFIG", "RESETSTAT")


def round_trips(server: RedisServer) -> dict[str, int]:
    """Scripts the server was sent since reset_counts, by command (the commands a script runs
    are counted by Redis too, under their own names: they are not round trips)."""
    out: dict[str, int] = {}
    for line in cli(server.port, "INFO", "commandstats").splitlines():
        name, _, fields = line.removeprefix("cmdstat_").partition(":")
        if name in ("eval", "evalsha"):
            out[name] = int(dict(f.split("=") for f in fields.split(","))["calls"])
    return out


@contextlib.asynccontextmanager
async def nursery_bounded() -> AsyncIterator[trio.Nursery]:
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            yield nursery


@contextlib.asynccontextmanager
async def in_flight(store: RedisStore) -> AsyncIterator[None]:
    """Hold the group's round trip slot (as a round trip in flight does) until the block ends,
    and before that let every task started in the block reach its wait."""
    await store._group_limiter.acquire()
    try:
        yield
        await trio.testing.wait_all_tasks_blocked()
    finally:
        store._group_limiter.release()


@contextlib.contextmanager
def writes_paused(server: RedisServer) -> Any:
    """Redis holds every script (a write) until the block ends: a round trip stays in flight."""
    cli(server.port, "CLIENT", "PAUSE", "60000", "WRITE")
    try:
        yield
    finally:
        cli(server.port, "CLIENT", "UNPAUSE")


async def seqs(store: RedisStore, message_id: str) -> list[int]:
    got = await store.buffer_read(message_id, 0, NOW)
    return [] if got is None else [seq for seq, _ in got.events]


async def test_concurrent_appends_of_many_answers_share_one_round_trip(
    server: RedisServer,
) -> None:
    async with opened(server) as store:
        reset_counts(server)
        async with nursery_bounded() as nursery, in_flight(store):
            for i in range(50):
                nursery.start_soon(store.buffer_append, f"m{i}", f"s{i}", [delta(1)], TTL, NOW)
        assert round_trips(server) == {"evalsha": 1}  # one for 50 answers' deltas (was 50)
        assert (store._group.groups, store._group.writes) == (2, 51)  # the warm-up, then 50
        for i in range(50):
            assert await seqs(store, f"m{i}") == [1]
        # the pointers were written in the same script: a reader that knows only the message
        # id (another worker) finds the buffer
        async with RedisStore(server.url, prefix=store.prefix) as other:
            got = await other.buffer_read("m7", 0, NOW)
            assert got is not None and got.session_id == "s7"
        # idle again: a lone append is its own round trip and goes at once
        reset_counts(server)
        await store.buffer_append("m0", "s0", [delta(2)], TTL, NOW)
        assert round_trips(server) == {"evalsha": 1} and await seqs(store, "m0") == [1, 2]


async def test_a_lone_append_arms_no_timer(server: RedisServer) -> None:
    """No collection window: while a lone append is on its way, the only deadline armed is this
    test's own bound (Redis holds the script, so the append is in flight for sure)."""
    async with opened(server, stream_timeout=None) as store:
        with trio.fail_after(BOUND) as bound:
            async with trio.open_nursery() as nursery:
                with writes_paused(server):
                    nursery.start_soon(store.buffer_append, "m", "s", [delta(1)], TTL, NOW)
                    await trio.testing.wait_all_tasks_blocked()
                    next_in = trio.lowlevel.current_statistics().seconds_to_next_deadline
                    assert trio.current_time() + next_in == pytest.approx(bound.deadline, abs=1e-3)
                    assert store._group.groups == 2  # taken: it is in flight, not waiting
        assert await seqs(store, "m") == [1]


async def test_a_failed_round_trip_fails_every_caller_of_its_group(server: RedisServer) -> None:
    """Redis stopped while a group waits: every caller of the group gets StoreUnavailable (the
    contract's store_unavailable), not only the one that sent it; the store works again once
    Redis is back."""
    async with opened(server, connect_timeout=1.0) as store:
        outcomes: dict[str, str] = {}

        async def append(message_id: str) -> None:
            try:
                await store.buffer_append(message_id, "s", [delta(1)], TTL, NOW)
                outcomes[message_id] = "stored"
            except StoreUnavailable:
                outcomes[message_id] = "unavailable"

        groups = store._group.groups
        async with nursery_bounded() as nursery, in_flight(store):
            for i in range(30):
                nursery.start_soon(append, f"m{i}")
            await trio.testing.wait_all_tasks_blocked()
            server.stop()
        assert outcomes == {f"m{i}": "unavailable" for i in range(30)}
        assert store._group.groups == groups + 1
        server.start()
        await append("m0")
        assert outcomes["m0"] == "stored" and await seqs(store, "m0") == [1]


async def test_an_error_in_one_append_is_that_callers_alone(server: RedisServer) -> None:
    """One answer's key is of the wrong type (WRONGTYPE inside the script): its caller gets
    StoreUnavailable; the other appends of the same round trip are stored and their callers
    told so."""
    async with opened(server) as store:
        cli(server.port, "SET", store.keys.bufm("s", "m5"), "not a hash")
        failed: list[str] = []

        async def append(message_id: str) -> None:
            try:
                await store.buffer_append(message_id, "s", [delta(1)], TTL, NOW)
            except StoreUnavailable as exc:
                assert "WRONGTYPE" in str(exc)
                failed.append(message_id)

        reset_counts(server)
        async with nursery_bounded() as nursery, in_flight(store):
            for i in range(10):
                nursery.start_soon(append, f"m{i}")
        assert failed == ["m5"] and round_trips(server) == {"evalsha": 1}
        for i in range(10):
            if i != 5:
                assert await seqs(store, f"m{i}") == [1]


async def test_arrival_order_is_write_order_per_answer(server: RedisServer) -> None:
    """Batches of three answers, queued in a shuffled order (replays and gaps included), end up
    exactly as the same calls made one after the other on the memory store."""
    rng = random.Random(20)
    calls = [(f"m{m}", [delta(s, f"{m}.{s}")]) for m in range(3) for s in range(1, 11)]
    rng.shuffle(calls)
    calls += [("m0", [delta(3), delta(11)]), ("m1", [delta(12, "a"), delta(13, "b")])]
    memory = MemoryStore()
    for message_id, events in calls:
        await memory.buffer_append(message_id, "s", events, TTL, NOW)
    async with opened(server) as store:
        reset_counts(server)
        async with nursery_bounded() as nursery, in_flight(store):
            for message_id, events in calls:
                nursery.start_soon(store.buffer_append, message_id, "s", events, TTL, NOW)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert round_trips(server) == {"evalsha": 1}
        for m in range(3):
            want = await memory.buffer_read(f"m{m}", 0, NOW)
            got = await store.buffer_read(f"m{m}", 0, NOW)
            assert want is not None and got is not None and got.events == want.events


@pytest.mark.parametrize("seed", range(8))
async def test_a_group_writes_what_the_calls_one_by_one_would(
    server: RedisServer, seed: int
) -> None:
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
    async with opened(server) as store:
        for backend in (memory, store):
            for message_id, session_id, events in before:
                await backend.buffer_append(message_id, session_id, events, TTL, NOW)
            await backend.delete_session("s2")
        for message_id, session_id, events in calls:
            await memory.buffer_append(message_id, session_id, events, TTL, NOW)
        groups = store._group.groups
        async with nursery_bounded() as nursery, in_flight(store):
            for message_id, session_id, events in calls:
                nursery.start_soon(store.buffer_append, message_id, session_id, events, TTL, NOW)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert store._group.groups == groups + 1
        for message_id, _ in answers:
            want = await memory.buffer_read(message_id, 0, NOW)
            got = await store.buffer_read(message_id, 0, NOW)
            assert (got and got.events) == (want and want.events), message_id


class Caller:
    """One append in its own cancel scope: whether its call returned or raised Cancelled."""

    def __init__(self, store: RedisStore, message_id: str) -> None:
        self.store, self.message_id = store, message_id
        self.scope = trio.CancelScope()
        self.returned = False

    async def run(self) -> None:
        with self.scope:
            await self.store.buffer_append(self.message_id, "s", [delta(1)], TTL, NOW)
            self.returned = True  # no checkpoint between the return and here


@pytest.mark.parametrize("which", ["leader", "waiter"])
async def test_a_caller_cancelled_while_queued_is_withdrawn(
    server: RedisServer, which: str
) -> None:
    """Cancelled before its group was taken: its append never happens (not in this group, not
    later: it cannot land after its turn's finish), the others are written, in one round trip."""
    async with opened(server) as store:
        callers = [Caller(store, f"m{i}") for i in range(4)]
        cancelled = callers[0] if which == "leader" else callers[2]
        reset_counts(server)
        async with nursery_bounded() as nursery, in_flight(store):
            for caller in callers:  # callers[0] leads: it waits for the slot
                nursery.start_soon(caller.run)
                await trio.testing.wait_all_tasks_blocked()
            cancelled.scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
        assert cancelled.scope.cancelled_caught and not cancelled.returned
        assert [c.returned for c in callers if c is not cancelled] == [True] * 3
        assert round_trips(server) == {"evalsha": 1}
        await store.buffer_append("later", "s", [delta(1)], TTL, NOW)
        assert await seqs(store, cancelled.message_id) == []
        for caller in callers:
            if caller is not cancelled:
                assert await seqs(store, caller.message_id) == [1]


async def test_a_caller_cancelled_while_its_round_trip_is_in_flight_gets_the_outcome(
    server: RedisServer,
) -> None:
    """Cancelled after its group was taken (Redis holds the script): it waits for the reply, its
    call returns (so the runner publishes what is stored), and the cancellation reaches it at its
    next checkpoint."""
    async with opened(server) as store:
        callers = [Caller(store, f"m{i}") for i in range(3)]
        async with nursery_bounded() as nursery:
            with writes_paused(server):
                async with in_flight(store):
                    for caller in callers:
                        nursery.start_soon(caller.run)
                await trio.testing.wait_all_tasks_blocked()  # the group is sent, Redis holds it
                callers[1].scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert not callers[1].returned  # still waiting for its round trip
        assert [c.returned for c in callers] == [True, True, True]
        for caller in callers:
            assert await seqs(store, caller.message_id) == [1]


# -- the turn runner over a group: what it publishes is what the buffer holds ------------------
@pytest.mark.parametrize("when", ["queued", "in_flight"])
async def test_a_turn_cancelled_while_its_append_waits_publishes_what_is_stored(
    server: RedisServer, when: str
) -> None:
    """Shutdown (cancel_all) while the second read's append waits: still queued, it is
    withdrawn and never published; already in flight, it is stored, published, and the turn
    ends after it. Either way live listeners and the buffer agree and end with shutting_down."""
    async with opened(server) as redis:
        store = Hooks(redis)
        upstream = Upstream([[Delta("a")], [Delta("b")], [Delta("never")]], pause_after=1)
        async with running(store, upstream) as runner:
            turn = await runner.start(turn_request())
            await upstream.paused.wait()  # the first read is stored and published
            with writes_paused(server):
                if when == "queued":
                    await redis._group_limiter.acquire()  # a round trip in flight: it queues
                upstream.go_on.set()
                await trio.testing.wait_all_tasks_blocked()
                runner.cancel_all()
                await trio.testing.wait_all_tasks_blocked()
                if when == "queued":
                    redis._group_limiter.release()
        published = [e for e in turn.events if isinstance(e, Delta)]
        assert published == ([Delta("a")] if when == "queued" else [Delta("a"), Delta("b")])
        assert turn.events[-1] == SHUTTING_DOWN
        await assert_buffer_is_what_was_published(store, turn)


@pytest.mark.cluster
async def test_a_cluster_sends_each_append_alone(redis_cluster: Any) -> None:
    """In a Redis Cluster the answers of a group live on different nodes: each append keeps its
    own round trip (store/redis/buffers.py says why), and they are all stored."""
    async with RedisStore(redis_cluster.url, prefix=f"t{uuid.uuid4().hex[:8]}:") as store:
        async with nursery_bounded() as nursery:
            for i in range(20):
                nursery.start_soon(store.buffer_append, f"m{i}", f"s{i}", [delta(1)], TTL, NOW)
        assert store._group.groups == 0
        for i in range(20):
            assert await seqs(store, f"m{i}") == [1]
