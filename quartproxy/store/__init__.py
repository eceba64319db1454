"""The store, chosen once from DEPLOYMENT_MODE.

`open_store(settings)` is an async context manager. The Redis client owns an anyio task group,
so the app must enter it inside a long-lived task, not in before_serving/after_serving:

    async def own_store(*, task_status=trio.TASK_STATUS_IGNORED):
        async with open_store(settings) as store:
            task_status.started(store)
            await stopping.wait()          # an event set in after_serving

    store = await app.nursery.start(own_store)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .base import (
    BufferSlice,
    HistoryEntry,
    OwnedTurn,
    SessionRecord,
    Store,
    StoreUnavailable,
)
from .memory import MemoryStore

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "BufferSlice",
    "HistoryEntry",
    "MemoryStore",
    "OwnedTurn",
    "SessionRecord",
    "Store",
    "StoreUnavailable",
    "open_store",
]


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    mode = settings.deployment_mode
    if mode == "stateless":
        memory = MemoryStore()
        try:
            yield memory
        finally:
            await memory.aclose()
    elif mode == "sqlite":
        from .sqlite import SqliteStore

        async with SqliteStore(settings.sqlite_path) as sqlite_store:
            yield sqlite_store
    elif mode == "production":
        from .redis import RedisStore

        async with RedisStore(
            settings.redis_url, failover_wait=settings.redis_failover_wait_seconds
        ) as redis_store:
            yield redis_store
    else:  # pragma: no cover - Settings validates the mode
        raise ValueError(f"unknown deployment mode {mode!r}")
