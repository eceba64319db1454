"""Shared fixtures. Servers are real Hypercorn instances on loopback port 0 (see support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tests.redis_server import redis_cluster, redis_sentinel  # noqa: F401 (once per run)
from tests.support import FakeN8n, Proxy, running_proxy, served, settings_for


@pytest.fixture
async def fake_n8n() -> AsyncIterator[FakeN8n]:
    fake = FakeN8n()
    async with served(fake) as url:
        fake.url = f"{url}/webhook/chat"
        yield fake


@pytest.fixture
async def proxy(fake_n8n: FakeN8n) -> AsyncIterator[Proxy]:
    """The proxy in stateless mode in front of the fake n8n."""
    async with running_proxy(settings_for(fake_n8n.url)) as p:
        yield p


@pytest.fixture
def make_proxy(fake_n8n: FakeN8n) -> Callable[..., AbstractAsyncContextManager[Proxy]]:
    """`async with make_proxy(RATE_LIMIT_IP="5/minute") as p:` — a proxy with other settings."""

    def factory(n8n_url: str | None = None, **env: Any) -> AbstractAsyncContextManager[Proxy]:
        return running_proxy(settings_for(n8n_url or fake_n8n.url, **env))

    return factory
