"""HISTORY_RETENTION_DAYS: a background task that deletes chat history older than the limit.

It runs in every worker; purging is idempotent, so several workers purging the same store only
repeat work. It runs in the turns' nursery, so an exception escaping it would cancel every
live answer of the worker: any failure (an outage, an error the store did not map, a bug) is
logged in one line, counted (quartproxy_store_errors_total{where="retention"}) and retried
at the next round, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from . import metrics
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
        except Exception as exc:  # any failure: see the module doc
            metrics.store_error("retention")
            what = "store unavailable" if isinstance(exc, StoreUnavailable) else "purge failed"
            log.warning("retention: %s, will retry: %s: %s", what, type(exc).__name__, exc)
        if first:
            task_status.started()
            first = False
        await trio.sleep(every)
