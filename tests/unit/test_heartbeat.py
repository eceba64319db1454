"""The runner's heartbeat: listeners of a live turn that has nothing new are woken once per
interval (and get a ping), spread over the interval, on trio's virtual clock (autojump)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio

from quartproxy.core.events import Delta
from quartproxy.http.chat import sse_event
from quartproxy.store.memory import MemoryStore
from quartproxy.turns import HEARTBEAT_SLOTS, LiveTurn, TurnRequest, TurnRunner
from quartproxy.turns.channels import follow

PING = b": ping\n\n"
INTERVAL = 15.0


class SilentN8n:
    """An upstream that never answers."""

    async def stream_answer(self, emit: Any, **kwargs: Any) -> None:
        await trio.sleep_forever()


async def start_turns(runner: TurnRunner, n: int) -> list[LiveTurn]:
    return [
        await runner.start(TurnRequest(f"s{i}", "https://a.example", "hi", {}, f"rid{i}"))
        for i in range(n)
    ]


def new_runner(nursery: trio.Nursery) -> TurnRunner:
    return TurnRunner(
        MemoryStore(),
        SilentN8n(),  # type: ignore[arg-type]
        nursery,
        buffer_seconds=300,
        busy_seconds=600,
        heartbeat_seconds=INTERVAL,
    )


async def collect(turn: LiveTurn, until: float, out: list[tuple[float, bytes]]) -> None:
    """What a client of `turn` receives, with the (virtual) time, until `until`."""
    stream = follow(turn, turn.message_id, -1, sse_event, INTERVAL, PING)
    with trio.move_on_at(until):
        async for data in stream:
            out.append((trio.current_time(), data))
    await stream.aclose()


async def test_a_silent_answer_gets_a_ping_every_interval(autojump_clock: Any) -> None:
    got: list[tuple[float, bytes]] = []
    async with trio.open_nursery() as nursery:
        runner = new_runner(nursery)
        await nursery.start(runner.run_heartbeat)
        (turn,) = await start_turns(runner, 1)
        assert turn.ticked
        start = trio.current_time()
        await collect(turn, start + 10 * INTERVAL, got)
        nursery.cancel_scope.cancel()
    assert got[0][1].startswith(b"id: ")  # the start event
    pings = [t for t, data in got if data == PING]
    assert len(pings) >= 9
    gaps = [b - a for a, b in zip([start, *pings], pings, strict=False)]
    assert max(gaps) <= INTERVAL + 1e-6  # never longer than the interval without a byte


async def test_events_still_arrive_at_once_and_the_stream_ends_with_the_answer(
    autojump_clock: Any,
) -> None:
    got: list[tuple[float, bytes]] = []
    async with trio.open_nursery() as nursery:
        runner = new_runner(nursery)
        await nursery.start(runner.run_heartbeat)
        (turn,) = await start_turns(runner, 1)
        nursery.start_soon(collect, turn, trio.current_time() + 1000, got)
        await trio.sleep(INTERVAL * 2.5)
        sent_at = trio.current_time()
        turn.publish(Delta("hello"))
        await trio.testing.wait_all_tasks_blocked()
        assert got[-1] == (sent_at, sse_event(Delta("hello"), turn.message_id, 1))
        turn.cancel_scope.cancel()  # ends the answer with `shutting_down`
        await trio.testing.wait_all_tasks_blocked()
        assert b"event: error" in got[-1][1]
        done = len(got)
        await trio.sleep(INTERVAL * 3)
        assert len(got) == done  # nothing after the final event
        nursery.cancel_scope.cancel()


async def test_pings_of_many_streams_are_spread_over_the_interval(autojump_clock: Any) -> None:
    n = 8 * HEARTBEAT_SLOTS
    streams: list[list[tuple[float, bytes]]] = [[] for _ in range(n)]
    async with trio.open_nursery() as nursery:
        runner = new_runner(nursery)
        await nursery.start(runner.run_heartbeat)
        turns = await start_turns(runner, n)
        end = trio.current_time() + 3 * INTERVAL
        async with trio.open_nursery() as listeners:
            for turn, got in zip(turns, streams, strict=True):
                listeners.start_soon(collect, turn, end, got)
        nursery.cancel_scope.cancel()
    instants = Counter(t for got in streams for t, data in got if data == PING)
    assert max(instants.values()) <= n // HEARTBEAT_SLOTS
    assert sum(instants.values()) >= 2 * n


async def test_without_the_heartbeat_task_follow_times_out_by_itself(autojump_clock: Any) -> None:
    got: list[tuple[float, bytes]] = []
    async with trio.open_nursery() as nursery:
        runner = new_runner(nursery)  # run_heartbeat not started
        (turn,) = await start_turns(runner, 1)
        assert not turn.ticked
        start = trio.current_time()
        await collect(turn, start + 5 * INTERVAL, got)
        nursery.cancel_scope.cancel()
    pings = [t for t, data in got if data == PING]
    assert len(pings) >= 4
