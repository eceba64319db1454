"""Group commit: writes that arrive while a transaction is running go together in the next one.

Used by both durable backends for buffer appends (one per streamed delta of every running
answer). With one SQLite connection (one worker thread at a time) the commits queued behind each
other, each paying its WAL frames (store/sqlite/buffers.py); with Redis each append was its own
round trip (store/redis/buffers.py: one Redis or Sentinel; a Cluster keeps one per append).
`GroupCommit.submit` coalesces them without any timer:

- a caller that finds no group in progress leads: it takes the store's worker (the connection's
  CapacityLimiter), then every write queued by then, and writes them in one transaction;
- a caller that finds a group in progress parks; when the leader's transaction ends, every write
  of that group gets its own outcome, and the first write still queued is woken to lead the next
  group (with everything that queued meanwhile). A lone write leads at once: no added delay.

Each caller returns only when its own write is committed (or raises what made the group fail:
every caller of a failed group gets the error, not only the leader), so "stored before
published" holds per caller.

Cancellation, per write, decided by whether its group has been taken:

- still queued (waiting for the worker or for the group in progress): the write is withdrawn
  from the queue and Cancelled is raised. It never happened, and never will (so it cannot land
  after a later write of the same caller, such as the turn's finish);
- taken into a group: like a thread call of the store (trio.to_thread.run_sync does not abandon
  its thread), the caller keeps waiting for the transaction and gets its outcome (the write is
  committed and the call returns, or it raises the group's error); the cancellation is delivered
  at the caller's next checkpoint. So a write whose call returned is committed, and one whose
  call raised Cancelled is not: the runner publishes exactly what was stored.
A leader cancelled before it holds the worker withdraws its write and hands the lead on; once it
holds the worker its group is taken and the transaction runs shielded (it is bounded by the
store's busy timeout).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import outcome
import trio

T = TypeVar("T")  # one write
R = TypeVar("R")  # its result

Writer = Callable[[list[T]], Awaitable[list[outcome.Outcome[R]]]]


@dataclass(eq=False, slots=True)
class _Pending(Generic[T]):
    item: T
    task: trio.lowlevel.Task = field(default_factory=trio.lowlevel.current_task)
    taken: bool = False  # in a group whose transaction has started (or is over)


_LEAD: Any = object()  # the value a parked caller is woken with when it leads the next group


class GroupCommit(Generic[T, R]):
    """One queue of writes to one store worker (see the module's docstring).

    `write(batch)` runs with `limiter` held and shielded from cancellation; it returns one
    outcome per write, in order: a distinct outcome object each (an outcome is unwrapped once),
    every one an error when the transaction failed."""

    def __init__(self, limiter: trio.CapacityLimiter, write: Writer[T, R]) -> None:
        self._limiter = limiter
        self._write = write
        self._queue: list[_Pending[T]] = []
        self._leading = False
        self.groups = 0  # transactions begun (a debug counter: tests, bench)
        self.writes = 0  # writes they carried

    async def submit(self, item: T) -> R:
        me = _Pending(item)
        self._queue.append(me)
        if self._leading:
            woken = await trio.lowlevel.wait_task_rescheduled(lambda _: self._abort(me))
            if woken is not _LEAD:
                return cast(R, woken)
        else:
            self._leading = True
        return await self._lead(me)

    def _abort(self, me: _Pending[T]) -> trio.lowlevel.Abort:
        if me.taken:
            return trio.lowlevel.Abort.FAILED  # its transaction runs: wait for its outcome
        self._queue.remove(me)  # withdrawn: it was never written and never will be
        return trio.lowlevel.Abort.SUCCEEDED

    def _hand_off(self) -> None:
        """The lead passes to the first queued write (every queued write but a leader's is
        parked), or lapses when nothing is queued."""
        if self._queue:
            trio.lowlevel.reschedule(self._queue[0].task, outcome.Value(_LEAD))
        else:
            self._leading = False

    async def _lead(self, me: _Pending[T]) -> R:
        try:
            await self._limiter.acquire()
        except BaseException:
            self._queue.remove(me)  # cancelled before anything was taken
            self._hand_off()
            raise
        batch, self._queue = self._queue, []
        for pending in batch:
            pending.taken = True
        self.groups += 1
        self.writes += len(batch)
        results: list[outcome.Outcome[R]] = []
        try:
            with trio.CancelScope(shield=True):
                results = await self._write([p.item for p in batch])
        finally:
            self._limiter.release()
            if len(results) != len(batch):  # the writer itself failed: nobody may wait forever
                results = [
                    outcome.Error(RuntimeError("group commit: the writer gave no outcome"))
                    for _ in batch
                ]
            for pending, result in zip(batch, results, strict=True):
                if pending is not me:
                    trio.lowlevel.reschedule(pending.task, result)
            self._hand_off()
        mine = results[batch.index(me)]
        return mine.unwrap()
