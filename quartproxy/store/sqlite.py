"""SQLite store for the `sqlite` mode: one file, survives restarts, safe for several processes.

- stdlib `sqlite3`, one connection per store used by one worker thread at a time
  (`trio.to_thread.run_sync` with a CapacityLimiter of 1), so the event loop never blocks on disk.
- WAL journal + `synchronous=NORMAL`: a committed transaction survives a crash or `kill -9` of
  the process (only an OS crash or power loss can lose the last commits). Every buffer event is
  committed before `buffer_append` returns, so an event a client has seen is on disk.
- One call, one transaction (one thread hop, one commit): `buffer_append` writes all the events
  of one upstream read, `hit_many` charges all the limit tiers of a request, `incr_many` the
  screening counters, `begin_turn` takes the busy flag and writes the Start event and the
  question, `finish_turn` writes the final event and the answer and releases the flag.
- Read-modify-write (the GCRA step, counters, the busy flag, idempotent appends) runs in one
  `BEGIN IMMEDIATE` transaction: the write lock is taken before the read, so several processes
  on one file decide exactly (busy_timeout makes them queue instead of failing).
- `secure_delete=ON`: erased sessions are overwritten with zeros in the database file.
- SQLite has no change notifications: `buffer_wait` for an answer written by another process
  polls every `poll_interval` seconds; answers written by this process wake waiters at once
  (see _wakeups.py).
- Expired rows (limits, counters, sessions, buffers) are swept every few thousand writes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..core.events import is_final_record
from ..core.limits import Decision, Rate, gcra
from ..core.turn_buffer import appendable, finish_outcome, finish_reads_from
from ._wakeups import LocalWakeups
from .base import (
    ERASED_KEEP,
    BufferSlice,
    HistoryEntry,
    OwnedTurn,
    SessionRecord,
    StoreUnavailable,
)

T = TypeVar("T")
log = logging.getLogger("quartproxy.store")
_SWEEP_BUSY_MS = 250

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY, tat REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, origin TEXT NOT NULL, fingerprint_hash TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, metadata TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS busy (
    session_id TEXT PRIMARY KEY, message_id TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, message_id TEXT NOT NULL,
    role TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_session ON history (session_id, id);
CREATE INDEX IF NOT EXISTS history_by_time ON history (created_at);
CREATE TABLE IF NOT EXISTS buffers (
    message_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, expires_at REAL NOT NULL,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buffers_by_session ON buffers (session_id);
CREATE TABLE IF NOT EXISTS erased_sessions (
    session_id TEXT PRIMARY KEY, erased_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS turn_owners (
    message_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, worker_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS turn_owners_by_worker ON turn_owners (worker_id);
CREATE TABLE IF NOT EXISTS buffer_events (
    message_id TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Inside the schema transaction: columns added since the first release of the schema."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    if "incomplete" not in columns:
        conn.execute("ALTER TABLE history ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0")


def _ended(conn: sqlite3.Connection, message_id: str, last: int) -> bool:
    """Whether the buffer's last event (seq `last`) is final."""
    row = conn.execute(
        "SELECT record FROM buffer_events WHERE message_id = ? AND seq = ?", (message_id, last)
    ).fetchone()
    return row is not None and is_final_record(json.loads(row[0]))


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
    conn.executemany(
        "INSERT OR REPLACE INTO buffer_events (message_id, seq, record) VALUES (?, ?, ?)", rows
    )
    conn.execute(
        "INSERT INTO buffers (message_id, session_id, expires_at, last_seq) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
        "expires_at = excluded.expires_at, last_seq = excluded.last_seq",
        (message_id, session_id, expires_at, last),
    )
    return last


_HistoryRow = tuple[str, str, str, str, float, int]


def _history_rows(session_id: str, entries: Sequence[HistoryEntry]) -> list[_HistoryRow]:
    return [
        (session_id, e.message_id, e.role, e.text, e.created_at, int(e.incomplete)) for e in entries
    ]


def _append_history(conn: sqlite3.Connection, session_id: str, rows: Sequence[_HistoryRow]) -> None:
    """Inside a write transaction."""
    if rows and not _erased(conn, session_id):
        conn.executemany(
            "INSERT INTO history (session_id, message_id, role, text, created_at, incomplete) "
            "VALUES (?, ?, ?, ?, ?, ?)",
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


class SqliteStore:
    name = "sqlite"
    keeps_history = True

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 10.0,
        poll_interval: float = 0.1,
        sweep_every: int = 2048,
    ) -> None:
        self.path = str(path)
        self._busy_timeout = busy_timeout
        self._poll_interval = poll_interval
        self._sweep_every = sweep_every
        self._conn: sqlite3.Connection | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._wakeups = LocalWakeups()
        self._writes = 0
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            # isolation_level=None: no implicit transactions; we BEGIN explicitly.
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreUnavailable(f"SQLite refused WAL mode (got {mode}); local disk?")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("PRAGMA foreign_keys = OFF")
                # executescript commits anything pending first, so the BEGIN goes inside it
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
                _migrate(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            self._conn = await trio.to_thread.run_sync(connect, limiter=self._limiter)
            self._identity = await trio.to_thread.run_sync(_file_identity, self.path)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database: {exc}") from exc

    async def aclose(self) -> None:
        self._wakeups.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await trio.to_thread.run_sync(conn.close, limiter=self._limiter)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("SQLite store is closed")

        def call() -> T:
            try:
                return fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise

        try:
            return await trio.to_thread.run_sync(call, limiter=self._limiter)
        except sqlite3.DatabaseError as exc:
            # locked past busy_timeout, disk full or I/O error, read-only or deleted file,
            # corruption: the store is unavailable, never a crash of the request
            raise StoreUnavailable(f"SQLite: {type(exc).__name__}: {exc}") from exc

    def _after_write(self, conn: sqlite3.Connection, now: float) -> None:
        """Amortised sweep of expired rows (called in the worker thread after a commit).

        Best effort: the caller's write has committed, so a failing sweep (busy past the
        timeout, disk full) must neither report that write as failed nor skip the wake-up of
        its readers. It is rolled back, logged in one line and retried at the next write."""
        self._writes += 1
        if self._writes % self._sweep_every:
            return
        try:
            # a sweep never waits long for the write lock: it holds this store's only
            # connection (every other call of the worker queues behind it)
            conn.execute(f"PRAGMA busy_timeout = {_SWEEP_BUSY_MS}")
            try:
                self._sweep(conn, now)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            self._writes -= max(1, self._sweep_every // 16)  # due again soon, not every write
            log.warning("sqlite: sweep of expired rows failed, will retry: %s", exc)

    @staticmethod
    def _sweep(conn: sqlite3.Connection, now: float) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM rate_limits WHERE tat <= ?", (now,))
        conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM busy WHERE expires_at <= ?", (now,))
        conn.execute(
            "DELETE FROM buffer_events WHERE message_id IN "
            "(SELECT message_id FROM buffers WHERE expires_at <= ?)",
            (now,),
        )
        conn.execute("DELETE FROM buffers WHERE expires_at <= ?", (now,))
        conn.execute(
            "DELETE FROM erased_sessions WHERE erased_at <= ?", (time.time() - ERASED_KEEP,)
        )
        conn.execute("COMMIT")

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
                if owned is None:
                    lost.append(message_id)
                    continue
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
                "SELECT message_id, role, text, created_at, incomplete FROM history "
                "WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [HistoryEntry(m, r, t, c, bool(i)) for m, r, t, c, i in reversed(rows)]

        return await self._run(read)

    async def purge_history(self, before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM history WHERE created_at < ?", (before,))
            return int(cur.rowcount)

        return await self._run(purge)

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

    async def ping(self) -> None:
        identity = self._identity

        def check(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT 1").fetchone()
            # A database file deleted (or replaced) under a running gateway keeps working
            # through the open descriptor, and everything written from then on is lost at
            # the next start: /health must say so while it can still be fixed.
            if identity is not None and _file_identity(self.path) != identity:
                raise sqlite3.OperationalError("the database file was deleted or replaced")

        await self._run(check)
