"""MemoryStore housekeeping: expired limits, counters, sessions and answer buffers go away as
later calls pass their `now`, while keys written since stay; no call sweeps everything."""

from __future__ import annotations

import trio
import trio.testing

from quartproxy.core.limits import Rate
from quartproxy.store import MemoryStore, SessionRecord

NOW = 1_700_000_000.0
MINUTE = Rate(1, 60)


def sizes(store: MemoryStore) -> tuple[int, int, int, int]:
    return len(store._tat), len(store._counters), len(store._sessions), len(store._buffers)


async def settle(store: MemoryStore, now: float, calls: int = 100) -> None:
    """Later traffic at `now` (each call handles a bounded number of due keys)."""
    for _ in range(calls):
        await store.hit("traffic", Rate(1_000_000, 1), now)


async def test_expired_keys_of_every_kind_go_away() -> None:
    store = MemoryStore()
    for i in range(300):
        await store.hit(f"ip:{i}", MINUTE, NOW)  # state matters until NOW + 60
        await store.incr(f"c:{i}", 120, NOW)
        await store.put_session(SessionRecord(f"s{i}", "https://a.example", "h", NOW, NOW + 600))
        await store.buffer_append(f"m{i}", f"s{i}", [(0, {"n": 0})], 900, NOW)
    assert sizes(store)[1:] == (300, 300, 300)

    await settle(store, NOW + 61)
    assert sizes(store) == (1, 300, 300, 300)  # only "traffic" is left of the limits
    await settle(store, NOW + 121)
    assert sizes(store) == (1, 0, 300, 300)
    await settle(store, NOW + 601)
    assert sizes(store) == (1, 0, 0, 300)
    await settle(store, NOW + 901)
    assert sizes(store) == (1, 0, 0, 0)


async def test_keys_written_since_they_were_due_stay() -> None:
    store = MemoryStore()
    await store.hit("hot", MINUTE, NOW)
    await store.hit("cold", MINUTE, NOW)
    assert not (await store.hit("hot", MINUTE, NOW + 50)).allowed  # refused: state unchanged
    await store.incr("counter", 60, NOW)
    await store.buffer_append("m", "s", [(0, {"n": 0})], 60, NOW)
    await store.buffer_append("m", "s", [(1, {"n": 1})], 60, NOW + 50)  # expires NOW + 110
    assert (await store.hit("hot", MINUTE, NOW + 60)).allowed  # its state now lasts to NOW+120
    await store.put_session(SessionRecord("s", "https://a.example", "h", NOW, NOW + 60))
    await store.put_session(SessionRecord("s", "https://a.example", "h", NOW, NOW + 200))

    await settle(store, NOW + 61)
    assert "cold" not in store._tat and "counter" not in store._counters
    assert not (await store.hit("hot", MINUTE, NOW + 61)).allowed  # kept: still limited
    assert await store.buffer_read("m", -1, NOW + 61) is not None
    assert await store.get_session("s", NOW + 61) is not None

    await settle(store, NOW + 201)
    assert sizes(store) == (1, 0, 0, 0)


async def test_a_deleted_session_and_its_buffers_leave_nothing_behind() -> None:
    store = MemoryStore()
    await store.put_session(SessionRecord("s", "https://a.example", "h", NOW, NOW + 60))
    await store.buffer_append("m", "s", [(0, {"n": 0})], 60, NOW)
    await store.delete_session("s")
    await settle(store, NOW + 61)  # their due entries find nothing to delete
    assert sizes(store) == (1, 0, 0, 0)


async def test_a_reader_waiting_on_an_expired_buffer_is_woken() -> None:
    store = MemoryStore()
    await store.buffer_append("m", "s", [(0, {"n": 0})], 60, NOW)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.buffer_wait, "m", 0)
            await trio.testing.wait_all_tasks_blocked()
            await settle(store, NOW + 61)
    assert await store.buffer_read("m", -1, NOW + 61) is None


START = {"type": "start", "message_id": "m", "session_id": "s"}
DELTA = {"type": "delta", "text": "a"}
END = {"type": "end", "message_id": "m", "text": "a"}


async def test_an_ended_answer_s_buffer_is_out_of_the_cyclic_collector_s_sight() -> None:
    """A busy worker keeps every answer of the last STREAM_BUFFER_SECONDS here: kept as dicts in
    lists, a full collection walked them all (359 ms for 75,000 answers, bench/gc_pause.py),
    stalling every stream. Once the answer is over, nothing of its buffer is tracked."""
    import gc

    store = MemoryStore()
    await store.buffer_append("m", "s", [(0, START), (1, DELTA)], 60, NOW)
    await store.buffer_append("m", "s", [(2, END)], 60, NOW)
    for _ in range(3):  # a tuple is untracked once its items are: one level per pass
        gc.collect()
    assert not gc.is_tracked(store._buffers["m"])
    part = await store.buffer_read("m", -1, NOW)  # read back as written
    assert part is not None and part.events == [(0, START), (1, DELTA), (2, END)]
    assert await store.buffer_append("m", "s", [(3, DELTA)], 60, NOW) is None  # nothing after
    part = await store.buffer_read("m", 1, NOW)
    assert part is not None and part.events == [(2, END)]


async def test_a_reader_waiting_at_the_end_of_an_ended_answer_is_woken_when_it_goes() -> None:
    for gone in ("expired", "erased"):
        store = MemoryStore()
        await store.buffer_append("m", "s", [(0, START), (1, END)], 60, NOW)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.buffer_wait, "m", 1)  # nothing more will come
                await trio.testing.wait_all_tasks_blocked()
                if gone == "expired":
                    await settle(store, NOW + 61)
                else:
                    await store.delete_session("s")
        assert await store.buffer_read("m", -1, NOW) is None
