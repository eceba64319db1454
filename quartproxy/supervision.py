"""What a worker and its supervisor tell each other: "I am ready" (worker to supervisor), and
how many workers the supervisor has replaced, and why (supervisor to workers).

The supervisor (supervisor.py) owns the counts in a small shared-memory array and hands it to
every worker it starts; /health and /metrics (served by any worker) read it. Why not a
prometheus counter in the supervisor: in multiprocess mode every process that records a value
gets files of its own in PROMETHEUS_MULTIPROC_DIR, and the supervisor is kept free of them (it
never imports the app or metrics.py). One writer, read by all: no summing, no files.

Outside a supervisor (one worker, no DEBUG; tests) there is no array and the counts are `None`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Why a worker was replaced: it died (signal, non-zero exit), it exited cleanly on its own
# (Hypercorn's max_requests), or DEBUG reload replaced it after a file change.
REASONS = ("died", "recycled", "reload")

_counts: Sequence[int] | None = None
_ready: Any = None  # the write end of a pipe to the supervisor, until used


def attach(counts: Sequence[int] | None, ready: Any = None) -> None:
    """Called by a worker at start with the supervisor's shared array and its readiness pipe."""
    global _counts, _ready
    _counts = counts
    _ready = ready


def started() -> None:
    """The app has started (services open, about to serve): tell the supervisor, once. A worker
    that dies before this counts as one that cannot start (core/restarts.py)."""
    global _ready
    ready, _ready = _ready, None
    if ready is not None:
        try:
            ready.send_bytes(b"ready")
            ready.close()
        except OSError:
            pass  # the supervisor is gone: nothing to tell


def restarts() -> dict[str, int] | None:
    """Replacements so far by reason, or None when no supervisor runs this process."""
    counts = _counts
    if counts is None:
        return None
    return {reason: int(counts[i]) for i, reason in enumerate(REASONS)}


def count(counts: Any, reason: str) -> None:
    """Supervisor side: one more replacement for `reason`."""
    i = REASONS.index(reason)
    with counts.get_lock():
        counts[i] += 1
