"""Turn and worker leases: the timing rules and how an orphaned turn is ended. Pure, no IO.

A running turn holds its session's busy flag as a lease, and is owned by its worker's lease
(docs/turn-leases.md). One task per worker renews both every `renew_every` seconds: its own
lease and the busy flags of all its running turns, in one store call. A worker that stops
renewing (killed, out of memory, frozen) lets them lapse `ttl` seconds after its last renewal;
then the orphan sweep of any worker (every `sweep_every` seconds) ends its turns.

Bound: a client resuming a dead worker's answer sees its final event at most
`ttl + sweep_every` (+ one store wake-up, well under a second) after the death.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .events import FINAL_TYPES as FINAL_TYPES
from .events import is_final_record

# Renewals per lease: a worker may miss RENEWALS_PER_LEASE - 1 renewals in a row (a slow store
# call, a busy event loop) before others consider it dead.
RENEWALS_PER_LEASE = 3
ORPHAN_CODE = "upstream_error"  # a contract code (docs/api.md); the message says why
ORPHAN_MESSAGE = (
    "The server handling this answer stopped before it finished; please send your message again."
)


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl: float  # a lease (worker or busy flag) lapses this long after its last renewal
    renew_every: float  # the renewal task's period
    sweep_every: float  # the orphan sweep's period

    @property
    def resume_bound(self) -> float:
        """Worst case from a worker's death to the final event of its turns in the store."""
        return self.ttl + self.sweep_every


def lease_timing(lease_seconds: float) -> LeaseTiming:
    """The one place that turns TURN_LEASE_SECONDS into the busy-flag TTL and the periods.

    The busy flag used to live `timeout + idle + 60` s and was never renewed, so an answer
    longer than that let a second turn start; now it lives `ttl` and is renewed while the turn
    runs, however long it runs."""
    step = lease_seconds / RENEWALS_PER_LEASE
    return LeaseTiming(ttl=lease_seconds, renew_every=step, sweep_every=step)


@dataclass(frozen=True, slots=True)
class OrphanEnd:
    """What ending one orphaned turn writes."""

    seq: int  # the seq of its final error event
    text: str  # the partial answer the buffer holds (deltas so far)
    finished: bool  # the buffer already ends with a final event: write nothing, only release


def orphan_end(events: Sequence[tuple[int, dict[str, Any]]]) -> OrphanEnd:
    """From an orphaned turn's buffer (all its events, seq ascending; empty when the buffer is
    gone): where its final event goes and the partial answer for history."""
    parts: list[str] = []
    last = -1
    for seq, record in events:
        last = seq
        kind = record.get("type")
        if kind == "delta":
            parts.append(str(record.get("text", "")))
        elif is_final_record(record):
            return OrphanEnd(seq + 1, "".join(parts), True)
    return OrphanEnd(last + 1, "".join(parts), False)


def orphan_error_record() -> dict[str, Any]:
    return {"type": "error", "code": ORPHAN_CODE, "message": ORPHAN_MESSAGE}
