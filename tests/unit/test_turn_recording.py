"""TurnRunner records the events of one upstream read as a batch: persisted, then published.
When the store fails part-way (fail closed), listeners get exactly what was persisted."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from quartproxy.core.events import Delta, Start
from quartproxy.store.base import StoreUnavailable
from quartproxy.store.memory import MemoryStore
from quartproxy.turns import LiveTurn, TurnRunner


class FailsAfter(MemoryStore):
    def __init__(self, appends: int) -> None:
        super().__init__()
        self.left = appends

    async def buffer_append(self, *args: Any, **kwargs: Any) -> None:
        if self.left == 0:
            raise StoreUnavailable("down")
        self.left -= 1
        await super().buffer_append(*args, **kwargs)


async def _runner(store: MemoryStore, nursery: trio.Nursery, fail_open: bool) -> TurnRunner:
    return TurnRunner(
        store,
        None,
        nursery,
        buffer_seconds=300,
        busy_seconds=60,
        fail_open=fail_open,  # type: ignore[arg-type]
    )


async def test_a_batch_is_buffered_then_published_in_order() -> None:
    store = MemoryStore()
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=False)
        turn = LiveTurn("m1", "s1")
        await runner._record_all(turn, [Start("m1", "s1"), Delta("a"), Delta("b")])
    assert turn.events == [Start("m1", "s1"), Delta("a"), Delta("b")]
    part = await store.buffer_read("m1", -1, 0.0)
    assert part is not None
    assert [seq for seq, _ in part.events] == [0, 1, 2]
    assert await turn.next_batch(0) == [(1, Delta("a")), (2, Delta("b"))]


async def test_store_failing_mid_batch_publishes_only_what_was_persisted() -> None:
    store = FailsAfter(appends=2)
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=False)
        turn = LiveTurn("m1", "s1")
        with pytest.raises(StoreUnavailable):
            await runner._record_all(turn, [Start("m1", "s1"), Delta("a"), Delta("b")])
    assert turn.events == [Start("m1", "s1"), Delta("a")]
    part = await store.buffer_read("m1", -1, 0.0)
    assert part is not None and len(part.events) == len(turn.events)


async def test_fail_open_publishes_the_whole_batch_without_its_buffer_copy() -> None:
    store = FailsAfter(appends=1)
    async with trio.open_nursery() as nursery:
        runner = await _runner(store, nursery, fail_open=True)
        turn = LiveTurn("m1", "s1")
        await runner._record_all(turn, [Start("m1", "s1"), Delta("a"), Delta("b")])
    assert turn.events == [Start("m1", "s1"), Delta("a"), Delta("b")]
