"""HISTORY_RETENTION_DAYS: the background purge keeps recent history and drops the old."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from quartproxy.retention import purge_history_forever
from quartproxy.store import HistoryEntry, StoreUnavailable
from quartproxy.store.sqlite import SqliteStore

NOW = 1_700_000_000.0
DAY = 86400.0


async def test_purges_at_start_and_then_every_interval(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    now = [NOW]
    async with SqliteStore(tmp_path / "r.db") as store:
        await store.append_history("s", [
            HistoryEntry("m1", "user", "old", NOW - 31 * DAY),
            HistoryEntry("m2", "user", "recent", NOW - 29 * DAY),
        ])  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(purge_history_forever, store, 30 * DAY, lambda: now[0], 3600.0)
            assert [e.text for e in await store.history("s")] == ["recent"]
            now[0] += 2 * DAY  # "recent" is now 31 days old
            mock_clock.jump(3600.0)  # the next round is due
            # the purge task wakes and holds the store's worker thread before this returns, so
            # the read below runs after the purge (the store serialises its calls)
            await trio.testing.wait_all_tasks_blocked()
            assert await store.history("s") == []
            nursery.cancel_scope.cancel()


class FlakyStore:
    """purge_history fails with errors the store did not map (a Redis ResponseError, a
    sqlite3.DatabaseError, a bug), then works."""

    keeps_history = True

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def purge_history(self, before: float) -> int:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return 0


async def test_a_failing_purge_never_takes_down_the_tasks_beside_it(
    mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from quartproxy import metrics

    store = FlakyStore([sqlite3.DatabaseError("database disk image is malformed"),
                        RuntimeError("unexpected"), StoreUnavailable("down")])  # fmt: skip
    counted = metrics.STORE_ERRORS.labels("retention")
    before = counted._value.get()
    turn_finished = trio.Event()

    async def a_live_turn() -> None:
        await trio.sleep(5 * 3600.0)
        turn_finished.set()

    caplog.set_level(logging.WARNING, "quartproxy.retention")
    async with trio.open_nursery() as nursery:  # as in the app: the turns' nursery
        nursery.start_soon(a_live_turn)
        await nursery.start(purge_history_forever, store, 30 * DAY, lambda: NOW, 3600.0)
        for _ in range(3):
            mock_clock.jump(3600.0)
            await trio.testing.wait_all_tasks_blocked()
        assert store.calls == 4  # failed three times, retried every interval
        mock_clock.jump(2 * 3600.0)
        await trio.testing.wait_all_tasks_blocked()
        assert turn_finished.is_set()  # the turn beside it lived to its end
        nursery.cancel_scope.cancel()
    lines = [r for r in caplog.records if r.name == "quartproxy.retention"]
    assert len(lines) == 3 and all(r.exc_info is None for r in lines)  # one line each
    assert "DatabaseError" in lines[0].getMessage()
    assert counted._value.get() - before == 3
