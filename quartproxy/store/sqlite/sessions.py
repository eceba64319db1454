"""Sessions and their history in the SQLite store; erasing a session erases everything of it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from ..base import HistoryEntry, SessionRecord
from .connection import SqliteBase
from .rows import _append_history, _history_rows, files_of


class Sessions(SqliteBase):
    # -- sessions -----------------------------------------------------------------------------
    async def put_session(self, record: SessionRecord) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sessions "
                "(session_id, origin, fingerprint_hash, created_at, expires_at, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.session_id,
                    record.origin,
                    record.fingerprint_hash,
                    record.created_at,
                    record.expires_at,
                    json.dumps(record.metadata),
                ),
            )

        await self._run(put)

    async def get_session(self, session_id: str, now: float) -> SessionRecord | None:
        def get(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute(
                "SELECT origin, fingerprint_hash, created_at, expires_at, metadata "
                "FROM sessions WHERE session_id = ? AND expires_at > ?",
                (session_id, now),
            ).fetchone()
            if row is None:
                return None
            return SessionRecord(session_id, row[0], row[1], row[2], row[3], json.loads(row[4]))

        return await self._run(get)

    async def delete_session(self, session_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO erased_sessions (session_id, erased_at) VALUES (?, ?)",
                (session_id, time.time()),
            )
            conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM history WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM busy WHERE session_id = ?", (session_id,))
            conn.execute(
                "DELETE FROM buffer_events WHERE message_id IN "
                "(SELECT message_id FROM buffers WHERE session_id = ?)",
                (session_id,),
            )
            conn.execute("DELETE FROM buffers WHERE session_id = ?", (session_id,))
            conn.execute("COMMIT")

        await self._run(delete)
        self._wakeups.session_deleted(session_id)

    # -- history ------------------------------------------------------------------------------
    async def append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None:
        rows = _history_rows(session_id, entries)
        if not rows:
            return

        def append(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            _append_history(conn, session_id, rows)
            conn.execute("COMMIT")

        await self._run(append)

    async def history(self, session_id: str, limit: int = 200) -> list[HistoryEntry]:
        if limit <= 0:
            return []

        def read(conn: sqlite3.Connection) -> list[HistoryEntry]:
            rows = conn.execute(
                "SELECT message_id, role, text, created_at, incomplete, files FROM history "
                "WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [
                HistoryEntry(m, r, t, c, bool(i), files_of(f))
                for m, r, t, c, i, f in reversed(rows)
            ]

        return await self._run(read)

    async def purge_history(self, before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM history WHERE created_at < ?", (before,))
            return int(cur.rowcount)

        return await self._run(purge)
