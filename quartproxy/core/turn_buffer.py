"""The rules of a turn's resume buffer, decided once for every backend (Store.buffer_append,
Store.finish_turn in store/base.py). Pure: the stores read what the rules need inside their own
atomic step (a lock-free call in memory, a write transaction in SQLite), call these, and write
what they return.

The Redis backend runs the same rules in Lua, where atomicity needs them in the server:
`_BUF_APPEND` / `buf_add` mirror `appendable`, `_FINISH` mirrors `finish_outcome`, and its
`fin` flag caches `is_final_record` of the buffer's last event. The differential property
test (tests/unit/test_store_differential.py) holds the three backends to the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .events import is_final_record

Record = dict[str, Any]
Stored = tuple[int, Record]
T = TypeVar("T")  # a record, or its encoding


def appendable(
    last: int | None, ended: bool, events: Sequence[tuple[int, T]]
) -> list[tuple[int, T]]:
    """What an append adds to a buffer whose last seq is `last` (None: empty or no buffer) and
    whose last event is final when `ended`: nothing after a final event (the answer is over),
    and only events whose seq is above the last one so far (a replay changes nothing)."""
    if ended:
        return []
    added: list[tuple[int, T]] = []
    for seq, record in events:
        if last is None or seq > last:
            added.append((seq, record))
            last = seq
    return added


def finish_reads_from(first: int, last: int | None) -> int | None:
    """From which seq finish_turn must read the buffer (last seq `last`) to decide on events
    starting at seq `first`: the buffer's last event when it lies before them (did another
    worker end the turn?), the events from `first` on when the buffer already holds some (an
    earlier write whose reply was lost); None when there is no buffer."""
    return None if last is None else min(first, last)


@dataclass(frozen=True, slots=True)
class FinishOutcome:
    # The events to append, seqs final (the caller's, or renumbered after the buffer's last);
    # empty: write nothing, history neither (the turn's end is already stored).
    write: list[Stored]
    # Store.finish_turn's answer: None when the caller's events are stored as given, else
    # the buffer's events the caller must publish instead (see Store.finish_turn).
    stored: list[Stored] | None


def finish_outcome(
    events: Sequence[Stored], last: int | None, tail: Sequence[Stored]
) -> FinishOutcome:
    """The last write of a turn: its final `events` (seqs consecutive, the last one final) to a
    buffer whose last seq is `last`, given `tail`, the buffer's events from
    `finish_reads_from(events[0] seq, last)` on (seq ascending).

    - nothing buffered at or after the first seq: the events go as given;
    - the buffer ends with a final event before them (an orphan sweep ended the turn): keep
      that end, write nothing;
    - the buffer already holds events from the first seq on (an earlier call was stored but
      its reply lost): up to the first final one of them, if any, write nothing; else those
      events, then the caller's renumbered after the buffer's last."""
    if not events:
        return FinishOutcome([], None)
    first = events[0][0]
    if last is None or last < first:
        if last is not None and tail and tail[-1][0] == last and is_final_record(tail[-1][1]):
            return FinishOutcome([], [tail[-1]])
        return FinishOutcome(list(events), None)
    known = [(seq, record) for seq, record in tail if seq >= first]
    for i, (_, record) in enumerate(known):
        if is_final_record(record):
            return FinishOutcome([], known[: i + 1])
    renumbered = [(last + 1 + i, record) for i, (_, record) in enumerate(events)]
    return FinishOutcome(renumbered, known + renumbered)
