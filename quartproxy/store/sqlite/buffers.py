"""Answer buffers (resume) in the SQLite store: appends committed before any client sees them,
several answers' appends in one transaction (group.py), reads from one snapshot, waits woken
in-process or polled across processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import outcome
import trio

from ... import metrics
from ...core.events import is_final_record
from ..base import BufferSlice, StoreUnavailable
from ..group import GroupCommit
from .connection import SqliteBase, guarded, unavailable
from .rows import Append, _append_group, _encode


def _caused(error: StoreUnavailable, cause: BaseException) -> StoreUnavailable:
    error.__cause__ = cause
    return error


class Buffers(SqliteBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the leader of a group already holds self._limiter: its thread call needs its own slot
        self._group_thread = trio.CapacityLimiter(1)
        self._group: GroupCommit[Append, int | None] = GroupCommit(self._limiter, self._write_group)

    # -- answer buffers (resume) --------------------------------------------------------------
    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        """Committed before it returns, together with the appends of other answers that
        arrived meanwhile (group commit: group.py says what a cancelled call did)."""
        if not events:
            return
        finals = frozenset(seq for seq, record in events if is_final_record(record))
        encoded = _encode(events)
        await self._group.submit(Append(message_id, session_id, encoded, finals, now + ttl, now))

    async def _write_group(self, batch: list[Append]) -> list[outcome.Outcome[int | None]]:
        """One transaction for every append of the group, in their order (per answer, the
        order of its calls); run by the group's leader with the store's worker held."""
        conn = self._conn
        if conn is None:
            return [outcome.Error(StoreUnavailable("SQLite store is closed")) for _ in batch]

        def append(conn: sqlite3.Connection) -> list[int | None]:
            conn.execute("BEGIN IMMEDIATE")
            lasts = _append_group(conn, batch)
            conn.execute("COMMIT")  # durable (WAL) before the events can reach any client
            added = sum(last is not None for last in lasts)
            if added:
                self._after_write(conn, max(a.now for a in batch), added)
            return lasts

        try:
            lasts = await trio.to_thread.run_sync(guarded(conn, append), limiter=self._group_thread)
        except sqlite3.DatabaseError as exc:  # the whole group failed: every caller is told
            return [outcome.Error(_caused(unavailable(exc), exc)) for _ in batch]
        metrics.store_group_commit(len(batch))
        for a, last in zip(batch, lasts, strict=True):
            if last is not None:
                self._wakeups.appended(a.message_id, a.session_id, last, a.expires_at, a.now)
        return [outcome.Value(last) for last in lasts]

    async def buffer_read(self, message_id: str, after: int, now: float) -> BufferSlice | None:
        def read(conn: sqlite3.Connection) -> BufferSlice | None:
            conn.execute("BEGIN")  # one snapshot for both reads
            head = conn.execute(
                "SELECT session_id, expires_at FROM buffers WHERE message_id = ?",
                (message_id,),
            ).fetchone()
            if head is None or head[1] <= now:
                conn.execute("COMMIT")
                return None
            rows = conn.execute(
                "SELECT seq, record FROM buffer_events WHERE message_id = ? AND seq > ? "
                "ORDER BY seq",
                (message_id, after),
            ).fetchall()
            conn.execute("COMMIT")
            return BufferSlice(head[0], [(int(s), json.loads(r)) for s, r in rows])

        return await self._run(read)

    async def buffer_wait(self, message_id: str, after: int) -> None:
        local = self._wakeups.local_event(message_id, after)
        if local is not None:
            await local.wait()
            return

        def last_seq(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT last_seq FROM buffers WHERE message_id = ?", (message_id,)
            ).fetchone()
            return None if row is None else int(row[0])

        # Written by another process (or by nobody since a restart): SQLite cannot notify,
        # so poll. Cancellation-safe: the only checkpoints are the thread call and the sleep.
        while True:
            last = await self._run(last_seq)
            if last is None or last > after:
                return
            await trio.sleep(self._poll_interval)
