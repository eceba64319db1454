"""One chat turn, independent of the channel that asked for it.

`TurnRunner.start` reserves the session (one answer in flight), then runs the upstream call in
the runner's own nursery — not in the request's task — so a client that leaves does not cancel
an answer that is already being paid for. Every event is written to the store's buffer first
and only then published to listeners, so whatever a client has seen can be resumed, and
survives a crash of the process in the durable modes.

Store calls of one turn: `begin_turn` (busy flag, Start, question), one `buffer_append` per
upstream read (SQLite commits those of several answers together, one Redis or Sentinel sends
them in one round trip; each returns once its own is stored; a call cancelled before its group
was taken raises Cancelled and wrote nothing, one that returned is stored: store/group.py),
`finish_turn` (final event, answer,
release of the flag). The busy flag is a
lease owned by this worker (`worker_id`) and renewed while the turn runs (leases.py); an answer
cut short (an error mid-stream, shutdown) keeps its partial text in history, marked incomplete.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from .. import metrics
from ..core.attachments import Attachment, close_all
from ..core.events import (
    Delta,
    End,
    Error,
    Start,
    TurnEvent,
    from_record,
    to_record,
)
from ..core.sites import Site
from ..store.base import HistoryEntry, Store, StoreUnavailable
from ..upstream import N8nClient
from .live import STORE_DOWN, BufferedTurn, EventSource, LiveTurn

log = logging.getLogger("quartproxy.turns")

SHUTTING_DOWN = Error(
    "shutting_down", "The server restarted before this answer finished; please send it again."
)
INTERNAL = Error("internal", "Something went wrong while answering.")
HEARTBEAT_SLOTS = 16  # the live turns are spread over this many heartbeat ticks per interval
_IGNORED = trio.TASK_STATUS_IGNORED


class Busy(Exception):
    """Another answer is in flight for this session."""


@dataclass(frozen=True, slots=True)
class TurnRequest:
    session_id: str
    origin: str
    message: str
    metadata: dict[str, Any]
    request_id: str
    user: dict[str, str] | None = None  # a signed visitor's verified claims (core.identity)
    # Spooled files (core.attachments); the runner closes them when the turn ends.
    files: tuple[Attachment, ...] = ()
    site: Site | None = None  # its webhook and upstream secret; None: the environment's


def _notes(files: tuple[Attachment, ...]) -> tuple[tuple[str, str, int], ...]:
    """What history keeps of the files: name, type, size."""
    return tuple((f.name, f.type, f.size) for f in files)


class TurnRunner:
    def __init__(
        self,
        store: Store,
        upstream: N8nClient,
        nursery: trio.Nursery,
        *,
        buffer_seconds: float,
        busy_seconds: float,
        clock: Callable[[], float] = time.time,
        fail_open: bool = False,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.nursery = nursery
        self.buffer_seconds = buffer_seconds
        self.busy_seconds = busy_seconds
        self.clock = clock
        self.fail_open = fail_open
        self._warned_at = -1e9
        self.live: dict[str, LiveTurn] = {}
        self.accepting = True
        self._emptied = trio.Event()
        self.heartbeat_seconds = heartbeat_seconds
        self._ticking = False
        self._turns_started = 0
        self.worker_id = uuid.uuid4().hex  # whose lease this worker's turns depend on

    async def start(self, req: TurnRequest) -> LiveTurn:
        """Reserve the session and start the answer; returns at once with the Start event
        already published. Raises Busy.

        One store call: the busy flag, the Start event and the question (begin_turn)."""
        message_id = str(uuid.uuid4())
        now = self.clock()
        start = Start(message_id, req.session_id)
        history = (
            [HistoryEntry(message_id, "user", req.message, now, files=_notes(req.files))]
            if self.store.keeps_history
            else []
        )
        self._turns_started += 1
        slot = self._turns_started % HEARTBEAT_SLOTS
        turn = LiveTurn(message_id, req.session_id, ticked=self._ticking, slot=slot)
        self.live[message_id] = turn
        acquired = True
        try:
            with self._without_store("busy flag, resume and history"):
                acquired = await self.store.begin_turn(
                    req.session_id,
                    message_id,
                    [(0, to_record(start))],
                    history,
                    busy_ttl=self.busy_seconds,
                    buffer_ttl=self.buffer_seconds,
                    now=now,
                    owner=self.worker_id,
                )
                turn.owned = acquired
        except BaseException:
            # Failed closed, or cancelled (the client left): the call may still have taken the
            # flag. Nobody knows this message id, so only the flag matters.
            self._forget(turn)
            await self._release(turn)
            raise
        if not acquired:
            self._forget(turn)
            raise Busy()
        turn.publish(start)
        self.nursery.start_soon(self._run, req, turn)
        return turn

    async def run_heartbeat(self, *, task_status: trio.TaskStatus[None] = _IGNORED) -> None:
        """Wake the waiting listeners of every live turn once per `heartbeat_seconds` (a channel
        woken with nothing new sends its ping), for the turns started from now on.

        One timer for all streams. A `move_on_after(heartbeat)` around every wait costs each
        idle stream a cancel scope (~0.6 KB) and every ping a cancellation delivered through
        its stack (~40 % of the worker's heartbeat CPU, bench: py-spy of idle streams). The
        turns are spread over HEARTBEAT_SLOTS ticks per interval, so 10,000 idle streams do
        not all ping in the same instant; each slot ticks exactly once per interval, so a
        stream never goes longer than the interval without a wake-up."""
        step = self.heartbeat_seconds / HEARTBEAT_SLOTS
        self._ticking = True
        task_status.started()
        try:
            slot = 0
            due = trio.current_time()
            while True:
                due = max(due + step, trio.current_time())
                await trio.sleep_until(due)
                slot = (slot + 1) % HEARTBEAT_SLOTS
                for turn in self.live.values():  # tick() only reschedules: no await here
                    if turn.slot == slot:
                        turn.tick()
        finally:
            self._ticking = False

    def source(self, message_id: str) -> EventSource:
        live = self.live.get(message_id)
        return live if live is not None else BufferedTurn(self.store, message_id, self.clock)

    async def wait_idle(self) -> None:
        """Until no answer of this process is running (the shutdown drain waits on this)."""
        while self.live:
            if self._emptied.is_set():
                self._emptied = trio.Event()
            await self._emptied.wait()

    def cancel_all(self) -> None:
        """End every running answer with `shutting_down` (the drain's deadline passed)."""
        for turn in list(self.live.values()):
            turn.cancel_scope.cancel()

    def owned_turns(self) -> list[tuple[str, str]]:
        """(session_id, message_id) of the running turns whose leases this worker renews."""
        return [(t.session_id, t.message_id) for t in self.live.values() if t.owned]

    def stop_lost(self, message_ids: list[str]) -> None:
        """Stop turns another worker ended as orphans (this worker's lease had lapsed: it was
        frozen or cut off from the store). Their finish_turn publishes that end."""
        for message_id in message_ids:
            turn = self.live.get(message_id)
            if turn is not None and not turn.done:
                log.warning("turn %s was ended by another worker; stopping it", message_id)
                turn.cancel_scope.cancel()

    def partial(self, turn: LiveTurn, text: str | None = None) -> list[HistoryEntry]:
        """The history entry of an answer cut short: what was received, marked incomplete."""
        if text is None:
            text = "".join(e.text for e in turn.events if isinstance(e, Delta))
        if not text or not self.store.keeps_history:
            return []
        return [HistoryEntry(turn.message_id, "assistant", text, self.clock(), incomplete=True)]

    def cancel_session(self, session_id: str) -> None:
        """Stop this worker's answers for a session that is being deleted."""
        for turn in list(self.live.values()):
            if turn.session_id == session_id:
                turn.erased = True
                turn.cancel_scope.cancel()

    async def _record_all(self, turn: LiveTurn, events: list[TurnEvent]) -> None:
        """Persist the events of one upstream read in one store call, then publish them with one
        wake-up (listeners get the whole read as one batch, hence one write to their socket)."""
        seq = len(turn.events)
        records = [(seq + i, to_record(event)) for i, event in enumerate(events)]
        try:  # not `_without_store`: a generator context manager per delta is ~2 % of the CPU
            await self.store.buffer_append(
                turn.message_id, turn.session_id, records, self.buffer_seconds, self.clock()
            )
        except StoreUnavailable:
            self._store_failed("resume buffer")  # fail open: out without its buffer copy
        # Reached only when the batch was persisted (or fail open): when the store failed
        # closed or the call was cancelled nothing is published, so live and buffered
        # sequence numbers stay the same.
        turn.publish_all(events)

    @contextmanager
    def _without_store(self, what: str) -> Iterator[None]:
        """RATE_LIMIT_FAIL_MODE=open: an unreachable store costs the busy flag, resume and
        history of this answer, not the answer itself. Closed: the error propagates."""
        try:
            yield
        except StoreUnavailable:
            self._store_failed(what)

    def _store_failed(self, what: str) -> None:
        """In an `except StoreUnavailable`: re-raise when failing closed, else warn (rarely)."""
        if not self.fail_open:
            raise  # the StoreUnavailable being handled (called from an except block only)
        if time.monotonic() - self._warned_at > 10:  # one line per 10 s, not per delta
            self._warned_at = time.monotonic()
            log.warning("store unavailable: answering without %s (fail open)", what)

    async def _end(
        self, turn: LiveTurn, events: list[TurnEvent], history: list[HistoryEntry]
    ) -> None:
        """Persist the turn's final events (End, or an Error with the deltas read with it) and
        the answer's history entry, and release the busy flag — one store call — then publish
        them. Raises like _record_all."""
        seq = len(turn.events)
        records = [(seq + i, to_record(event)) for i, event in enumerate(events)]
        with self._without_store("resume buffer"):
            stored = await self.store.finish_turn(
                turn.session_id,
                turn.message_id,
                records,
                history,
                buffer_ttl=self.buffer_seconds,
                now=self.clock(),
                owner=self.worker_id if turn.owned else "",
            )
            turn.released = True
            if stored is not None:
                # An earlier write of this turn was stored but never published (its call was
                # cancelled after Redis ran it, or its reply was lost): publish what the buffer
                # holds, so live and resumed readers get the same events and the same end.
                log.warning("turn %s: publishing %d stored events", turn.message_id, len(stored))
                events = [from_record(record) for _, record in stored]
        turn.publish_all(events)

    async def _release(self, turn: LiveTurn) -> None:
        """Clear the busy flag when no finish_turn did (best effort; it expires by itself)."""
        if turn.released:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self.store.release_turn(turn.session_id, turn.message_id)
                turn.released = True
            except Exception:
                log.warning("could not release session %s (expires by itself)", turn.session_id)

    def _forget(self, turn: LiveTurn) -> None:
        self.live.pop(turn.message_id, None)
        if not self.live:
            self._emptied.set()

    async def _run(self, req: TurnRequest, turn: LiveTurn) -> None:
        parts: list[str] = []
        timer = metrics.TurnTimer(req.origin, req.site.id if req.site else "default")

        async def emit(events: list[TurnEvent]) -> None:
            if turn.done:
                return
            for i, event in enumerate(events):
                if isinstance(event, Delta):
                    timer.first_token()
                    parts.append(event.text)
                elif isinstance(event, Error):
                    # nothing after an error: the read's deltas and the error end the turn
                    await self._end(turn, events[: i + 1], self.partial(turn, "".join(parts)))
                    return
            await self._record_all(turn, events)

        try:
            with turn.cancel_scope:
                await self.upstream.stream_answer(
                    emit,
                    session_id=req.session_id,
                    origin=req.origin,
                    message_id=turn.message_id,
                    message=req.message,
                    metadata=req.metadata,
                    request_id=req.request_id,
                    user=req.user,
                    files=req.files,
                    site=req.site,
                )
                if not turn.done:
                    text = "".join(parts)
                    history = []
                    if self.store.keeps_history:
                        history.append(
                            HistoryEntry(turn.message_id, "assistant", text, self.clock())
                        )
                    await self._end(turn, [End(turn.message_id, text)], history)
        except StoreUnavailable as exc:
            # RATE_LIMIT_FAIL_MODE=closed and the store went away mid-answer: the contract's
            # code and one line (no traceback: the cause is outside the process)
            metrics.store_error("request")
            log.warning("turn %s ended: store unavailable: %s", turn.message_id, exc)
            await self._finish(turn, STORE_DOWN)
        except Exception:
            log.exception("turn %s failed", turn.message_id)
            await self._finish(turn, INTERNAL)
        finally:
            close_all(req.files)  # sent (or never will be): the spooled files go
            # Cancelled means shutdown (or the session was deleted): close the stream for
            # listeners; what was received so far stays in the buffer.
            await self._finish(turn, SHUTTING_DOWN)
            await self._release(turn)  # when the end could not be recorded
            self._forget(turn)
            timer.finish(metrics.outcome_of(turn.events[-1], deleted=turn.erased))

    async def _finish(self, turn: LiveTurn, event: Error) -> None:
        """End a turn that has no final event yet, even when the store is failing."""
        if turn.done:
            return
        if not turn.erased:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await self._end(turn, [event], self.partial(turn))
                    return
                except Exception:
                    log.warning("could not record the end of turn %s", turn.message_id)
        turn.publish(event)
