"""The amortised sweep of expired rows runs after a write has committed: its failure (a busy
timeout, a full disk) must not turn that committed write into StoreUnavailable, nor skip the
local wake-up of the readers waiting for it. Later writes retry the sweep."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import trio

from quartproxy.store.sqlite import SqliteStore

NOW = 1_700_000_000.0


def deny_sweep(conn: sqlite3.Connection) -> None:
    """A real SQLite error inside the sweep only: its DELETEs are refused by an authorizer."""

    def authorizer(action: int, table: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_DELETE and table == "rate_limits":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorizer)


async def test_failed_sweep_keeps_the_committed_write_and_wakes_readers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SqliteStore(tmp_path / "s.db", sweep_every=1) as store:
        assert store._conn is not None
        deny_sweep(store._conn)
        caplog.set_level(logging.WARNING, "quartproxy.store")
        woke = trio.Event()

        async def reader() -> None:
            await store.buffer_wait("m1", 0)
            woke.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            # committed, then the sweep fails: the call still succeeds ...
            await store.buffer_append("m1", "s1", [(1, {"type": "start"})], 300, NOW)
            with trio.fail_after(5):
                await woke.wait()  # ... and the local reader was woken
        got = await store.buffer_read("m1", 0, NOW)
        assert got is not None and [seq for seq, _ in got.events] == [1]
        sweep_logs = [r for r in caplog.records if "sweep" in r.getMessage()]
        assert len(sweep_logs) == 1 and sweep_logs[0].exc_info is None
        # the next writes still work (and the sweep is retried, failing quietly again)
        await store.buffer_append("m1", "s1", [(2, {"type": "end"})], 300, NOW)
        await store.incr("c", 60, NOW)
        assert (await store.buffer_read("m1", 1, NOW)).events[0][0] == 2  # type: ignore[union-attr]


async def test_sweep_is_retried_after_a_failure(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db", sweep_every=1000) as store:
        assert store._conn is not None
        await store.hit("old", __import__("quartproxy.core.limits").core.limits.Rate(1, 1), NOW)
        deny_sweep(store._conn)
        store._writes = 999  # the next write sweeps
        await store.incr("c", 60, NOW + 100)
        store._conn.set_authorizer(None)
        for _ in range(1000 // 16):  # retried soon, not 1000 writes later
            await store.incr("c", 60, NOW + 100)

        def rows(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT count(*) FROM rate_limits").fetchone()[0])

        assert await store._run(rows) == 0
