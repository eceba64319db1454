"""core.turn_buffer: the buffer rules every backend runs (memory and SQLite call them, Redis
mirrors them in Lua; tests/unit/test_store_differential.py compares the three)."""

from __future__ import annotations

from typing import Any

from quartproxy.core.turn_buffer import appendable, finish_outcome, finish_reads_from


def delta(i: int) -> tuple[int, dict[str, Any]]:
    return i, {"type": "delta", "text": f"t{i}"}


def end(i: int) -> tuple[int, dict[str, Any]]:
    return i, {"type": "end", "message_id": "m", "text": "done"}


def test_an_append_skips_replays_and_nothing_follows_a_final_event() -> None:
    assert appendable(None, False, [delta(0), delta(1)]) == [delta(0), delta(1)]
    assert appendable(1, False, [delta(0), delta(1), delta(2)]) == [delta(2)]
    assert appendable(1, True, [delta(2)]) == []
    assert appendable(3, False, [delta(1)]) == []


def test_finish_reads_the_last_event_or_the_events_from_its_first_seq() -> None:
    assert finish_reads_from(4, None) is None
    assert finish_reads_from(4, 2) == 2  # only the last event: is the turn over?
    assert finish_reads_from(4, 6) == 4  # a lost reply's events


def test_finish_on_a_buffer_behind_its_events_writes_them_as_given() -> None:
    events = [delta(3), end(4)]
    assert finish_outcome(events, None, []).write == events
    outcome = finish_outcome(events, 2, [delta(2)])
    assert (outcome.write, outcome.stored) == (events, None)


def test_finish_after_an_orphan_end_keeps_that_end_and_writes_nothing() -> None:
    outcome = finish_outcome([end(4)], 2, [end(2)])
    assert (outcome.write, outcome.stored) == ([], [end(2)])


def test_a_lost_reply_without_an_end_is_followed_by_the_events_renumbered() -> None:
    outcome = finish_outcome([delta(3), end(4)], 4, [delta(3), delta(4)])
    renumbered = [(5, delta(3)[1]), (6, end(4)[1])]
    assert outcome.write == renumbered
    assert outcome.stored == [delta(3), delta(4), *renumbered]


def test_a_lost_reply_with_an_end_is_returned_up_to_that_end() -> None:
    outcome = finish_outcome([end(3)], 4, [end(3), delta(4)])
    assert (outcome.write, outcome.stored) == ([], [end(3)])


def test_no_events_nothing_to_do() -> None:
    outcome = finish_outcome([], 3, [])
    assert (outcome.write, outcome.stored) == ([], None)
