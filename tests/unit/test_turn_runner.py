"""TurnRunner's store calls on the three real backends (memory, a SQLite file, a redis-server):
one `begin_turn`, one `buffer_append` per upstream read, one `finish_turn` — and what happens
around them when the store is busy, down, slow, erased, or the turn is cancelled mid-call.

The invariant checked after every turn: what the listeners were published is exactly what the
buffer holds (same events, same seqs), and it ends with one final event — so a client that
resumes from the buffer ends where a live one ended, and never waits for an end that was lost.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from quartproxy.core.events import Delta, End, Error, Start, TurnEvent, is_final, to_record
from quartproxy.store import MemoryStore, Store, StoreUnavailable
from quartproxy.store.redis import RedisStore
from quartproxy.store.sqlite import SqliteStore
from quartproxy.turns import SHUTTING_DOWN, Busy, LiveTurn, TurnRequest, TurnRunner
from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)

NOW = 1_700_000_000.0
UPSTREAM_ERROR = Error("upstream_error", "cut")


class Hooks:
    """The store under test, logging the calls TurnRunner makes; `fault` fires once around one
    method: "hang-before" (never runs), "hang-after" (ran, then the caller waits forever:
    what a cancelled Redis call whose script already ran looks like), "lost-reply" (ran, then
    StoreUnavailable). `down`: every call fails before running."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name
        self.keeps_history = inner.keeps_history
        self.calls: list[str] = []
        self.begun: list[str] = []  # message ids passed to begin_turn
        self.fault: tuple[str, str] | None = None
        self.faulted = trio.Event()
        self.down = False

    def __getattr__(self, name: str) -> Any:  # reads, and whatever TurnRunner does not call
        return getattr(self.inner, name)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        fault = None
        if self.fault is not None and self.fault[0] == name:
            fault, self.fault = self.fault[1], None
        if self.down:
            raise StoreUnavailable("down")
        if fault == "hang-before":
            self.faulted.set()
            await trio.sleep_forever()
        result = await getattr(self.inner, name)(*args, **kwargs)
        if fault == "hang-after":
            self.faulted.set()
            await trio.sleep_forever()
        if fault == "lost-reply":
            self.faulted.set()
            raise StoreUnavailable("reply lost")
        return result

    async def begin_turn(self, *args: Any, **kwargs: Any) -> Any:
        self.begun.append(args[1])
        return await self._call("begin_turn", *args, **kwargs)

    async def finish_turn(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("finish_turn", *args, **kwargs)

    async def buffer_append(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("buffer_append", *args, **kwargs)

    async def release_turn(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("release_turn", *args, **kwargs)

    async def acquire_turn(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("acquire_turn", *args, **kwargs)

    async def append_history(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("append_history", *args, **kwargs)


class Upstream:
    """Plays `reads` to the runner, one emit per upstream read; with `pause_after` set, waits
    for `go_on` after that many reads (the answer is still running)."""

    def __init__(self, reads: list[list[TurnEvent]], pause_after: int | None = None) -> None:
        self.reads = reads
        self.pause_after = pause_after
        self.paused = trio.Event()
        self.go_on = trio.Event()

    async def stream_answer(
        self, emit: Callable[[list[TurnEvent]], Awaitable[None]], **_: Any
    ) -> None:
        for i, read in enumerate([*self.reads, None]):
            if i == self.pause_after:
                self.paused.set()
                await self.go_on.wait()
            if read is not None:
                await emit(read)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hooks]:
    if request.param == "memory":
        yield Hooks(MemoryStore())
        return
    if request.param == "sqlite":
        async with SqliteStore(tmp_path / "store.db", poll_interval=0.02) as sqlite:
            yield Hooks(sqlite)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    async with RedisStore(server.url, prefix=prefix) as redis:
        yield Hooks(redis)


@contextlib.asynccontextmanager
async def running(store: Hooks, upstream: Upstream, fail_open: bool = False) -> Any:
    async with trio.open_nursery() as nursery:
        runner = TurnRunner(
            store,  # type: ignore[arg-type]
            upstream,  # type: ignore[arg-type]
            nursery,
            buffer_seconds=300,
            busy_seconds=60,
            clock=lambda: NOW,
            fail_open=fail_open,
        )
        with trio.fail_after(20):
            yield runner
            await runner.wait_idle()


def request(message: str = "hello", session_id: str = "s") -> TurnRequest:
    return TurnRequest(session_id, "https://a.example", message, {}, "rid")


async def buffered(store: Hooks, message_id: str) -> list[tuple[int, dict[str, Any]]] | None:
    part = await store.inner.buffer_read(message_id, -1, NOW)
    return None if part is None else part.events


async def assert_buffer_is_what_was_published(store: Hooks, turn: LiveTurn) -> None:
    assert [e for e in turn.events if is_final(e)] == [turn.events[-1]]  # one end, the last
    assert await buffered(store, turn.message_id) == [
        (seq, to_record(event)) for seq, event in enumerate(turn.events)
    ]


async def assert_flag_free(store: Hooks, session_id: str = "s") -> None:
    assert await store.inner.acquire_turn(session_id, "probe", 60, NOW)


async def history(store: Hooks) -> list[tuple[str, str]]:
    return [(e.role, e.text) for e in await store.inner.history("s")]


# -- the usual turn ------------------------------------------------------------------------------
async def test_a_turn_is_begin_one_append_per_read_and_finish(store: Hooks) -> None:
    upstream = Upstream([[Delta("a"), Delta("b")], [Delta("c")]])
    async with running(store, upstream) as runner:
        turn = await runner.start(request())
    assert store.calls == ["begin_turn", "buffer_append", "buffer_append", "finish_turn"]
    assert turn.events == [
        Start(turn.message_id, "s"),
        Delta("a"),
        Delta("b"),
        Delta("c"),
        End(turn.message_id, "abc"),
    ]
    await assert_buffer_is_what_was_published(store, turn)
    if store.keeps_history:
        assert await history(store) == [("user", "hello"), ("assistant", "abc")]
    await assert_flag_free(store)


async def test_an_upstream_error_ends_the_turn_with_the_deltas_of_its_read_in_one_call(
    store: Hooks,
) -> None:
    upstream = Upstream([[Delta("a")], [Delta("b"), UPSTREAM_ERROR, Delta("ignored")]])
    async with running(store, upstream) as runner:
        turn = await runner.start(request())
    assert store.calls == ["begin_turn", "buffer_append", "finish_turn"]
    assert turn.events[1:] == [Delta("a"), Delta("b"), UPSTREAM_ERROR]
    await assert_buffer_is_what_was_published(store, turn)
    if store.keeps_history:
        # the partial answer is kept, marked incomplete (docs/turn-leases.md)
        kept = await store.inner.history("s")
        assert [(e.role, e.text, e.incomplete) for e in kept] == [
            ("user", "hello", False),
            ("assistant", "ab", True),
        ]
    await assert_flag_free(store)


# -- busy, down, erased ---------------------------------------------------------------------------
async def test_a_busy_session_is_refused_and_nothing_is_written(store: Hooks) -> None:
    upstream = Upstream([[Delta("a")], [Delta("b")]], pause_after=1)
    async with running(store, upstream) as runner:
        first = await runner.start(request("first"))
        await upstream.paused.wait()
        with pytest.raises(Busy):
            await runner.start(request("second"))
        refused = store.begun[-1]
        assert list(runner.live) == [first.message_id]
        assert await buffered(store, refused) is None
        if store.keeps_history:
            assert await history(store) == [("user", "first")]
        upstream.go_on.set()
    assert store.calls.count("begin_turn") == 2
    assert store.calls.count("release_turn") == 0  # the refused turn held nothing
    await assert_buffer_is_what_was_published(store, first)


async def test_store_down_fail_open_answers_without_buffer_or_history(store: Hooks) -> None:
    store.down = True
    upstream = Upstream([[Delta("a")], [Delta("b")]])
    async with running(store, upstream, fail_open=True) as runner:
        turn = await runner.start(request())
    assert turn.events[1:] == [Delta("a"), Delta("b"), End(turn.message_id, "ab")]
    assert await buffered(store, turn.message_id) is None
    assert await store.inner.history("s") == []


async def test_store_down_fail_closed_refuses_the_turn(store: Hooks) -> None:
    store.down = True
    async with running(store, Upstream([[Delta("a")]])) as runner:
        with pytest.raises(StoreUnavailable):
            await runner.start(request())
        assert runner.live == {}


async def test_fail_open_store_lost_before_the_end_still_ends_the_answer(
    store: Hooks,
) -> None:
    upstream = Upstream([[Delta("a")]], pause_after=1)
    async with running(store, upstream, fail_open=True) as runner:
        turn = await runner.start(request())
        await upstream.paused.wait()
        store.down = True  # the store goes away before the end is written
        upstream.go_on.set()
        await runner.wait_idle()
        store.down = False
    assert turn.events[-1] == End(turn.message_id, "a")
    assert store.calls[-2:] == ["finish_turn", "release_turn"]
    # the buffer lacks only the end; the busy flag expires by itself (the release failed too)
    assert await buffered(store, turn.message_id) == [
        (seq, to_record(e)) for seq, e in enumerate(turn.events[:-1])
    ]


async def test_a_deleted_session_stops_its_answer_and_nothing_is_written_back(
    store: Hooks,
) -> None:
    # what DELETE /api/v1/session does on the worker running the answer
    upstream = Upstream([[Delta("a")], [Delta("b")]], pause_after=1)
    async with running(store, upstream) as runner:
        turn = await runner.start(request())
        await upstream.paused.wait()
        runner.cancel_session("s")
        await store.inner.delete_session("s")
    assert turn.events[-1] == SHUTTING_DOWN
    assert "finish_turn" not in store.calls
    assert await buffered(store, turn.message_id) is None
    assert await store.inner.history("s") == []
    await assert_flag_free(store)


async def test_a_session_deleted_by_another_worker_gets_nothing_written_back(
    store: Hooks,
) -> None:
    upstream = Upstream([[Delta("a")], [Delta("b")]], pause_after=1)
    async with running(store, upstream) as runner:
        turn = await runner.start(request())
        await upstream.paused.wait()
        await store.inner.delete_session("s")  # not this worker: the answer runs on
        upstream.go_on.set()
    assert turn.events[-1] == End(turn.message_id, "ab")
    assert await buffered(store, turn.message_id) is None
    assert await store.inner.history("s") == []
    await assert_flag_free(store)


# -- cancelled in the middle of a store call ------------------------------------------------
@pytest.mark.parametrize("when", ["hang-before", "hang-after"])
async def test_a_start_cancelled_during_begin_leaves_the_session_free(
    store: Hooks, when: str
) -> None:
    store.fault = ("begin_turn", when)
    async with running(store, Upstream([[Delta("a")]])) as runner:
        with trio.CancelScope() as client:  # the client left while the turn was starting
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runner.start, request())
                await store.faulted.wait()
                client.cancel()
        assert runner.live == {}
    assert store.calls == ["begin_turn", "release_turn"]
    await assert_flag_free(store)


async def test_cancelled_before_finish_ran_records_shutting_down(store: Hooks) -> None:
    store.fault = ("finish_turn", "hang-before")
    async with running(store, Upstream([[Delta("a")]])) as runner:
        turn = await runner.start(request())
        await store.faulted.wait()
        runner.cancel_all()  # the drain's deadline
    assert turn.events[1:] == [Delta("a"), SHUTTING_DOWN]
    await assert_buffer_is_what_was_published(store, turn)
    await assert_flag_free(store)
    if store.keeps_history:  # what the visitor saw stays in history, marked incomplete
        kept = await store.inner.history("s")
        assert [(e.text, e.incomplete) for e in kept] == [("hello", False), ("a", True)]


async def test_cancelled_after_finish_ran_publishes_the_stored_end(store: Hooks) -> None:
    # The End was written (Redis ran the script) but the call was cancelled before its reply:
    # the shutting_down error recorded next finds that end and publishes it instead.
    store.fault = ("finish_turn", "hang-after")
    async with running(store, Upstream([[Delta("a")]])) as runner:
        turn = await runner.start(request())
        await store.faulted.wait()
        runner.cancel_all()
    assert turn.events[1:] == [Delta("a"), End(turn.message_id, "a")]
    await assert_buffer_is_what_was_published(store, turn)
    if store.keeps_history:
        assert await history(store) == [("user", "hello"), ("assistant", "a")]
    await assert_flag_free(store)


async def test_cancelled_after_a_read_was_stored_ends_after_it_for_every_reader(
    store: Hooks,
) -> None:
    # The Redis edge case: a read's deltas were stored, the call cancelled before its reply, so
    # they were never published. The shutting_down error used to take their seq and be dropped
    # as a replay: the buffer had no end and a resumed reader waited until it expired.
    upstream = Upstream([[Delta("a")], [Delta("b"), Delta("c")], [Delta("never")]], pause_after=1)
    async with running(store, upstream) as runner:
        turn = await runner.start(request())
        await upstream.paused.wait()  # the first read is stored and published
        store.fault = ("buffer_append", "hang-after")
        upstream.go_on.set()
        await store.faulted.wait()
        runner.cancel_all()
    assert turn.events[1:] == [Delta("a"), Delta("b"), Delta("c"), SHUTTING_DOWN]
    await assert_buffer_is_what_was_published(store, turn)
    await assert_flag_free(store)
    # a client resuming after the first delta reads to the end without waiting
    source = runner.source(turn.message_id)
    assert await source.next_batch(1) == [(2, Delta("b")), (3, Delta("c")), (4, SHUTTING_DOWN)]


async def test_a_lost_reply_of_finish_publishes_the_stored_end_not_an_error(store: Hooks) -> None:
    store.fault = ("finish_turn", "lost-reply")
    async with running(store, Upstream([[Delta("a")]])) as runner:
        turn = await runner.start(request())
    assert turn.events[-1] == End(turn.message_id, "a")
    assert store.calls == ["begin_turn", "buffer_append", "finish_turn", "finish_turn"]
    await assert_buffer_is_what_was_published(store, turn)
    await assert_flag_free(store)
