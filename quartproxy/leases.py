"""The worker lease task: keeps this worker's turns alive in the store and ends other workers'
orphaned turns (docs/turn-leases.md; the timing rules are in core/leases.py).

Every `renew_every` seconds, one store call renews this worker's lease and the busy flags of
all its running turns; turns the store says were ended meanwhile by another worker (this
worker was frozen or cut off longer than the lease) are stopped. Then, when this worker's own
previous renewal also succeeded (after an outage of the store every worker gets one round to
renew before anyone is declared dead), the orphan sweep ends the turns of workers whose lease
lapsed: a final `error` event in their buffer, the partial answer in history marked
incomplete, the busy flag released. In the sqlite mode a restarted worker finds its
predecessor's turns the same way (its first sweep runs at start-up).

Nothing here may take the turns down: every failure is logged and retried at the next round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from . import metrics
from .core.leases import LeaseTiming, orphan_end, orphan_error_record
from .store.base import HistoryEntry, Store
from .turns import TurnRunner

log = logging.getLogger("quartproxy.leases")
SWEEP_BATCH = 100  # orphaned turns ended per sweep at most (the next sweep takes the rest)
# Turns renewed per store call: a worker with 10,000 live turns makes 10 short calls per round
# instead of one Redis script that holds the server for tens of milliseconds.
RENEW_BATCH = 1000
WARN_EVERY = 30.0  # seconds between two "cannot renew" warnings


async def keep_leases(
    runner: TurnRunner,
    timing: LeaseTiming,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Renew, sweep, report started after the first round, then repeat until cancelled."""
    ok_before = False
    first = True
    warned_at = -1e9
    while True:
        ok = False
        try:
            turns = runner.owned_turns()
            for i in range(0, max(len(turns), 1), RENEW_BATCH):
                lost = await runner.store.renew_worker(
                    runner.worker_id, turns[i : i + RENEW_BATCH], timing.ttl, runner.clock()
                )
                runner.stop_lost(lost)
            ok = True
        except Exception as exc:  # the store is failing: retry next round, never fatal
            if time.monotonic() - warned_at > WARN_EVERY:
                warned_at = time.monotonic()
                log.warning("cannot renew the worker lease (will retry): %s", exc)
        if ok and (ok_before or first):
            try:
                await sweep_orphans(runner.store, runner.buffer_seconds, runner.clock)
            except Exception as exc:
                log.warning("orphan sweep failed (will retry): %s", exc)
        ok_before = ok
        if first:
            first = False
            task_status.started()
        await trio.sleep(timing.renew_every)


async def sweep_orphans(
    store: Store, buffer_seconds: float, clock: Callable[[], float] = time.time
) -> int:
    """End the turns of workers whose lease lapsed; how many were found."""
    now = clock()
    orphans = await store.lapsed_turns(now, SWEEP_BATCH)
    if not orphans:
        return 0
    ended = 0
    for orphan in orphans:
        part = await store.buffer_read(orphan.message_id, -1, now)
        if part is not None and part.session_id != orphan.session_id:
            part = None
        end = orphan_end([] if part is None else part.events)
        final = [] if part is None or end.finished else [(end.seq, orphan_error_record())]
        history: list[HistoryEntry] = []
        if final and end.text and store.keeps_history:
            history.append(
                HistoryEntry(orphan.message_id, "assistant", end.text, now, incomplete=True)
            )
        await store.finish_turn(
            orphan.session_id,
            orphan.message_id,
            final,
            history,
            buffer_ttl=buffer_seconds,
            now=now,
            owner=orphan.worker_id,
        )
        ended += bool(final)
        metrics.orphan_finished("ended" if final else "released")
    workers = len({o.worker_id for o in orphans})
    log.warning(
        "orphan sweep: %d turn(s) of %d lapsed worker(s) finished (%d ended with an error)",
        len(orphans),
        workers,
        ended,
        extra={"event": "orphans_swept", "turns": len(orphans), "workers": workers, "ended": ended},
    )
    return len(orphans)
