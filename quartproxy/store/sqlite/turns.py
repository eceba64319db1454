"""A turn in the SQLite store: the busy flag (one answer in flight per session), its start and
finish in one transaction each, and the worker leases that own running turns."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ...core.turn_buffer import finish_outcome, finish_reads_from
from ..base import HistoryEntry, OwnedTurn
from .connection import SqliteBase
from .rows import (
    _ACQUIRE,
    _HELD,
    _RELEASE,
    _RENEW_OWN,
    _append_events,
    _append_history,
    _encode,
    _erased,
    _history_rows,
    _last_seq,
    _own,
)


class Turns(SqliteBase):
    # -- one answer in flight per session -----------------------------------------------------
    async def acquire_turn(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        def acquire(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(_ACQUIRE, (session_id, message_id, now + ttl, now)).fetchone()
            conn.execute("COMMIT")
            return row is not None

        return await self._run(acquire)

    async def release_turn(self, session_id: str, message_id: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute(_RELEASE, (session_id, message_id))

        await self._run(release)

    async def begin_turn(
        self,
        session_id: str,
        message_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        history: Sequence[HistoryEntry],
        *,
        busy_ttl: float,
        buffer_ttl: float,
        now: float,
        owner: str = "",
    ) -> bool:
        encoded = _encode(events)
        rows = _history_rows(session_id, history)

        def begin(conn: sqlite3.Connection) -> tuple[bool, int | None]:
            conn.execute("BEGIN IMMEDIATE")
            # Idempotent for the flag's own message, as in every store (a retry after a lost
            # reply in Redis): only the events not stored yet, and the history only with them.
            held = conn.execute(_HELD, (session_id,)).fetchone()
            again = held is not None and held[0] == message_id
            if again:
                row = conn.execute(_RENEW_OWN, (now + busy_ttl, session_id)).fetchone()
            else:
                args = (session_id, message_id, now + busy_ttl, now)
                row = conn.execute(_ACQUIRE, args).fetchone()
            if row is None:
                if owner:  # busy: the turn does not exist, nor does its ownership (as in Redis)
                    conn.execute(
                        "DELETE FROM turn_owners WHERE message_id = ? AND worker_id = ?",
                        (message_id, owner),
                    )
                conn.execute("COMMIT")
                return False, None
            if owner:
                _own(conn, owner, session_id, message_id, now + busy_ttl)
            last = _append_events(conn, message_id, session_id, encoded, now + buffer_ttl)
            if last is not None or not again:
                _append_history(conn, session_id, rows)
            conn.execute("COMMIT")  # durable before the Start event reaches any client
            self._after_write(conn, now)
            return True, last

        acquired, last = await self._run(begin)
        if last is not None:
            self._wakeups.appended(message_id, session_id, last, now + buffer_ttl, now)
        return acquired

    async def finish_turn(
        self,
        session_id: str,
        message_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        history: Sequence[HistoryEntry],
        *,
        buffer_ttl: float,
        now: float,
        owner: str = "",
    ) -> list[tuple[int, dict[str, Any]]] | None:
        rows = _history_rows(session_id, history)

        def finish(
            conn: sqlite3.Connection,
        ) -> tuple[int | None, list[tuple[int, dict[str, Any]]] | None]:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_RELEASE, (session_id, message_id))
            if owner:
                conn.execute(
                    "DELETE FROM turn_owners WHERE message_id = ? AND worker_id = ?",
                    (message_id, owner),
                )
            if not events or _erased(conn, session_id):
                conn.execute("COMMIT")
                return None, None
            last = _last_seq(conn, message_id)
            start = finish_reads_from(events[0][0], last)
            tail = []
            if start is not None:
                tail = [
                    (int(seq), json.loads(data))
                    for seq, data in conn.execute(
                        "SELECT seq, record FROM buffer_events WHERE message_id = ? AND seq >= ? "
                        "ORDER BY seq",
                        (message_id, start),
                    )
                ]
            outcome = finish_outcome(events, last, tail)  # see Store.finish_turn
            added = None
            if outcome.write:
                encoded = _encode(outcome.write)
                added = _append_events(conn, message_id, session_id, encoded, now + buffer_ttl)
                _append_history(conn, session_id, rows)
            conn.execute("COMMIT")  # durable before the final event reaches any client
            if outcome.write:
                self._after_write(conn, now)
            return added, outcome.stored

        added, stored = await self._run(finish)
        if added is not None:
            self._wakeups.appended(message_id, session_id, added, now + buffer_ttl, now)
        return stored

    # -- worker leases ------------------------------------------------------------------------
    async def renew_worker(
        self, worker_id: str, turns: Sequence[tuple[str, str]], ttl: float, now: float
    ) -> list[str]:
        def renew(conn: sqlite3.Connection) -> list[str]:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO workers (worker_id, expires_at) VALUES (?, ?) "
                "ON CONFLICT (worker_id) DO UPDATE SET expires_at = excluded.expires_at",
                (worker_id, now + ttl),
            )
            lost = []
            for session_id, message_id in turns:
                owned = conn.execute(
                    "SELECT 1 FROM turn_owners WHERE message_id = ? AND worker_id = ?",
                    (message_id, worker_id),
                ).fetchone()
                if owned is None:  # still extended, as in every store (memory.py says why)
                    lost.append(message_id)
                conn.execute(
                    "UPDATE busy SET expires_at = ? WHERE session_id = ? AND message_id = ?",
                    (now + ttl, session_id, message_id),
                )
            conn.execute("COMMIT")
            return lost

        return await self._run(renew)

    async def lapsed_turns(self, now: float, limit: int = 100) -> list[OwnedTurn]:
        def lapsed(conn: sqlite3.Connection) -> list[OwnedTurn]:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT w.worker_id, o.session_id, o.message_id FROM workers w "
                "JOIN turn_owners o ON o.worker_id = w.worker_id "
                "WHERE w.expires_at <= ? LIMIT ?",
                (now, limit),
            ).fetchall()
            conn.execute(
                "DELETE FROM workers WHERE expires_at <= ? AND NOT EXISTS "
                "(SELECT 1 FROM turn_owners o WHERE o.worker_id = workers.worker_id)",
                (now,),
            )
            conn.execute("COMMIT")
            return [OwnedTurn(str(w), str(s), str(m)) for w, s, m in rows]

        return await self._run(lapsed)
