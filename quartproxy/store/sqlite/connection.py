"""The SQLite store's connection: opening (WAL, schema), one worker thread at a time, errors as
StoreUnavailable, the amortised sweep of expired rows, the health check. The concerns of the
store (limits.py, sessions.py, turns.py, buffers.py) are mixins over this base."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

import trio

from .._wakeups import LocalWakeups
from ..base import ERASED_KEEP, StoreUnavailable
from .schema import _SCHEMA, _file_identity, _migrate

T = TypeVar("T")
log = logging.getLogger("quartproxy.store")
_SWEEP_BUSY_MS = 250


class SqliteBase:
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
    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            # Several workers opening one new file at once: switching it to WAL takes the
            # write lock, and SQLite answers a second connection doing the same at that moment
            # "database is locked" at once, past busy_timeout (it would deadlock otherwise).
            # Tried again until busy_timeout, here in the store's thread.
            deadline = time.monotonic() + self._busy_timeout
            while True:
                try:
                    return connect_once()
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        def connect_once() -> sqlite3.Connection:
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
        try:
            return await trio.to_thread.run_sync(guarded(conn, fn), limiter=self._limiter)
        except sqlite3.DatabaseError as exc:
            raise unavailable(exc) from exc

    def _after_write(self, conn: sqlite3.Connection, now: float, writes: int = 1) -> None:
        """Amortised sweep of expired rows (called in the worker thread after a commit of
        `writes` writes: a group commit counts each of its appends).

        Best effort: the caller's write has committed, so a failing sweep (busy past the
        timeout, disk full) must neither report that write as failed nor skip the wake-up of
        its readers. It is rolled back, logged in one line and retried at the next write."""
        before, self._writes = self._writes, self._writes + writes
        if before // self._sweep_every == self._writes // self._sweep_every:
            return  # no multiple of sweep_every reached
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


def guarded(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
    """`fn(conn)` for the worker thread: a transaction it leaves open on an error is rolled
    back, so the next call starts clean."""

    def call() -> T:
        try:
            return fn(conn)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    return call


def unavailable(exc: sqlite3.DatabaseError) -> StoreUnavailable:
    """Locked past busy_timeout, disk full or I/O error, read-only or deleted file, corruption:
    the store is unavailable, never a crash of the request. The extended code
    (SQLITE_IOERR_WRITE, SQLITE_FULL, ...) tells an operator which."""
    return StoreUnavailable(
        f"SQLite: {type(exc).__name__}: {exc} ({getattr(exc, 'sqlite_errorname', '?')})"
    )
