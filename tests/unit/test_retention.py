"""HISTORY_RETENTION_DAYS: the background purge keeps recent history and drops the old."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from quartproxy.retention import purge_history_forever
from quartproxy.store import HistoryEntry
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
