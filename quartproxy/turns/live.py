"""A turn's events as its readers see them: `LiveTurn` (the running answer of this process,
broadcast in memory) and `BufferedTurn` (one read back from the store), both `EventSource`s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ..core.events import Error, TurnEvent, from_record, is_final, resume_point
from ..store.base import Store, StoreUnavailable

log = logging.getLogger("quartproxy.turns")
STORE_DOWN = Error(
    "store_unavailable", "The service is temporarily unavailable; try again shortly."
)


class EventSource(Protocol):
    """Where a channel reads a turn's events from (a live turn here, or a store buffer)."""

    async def next_batch(self, after: int) -> list[tuple[int, TurnEvent]]:
        """Events with seq > after; waits until there is at least one. When `after` is at or
        past the end, from the end (core.events.resume_point): a finished turn answers at once
        with its final event. Cancellation-safe: nothing is consumed, so a cancelled wait
        loses nothing."""
        ...


@dataclass(slots=True)
class LiveTurn:
    """In-process broadcast of one answer's events to any number of listeners. Slotted: one
    per open answer (thousands per worker), no per-instance dict."""

    message_id: str
    session_id: str
    events: list[TurnEvent] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    erased: bool = False  # the session was deleted: write nothing more for it
    released: bool = False  # the store has released the session's busy flag (finish_turn)
    owned: bool = False  # begin_turn recorded it as this worker's (its lease is renewed)
    # Set by a runner whose heartbeat runs (TurnRunner.run_heartbeat): `wait_batch` then also
    # returns at the ticks of `slot`, once per heartbeat interval.
    ticked: bool = False
    slot: int = 0
    _listeners: int = 0  # tasks in wait_batch

    @property
    def done(self) -> bool:
        return bool(self.events) and is_final(self.events[-1])

    def publish(self, event: TurnEvent) -> None:
        self.publish_all([event])

    def publish_all(self, events: list[TurnEvent]) -> None:
        self.events.extend(events)
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    def _after(self, after: int) -> int:
        """`after`, or the end when it is at or past it (core.events.resume_point), taken
        once per call: a reader past the end waits for the next event, never for `after`."""
        return resume_point(after, len(self.events) - 1, self.done)

    async def next_batch(self, after: int) -> list[tuple[int, TurnEvent]]:
        """Events after `after`; a finished turn always answers at once (at least with its
        final event), so no reader waits on an answer that is over."""
        point = self._after(after)
        while len(self.events) <= point + 1:
            await self._changed.wait()
        return self._since(point)

    async def wait_batch(self, after: int) -> list[tuple[int, TurnEvent]]:
        """Like next_batch, but [] when the heartbeat ticks first (`ticked` turns only)."""
        point = self._after(after)
        if len(self.events) <= point + 1:
            self._listeners += 1
            try:
                await self._changed.wait()
            finally:
                self._listeners -= 1
        return self._since(point)

    def _since(self, after: int) -> list[tuple[int, TurnEvent]]:
        return [(seq, self.events[seq]) for seq in range(after + 1, len(self.events))]

    def tick(self) -> None:
        """Wake the listeners in wait_batch with nothing new (a heartbeat)."""
        if self._listeners:
            changed, self._changed = self._changed, trio.Event()
            changed.set()


class BufferedTurn:
    """A turn read back from the store (another worker's, or one that already finished).
    The resume route starts it at a real seq (resume_point); should its writer die without a
    final event, the reader is woken every 5 s and ends with `not_found` when the buffer
    expires (STREAM_BUFFER_SECONDS), pinged meanwhile by `follow`'s own heartbeat."""

    def __init__(self, store: Store, message_id: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.message_id = message_id
        self.clock = clock

    async def next_batch(self, after: int) -> list[tuple[int, TurnEvent]]:
        while True:
            try:
                part = await self.store.buffer_read(self.message_id, after, self.clock())
            except StoreUnavailable as exc:
                # mid-stream: end this stream with the contract's code, under the id the
                # client already has, so a later resume (Last-Event-ID) loses nothing
                log.warning("resume of %s ended: store unavailable: %s", self.message_id, exc)
                return [(after, STORE_DOWN)]
            if part is None:
                return [(after + 1, Error("not_found", "This answer is no longer available."))]
            if part.events:
                return [(seq, from_record(rec)) for seq, rec in part.events]
            with trio.move_on_after(5):
                await self.store.buffer_wait(self.message_id, after)
