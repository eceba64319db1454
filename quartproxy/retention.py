"""HISTORY_RETENTION_DAYS: a background task that deletes chat history older than the limit.

It runs in every worker; purging is idempotent, so several workers purging the same store only
repeat work. A store outage is logged and retried at the next round, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from .store.base import Store, StoreUnavailable

log = logging.getLogger("quartproxy.retention")


async def purge_history_forever(
    store: Store,
    retention_seconds: float,
    clock: Callable[[], float],
    every: float = 3600.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Purge now, report started, then purge every `every` seconds until cancelled."""
    first = True
    while True:
        try:
            removed = await store.purge_history(clock() - retention_seconds)
            if removed:
                log.info("retention: deleted %d history entries", removed)
        except StoreUnavailable as exc:
            log.warning("retention: store unavailable, will retry: %s", exc)
        if first:
            task_status.started()
            first = False
        await trio.sleep(every)
