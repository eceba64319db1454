"""TurnRunner records the events of one upstream read as a batch, in ONE store call: persisted,
then published. The call is all or nothing: when the store fails (closed) or the call is
cancelled, listeners get none of the batch, so live and buffered sequence numbers agree."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from quartproxy.core.events import Delta, Start
from quartproxy.store.base import StoreUnavailable
from quartproxy.store.memory import MemoryStore
from quartproxy.turns import LiveTurn, TurnRunner


class FailsAfter(MemoryStore):
    """Accepts `appends` buffer_append calls, then is unreachable."""

    def __init__(self, appends: int) -> None:
        super().__init__()
        self.left = appends
        self.calls = 0

    async def buffer_append(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.left == 0:
            raise StoreUnavailable("down")
        self.left -= 1
        await super().buffer_append(*args, **kwargs)


class Hangs(MemoryStore):
    entered = False

    async def buffer_append(self, *args: Any, **kwargs: Any) -> None:
        self.entered = True
        await trio.sleep_forever()


async def _runner(store: MemoryStore, nursery: trio.Nursery, fail_open: bool) -> TurnRunner:
    return TurnRunner(
        store,
        None,
        nursery,
        buffer_seconds=300,
        busy_seconds=60,
        fail_open=fail_open,  # type: ignore[arg-type]
    )


async def test_a_batch_is_buffered_in_one_call_then_published_in_order() -> None:
    store = FailsAfter(appends=2)
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=False)
        turn = LiveTurn("m1", "s1")
        await runner._record_all(turn, [Start("m1", "s1"), Delta("a"), Delta("b")])
        await runner._record_all(turn, [Delta("c"), Delta("d")])
    assert store.calls == 2
    assert turn.events == [Start("m1", "s1"), Delta("a"), Delta("b"), Delta("c"), Delta("d")]
    part = await store.buffer_read("m1", -1, 0.0)
    assert part is not None
    assert [seq for seq, _ in part.events] == [0, 1, 2, 3, 4]
    assert await turn.next_batch(0) == [
        (1, Delta("a")),
        (2, Delta("b")),
        (3, Delta("c")),
        (4, Delta("d")),
    ]


async def test_store_failing_on_a_batch_publishes_none_of_it() -> None:
    store = FailsAfter(appends=1)
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=False)
        turn = LiveTurn("m1", "s1")
        await runner._record_all(turn, [Start("m1", "s1")])
        with pytest.raises(StoreUnavailable):
            await runner._record_all(turn, [Delta("a"), Delta("b")])
    assert turn.events == [Start("m1", "s1")]
    part = await store.buffer_read("m1", -1, 0.0)
    assert part is not None and len(part.events) == len(turn.events)


async def test_a_batch_cancelled_in_the_store_call_publishes_none_of_it() -> None:
    store = Hangs()
    turn = LiveTurn("m1", "s1")
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=False)
        nursery.start_soon(runner._record_all, turn, [Start("m1", "s1"), Delta("a")])
        await trio.testing.wait_all_tasks_blocked()
        assert store.entered  # waiting inside the store call
        nursery.cancel_scope.cancel()
    assert turn.events == []


async def test_fail_open_publishes_the_whole_batch_without_its_buffer_copy() -> None:
    store = FailsAfter(appends=0)
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=True)
        turn = LiveTurn("m1", "s1")
        await runner._record_all(turn, [Start("m1", "s1"), Delta("a"), Delta("b")])
    assert turn.events == [Start("m1", "s1"), Delta("a"), Delta("b")]
    assert await store.buffer_read("m1", -1, 0.0) is None
