"""Store backends, chosen once from DEPLOYMENT_MODE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..config import Settings
from .base import Store, StoreUnavailable
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreUnavailable", "open_store"]


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The backend for `settings.deployment_mode`, open for the life of the block."""
    if settings.deployment_mode == "stateless":
        store = MemoryStore()
        try:
            yield store
        finally:
            await store.aclose()
        return
    raise NotImplementedError(f"{settings.deployment_mode} mode is not available yet")
