"""API keys' last use in the SQLite store (one small table, one row per key id)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .connection import SqliteBase


class ApiKeys(SqliteBase):
    async def note_api_key_use(self, key_id: str, now: float) -> None:
        def note(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO api_key_uses (key_id, last_used) VALUES (?, ?) ON CONFLICT (key_id) "
                "DO UPDATE SET last_used = max(last_used, excluded.last_used)",
                (key_id, now),
            )

        await self._run(note)

    async def api_key_uses(self, key_ids: Sequence[str]) -> dict[str, float]:
        wanted = list(key_ids)

        def read(conn: sqlite3.Connection) -> dict[str, float]:
            rows = conn.execute("SELECT key_id, last_used FROM api_key_uses").fetchall()
            return {k: float(t) for k, t in rows if k in wanted}

        return await self._run(read)

    async def forget_api_key(self, key_id: str) -> None:
        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM api_key_uses WHERE key_id = ?", (key_id,))

        await self._run(forget)
