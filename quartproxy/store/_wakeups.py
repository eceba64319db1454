"""In-process wake-ups for answer buffers written by this process.

The SQLite and Redis stores persist every buffer event, but a reader in the same process as the
writer (the common case: the client that asked is still connected, or reconnected to the same
worker) should not poll SQLite or hold a blocking Redis connection just to learn what this
process itself has just written. `buffer_append` records the seq here; `buffer_wait` waits on a
trio.Event when the writer is local and falls back to the backend (poll / XREAD BLOCK) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio


@dataclass
class _Local:
    session_id: str
    last_seq: int
    expires_at: float
    # Made for the first reader that waits, set and dropped by the next append: an answer
    # nobody waits on here (its client follows the live turn) costs no Event per append.
    changed: trio.Event | None = None

    def wake(self) -> None:
        changed, self.changed = self.changed, None
        if changed is not None:
            changed.set()


class LocalWakeups:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._bufs: dict[str, _Local] = {}
        self._ops = 0

    def _sweep(self, now: float) -> None:
        expired = [m for m, b in self._bufs.items() if b.expires_at <= now]
        for mid in expired:
            self._bufs.pop(mid).wake()
        while len(self._bufs) >= self._max_entries:  # still full: drop the oldest writers
            mid = next(iter(self._bufs))
            self._bufs.pop(mid).wake()

    def appended(
        self, message_id: str, session_id: str, seq: int, expires_at: float, now: float
    ) -> None:
        self._ops += 1
        if self._ops % 1024 == 0 or len(self._bufs) >= self._max_entries:
            self._sweep(now)
        buf = self._bufs.get(message_id)
        if buf is None:
            self._bufs[message_id] = _Local(session_id, seq, expires_at)
            return
        buf.last_seq = max(buf.last_seq, seq)
        buf.expires_at = expires_at
        buf.wake()

    def session_deleted(self, session_id: str) -> None:
        for mid in [m for m, b in self._bufs.items() if b.session_id == session_id]:
            self._bufs.pop(mid).wake()

    def local_event(self, message_id: str, after: int) -> trio.Event | None:
        """The event to wait on when this process writes the buffer (already set when events
        after `after` exist); None when another process writes it (or nobody does)."""
        buf = self._bufs.get(message_id)
        if buf is None:
            return None
        if buf.last_seq > after:
            done = trio.Event()
            done.set()
            return done
        if buf.changed is None:
            buf.changed = trio.Event()
        return buf.changed

    def clear(self) -> None:
        for buf in self._bufs.values():
            buf.wake()
        self._bufs.clear()
