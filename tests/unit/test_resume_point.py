"""Reading a turn at or past its end (core.events.resume_point, LiveTurn): a finished turn
always answers at once with at least its final event; a running one continues from the end.
Every channel's follower (SSE, NDJSON, WebSocket, @n8n/chat) reads a LiveTurn this way."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.core.events import Delta, End, Start, resume_point
from quartproxy.turns import LiveTurn


@pytest.mark.parametrize(
    ("after", "last", "finished", "point"),
    [
        (-1, 4, True, -1),  # from the start
        (2, 4, True, 2),  # inside: unchanged
        (3, 4, True, 3),  # just before the end: gets the end
        (4, 4, True, 3),  # the end itself was seen: the end again
        (999, 4, True, 3),  # past the end: the end
        (-1, 4, False, -1),
        (3, 4, False, 3),
        (4, 4, False, 4),  # the usual reconnect of a running turn: wait for the next
        (999, 4, False, 4),  # past the end: from the end
        (0, 0, False, 0),  # only the Start so far
        (5, 0, False, 0),
    ],
)
def test_resume_point(after: int, last: int, finished: bool, point: int) -> None:
    assert resume_point(after, last, finished) == point


@given(st.integers(-1, 10**9), st.integers(0, 10_000), st.booleans())
def test_resume_point_never_waits_for_what_cannot_come(
    after: int, last: int, finished: bool
) -> None:
    point = resume_point(after, last, finished)
    assert point <= last  # never past the end
    assert point == min(after, last - 1 if finished else last) or after < last
    if finished:
        assert point < last  # a finished turn always has its final event to give
    if after < last:
        assert point == after  # a reader inside the turn loses and repeats nothing


def finished_turn() -> LiveTurn:
    turn = LiveTurn("m", "s")
    turn.publish_all([Start("m", "s"), Delta("a"), Delta("b"), End("m", "ab")])
    return turn


@pytest.mark.parametrize("after", [3, 4, 999])
async def test_a_finished_live_turn_answers_past_the_end_at_once(after: int) -> None:
    turn = finished_turn()
    with trio.fail_after(1):  # a wait here would be forever: nothing will be published
        assert await turn.next_batch(after) == [(3, End("m", "ab"))]
        assert await turn.wait_batch(after) == [(3, End("m", "ab"))]


async def test_a_running_live_turn_continues_from_the_end_when_asked_past_it() -> None:
    turn = LiveTurn("m", "s")
    turn.publish_all([Start("m", "s"), Delta("a")])
    got: list[object] = []

    async def reader() -> None:
        got.append(await turn.next_batch(999))
        got.append(await turn.next_batch(2))

    with trio.fail_after(5):  # bounds a hang (a failure), never a timing assertion
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # nothing after the end yet: it waits
            turn.publish(Delta("b"))
            await trio.testing.wait_all_tasks_blocked()
            turn.publish(End("m", "ab"))
    assert got == [[(2, Delta("b"))], [(3, End("m", "ab"))]]


async def test_a_waiter_past_the_end_is_released_by_the_final_event() -> None:
    """A ticked listener parked past the end (before the fix: until the end of time, as the
    runner stops ticking a turn it has forgotten) gets the final event when it comes."""
    turn = LiveTurn("m", "s", ticked=True)
    turn.publish_all([Start("m", "s")])
    got: list[object] = []

    async def reader() -> None:
        batch = await turn.wait_batch(999)
        while not batch:  # a tick: [] (a channel sends its ping here)
            batch = await turn.wait_batch(999)
        got.append(batch)

    with trio.fail_after(5):  # bounds a hang (a failure), never a timing assertion
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            turn.tick()
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            turn.publish(End("m", ""))
    assert got == [[(1, End("m", ""))]]
