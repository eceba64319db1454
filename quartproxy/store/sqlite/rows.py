"""Row helpers of the SQLite store, each run inside a write transaction of its caller: the
buffer's appendable events, history rows, the busy flag's SQL, turn ownership. The rules they
apply are core/turn_buffer.py's (shared with the memory store and, in Lua, Redis)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...core.events import is_final_record
from ...core.turn_buffer import appendable
from ..base import HistoryEntry


def _ended(conn: sqlite3.Connection, message_id: str, last: int) -> bool:
    """Whether the buffer's last event (seq `last`) is final."""
    row = conn.execute(
        "SELECT record FROM buffer_events WHERE message_id = ? AND seq = ?", (message_id, last)
    ).fetchone()
    return row is not None and is_final_record(json.loads(row[0]))


def _erased(conn: sqlite3.Connection, session_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM erased_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return row is not None


def _encode(events: Sequence[tuple[int, dict[str, Any]]]) -> list[tuple[int, str]]:
    return [(seq, json.dumps(record, separators=(",", ":"))) for seq, record in events]


def _last_seq(conn: sqlite3.Connection, message_id: str) -> int | None:
    row = conn.execute(
        "SELECT last_seq FROM buffers WHERE message_id = ?", (message_id,)
    ).fetchone()
    return None if row is None else int(row[0])


def _append_events(
    conn: sqlite3.Connection,
    message_id: str,
    session_id: str,
    encoded: Sequence[tuple[int, str]],
    expires_at: float,
) -> int | None:
    """Inside a write transaction: add the events not yet in the buffer (seq above its last);
    the new last seq, None when nothing was added (only replays, or an erased session)."""
    last = _last_seq(conn, message_id)
    ended = last is not None and _ended(conn, message_id, last)
    rows = [(message_id, seq, data) for seq, data in appendable(last, ended, encoded)]
    if not rows or _erased(conn, session_id):
        return None
    last = rows[-1][1]
    conn.executemany(_INSERT_EVENTS, rows)
    conn.execute(_UPSERT_BUFFER, (message_id, session_id, expires_at, last))
    return last


_INSERT_EVENTS = "INSERT OR REPLACE INTO buffer_events (message_id, seq, record) VALUES (?, ?, ?)"
_UPSERT_BUFFER = (
    "INSERT INTO buffers (message_id, session_id, expires_at, last_seq) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
    "expires_at = excluded.expires_at, last_seq = excluded.last_seq"
)


@dataclass(frozen=True, slots=True)
class Append:
    """One buffer_append call waiting for its group's transaction."""

    message_id: str
    session_id: str
    encoded: list[tuple[int, str]]
    finals: frozenset[int]  # the seqs of its final events (FINAL_TYPES)
    expires_at: float
    now: float


def _append_group(conn: sqlite3.Connection, appends: Sequence[Append]) -> list[int | None]:
    """Inside a write transaction: `_append_events` of each append, in order, with the same
    results as those calls one after the other (a later append of an answer sees the earlier
    ones: its last seq, whether it ended), but one read of the buffers' state and one write per
    table for the whole group instead of five statements per append."""
    mids = json.dumps(list({a.message_id: None for a in appends}))
    state: dict[str, tuple[int, bool]] = {}  # message id -> (last seq, last event is final)
    for mid, last, record in conn.execute(
        "SELECT b.message_id, b.last_seq, e.record FROM buffers b LEFT JOIN buffer_events e "
        "ON e.message_id = b.message_id AND e.seq = b.last_seq "
        "WHERE b.message_id IN (SELECT value FROM json_each(?))",
        (mids,),
    ):
        state[mid] = (int(last), record is not None and is_final_record(json.loads(record)))
    sids = json.dumps(list({a.session_id: None for a in appends}))
    erased = {
        sid
        for (sid,) in conn.execute(
            "SELECT session_id FROM erased_sessions "
            "WHERE session_id IN (SELECT value FROM json_each(?))",
            (sids,),
        )
    }
    events: list[tuple[str, int, str]] = []
    heads: list[tuple[str, str, float, int]] = []
    lasts: list[int | None] = []
    for a in appends:
        last, ended = state.get(a.message_id, (None, False))
        rows = appendable(last, ended, a.encoded)
        if not rows or a.session_id in erased:
            lasts.append(None)
            continue
        new = rows[-1][0]
        state[a.message_id] = (new, new in a.finals)
        events.extend((a.message_id, seq, data) for seq, data in rows)
        heads.append((a.message_id, a.session_id, a.expires_at, new))
        lasts.append(new)
    if events:
        conn.executemany(_INSERT_EVENTS, events)
        conn.executemany(_UPSERT_BUFFER, heads)
    return lasts


_HistoryRow = tuple[str, str, str, str, float, int, str]


def _history_rows(session_id: str, entries: Sequence[HistoryEntry]) -> list[_HistoryRow]:
    return [
        (
            session_id,
            e.message_id,
            e.role,
            e.text,
            e.created_at,
            int(e.incomplete),
            json.dumps(e.files) if e.files else "",
        )
        for e in entries
    ]


def files_of(column: str) -> tuple[tuple[str, str, int], ...]:
    return tuple((n, t, int(s)) for n, t, s in json.loads(column)) if column else ()


def _append_history(conn: sqlite3.Connection, session_id: str, rows: Sequence[_HistoryRow]) -> None:
    """Inside a write transaction."""
    if rows and not _erased(conn, session_id):
        conn.executemany(
            "INSERT INTO history "
            "(session_id, message_id, role, text, created_at, incomplete, files) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


_ACQUIRE = (
    "INSERT INTO busy (session_id, message_id, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (session_id) DO UPDATE SET "
    "message_id = excluded.message_id, expires_at = excluded.expires_at "
    "WHERE busy.expires_at <= ? RETURNING message_id"
)
_RELEASE = "DELETE FROM busy WHERE session_id = ? AND message_id = ?"
_HELD = "SELECT message_id FROM busy WHERE session_id = ?"
_RENEW_OWN = (  # the flag is this message's already (begin_turn run again): extend it
    "UPDATE busy SET expires_at = ? WHERE session_id = ? RETURNING message_id"
)


def _own(
    conn: sqlite3.Connection, owner: str, session_id: str, message_id: str, expires_at: float
) -> None:
    """Inside a write transaction: the turn is `owner`'s; the worker has a lease even before
    its first renewal."""
    conn.execute(
        "INSERT OR REPLACE INTO turn_owners (message_id, session_id, worker_id) VALUES (?, ?, ?)",
        (message_id, session_id, owner),
    )
    conn.execute(
        "INSERT OR IGNORE INTO workers (worker_id, expires_at) VALUES (?, ?)", (owner, expires_at)
    )
