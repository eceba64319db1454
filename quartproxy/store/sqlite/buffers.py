"""Answer buffers (resume) in the SQLite store: appends committed before any client sees them,
reads from one snapshot, waits woken in-process or polled across processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import trio

from ..base import BufferSlice
from .connection import SqliteBase
from .rows import _append_events, _encode


class Buffers(SqliteBase):
    # -- answer buffers (resume) --------------------------------------------------------------
    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        if not events:
            return
        encoded = _encode(events)

        def append(conn: sqlite3.Connection) -> int | None:
            conn.execute("BEGIN IMMEDIATE")
            last = _append_events(conn, message_id, session_id, encoded, now + ttl)
            conn.execute("COMMIT")  # durable (WAL) before the events can reach any client
            if last is not None:
                self._after_write(conn, now)
            return last

        last = await self._run(append)
        if last is not None:
            self._wakeups.appended(message_id, session_id, last, now + ttl, now)

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
