"""Rate limits (GCRA, core/limits.py) and expiring counters of the SQLite store: every tier
of a request in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...core.limits import Decision, Rate, gcra
from .connection import SqliteBase


class Limits(SqliteBase):
    # -- rate limits and counters -------------------------------------------------------------
    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        return (await self.hit_many([(key, rate)], now))[0]

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        if not hits:
            return []

        def step(conn: sqlite3.Connection) -> list[Decision]:
            conn.execute("BEGIN IMMEDIATE")  # write lock before the read: one decision at a time
            out: list[Decision] = []
            for key, rate in hits:
                row = conn.execute("SELECT tat FROM rate_limits WHERE key = ?", (key,)).fetchone()
                decision, new_tat = gcra(None if row is None else row[0], now, rate)
                out.append(decision)
                if new_tat is None:
                    break  # refused: the later keys are not charged
                conn.execute(
                    "INSERT INTO rate_limits (key, tat) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                    (key, new_tat),
                )
            conn.execute("COMMIT")
            self._after_write(conn, now)
            return out

        return await self._run(step)

    async def incr(self, key: str, ttl: float, now: float) -> int:
        return (await self.incr_many([(key, ttl)], now))[0]

    async def incr_many(self, counters: Sequence[tuple[str, float]], now: float) -> list[int]:
        if not counters:
            return []

        def step(conn: sqlite3.Connection) -> list[int]:
            conn.execute("BEGIN IMMEDIATE")
            out: list[int] = []
            for key, ttl in counters:
                row = conn.execute(
                    "INSERT INTO counters (key, count, expires_at) VALUES (?, 1, ?) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN expires_at <= ? THEN 1 ELSE count + 1 END, "
                    "expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at "
                    "ELSE expires_at END "
                    "RETURNING count",
                    (key, now + ttl, now, now),
                ).fetchone()
                out.append(int(row[0]))
            conn.execute("COMMIT")
            self._after_write(conn, now)
            return out

        return await self._run(step)
