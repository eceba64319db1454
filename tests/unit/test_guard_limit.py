"""guard.limit charges a request's tiers in ONE store call, on every backend: the first
exhausted tier answers 429 with its name and Retry-After, and the tiers after it are not
charged. An unreachable store is decided by RATE_LIMIT_FAIL_MODE."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from quartproxy import guard
from quartproxy.core.limits import Decision, Rate
from quartproxy.errors import ApiError
from quartproxy.store import MemoryStore, Store, StoreUnavailable
from tests.redis_server import redis_server  # noqa: F401 (fixture)
from tests.unit.test_store_contract import open_backend, store  # noqa: F401 (fixtures)

NOW = 1_700_000_000.0
TIERS = [
    ("ip", "1.2.3.4", Rate(2, 60)),
    ("session", "s1", Rate(1, 60)),
    ("origin", "https://a.example", Rate(3, 60)),
]


def services(backend: Store, fail_mode: str = "closed") -> Any:
    settings = SimpleNamespace(rate_limit_fail_mode=fail_mode)
    return SimpleNamespace(store=backend, clock=lambda: NOW, settings=settings)


async def refusal(svc: Any, tiers: Sequence[tuple[str, str, Rate]]) -> tuple[int, str, float]:
    with pytest.raises(ApiError) as caught:
        await guard.limit(svc, tiers)
    err = caught.value
    assert err.retry_after is not None
    return err.status, err.headers.get("X-RateLimit-Tier", ""), err.retry_after


async def test_first_exhausted_tier_refuses_and_later_tiers_are_not_charged(store: Store) -> None:  # noqa: F811
    svc = services(store)
    await guard.limit(svc, TIERS)
    assert await refusal(svc, TIERS) == (429, "session", pytest.approx(60.0))
    # the ip tier was charged by the refused request too (it comes first): now it refuses
    assert await refusal(svc, TIERS) == (429, "ip", pytest.approx(30.0))
    # the origin tier was charged once, by the first request only
    origin = await store.hit("rl:origin:https://a.example", Rate(3, 60), NOW)
    assert origin.remaining == 1
    # other keys of the same tiers are independent
    await guard.limit(svc, [("ip", "5.6.7.8", Rate(2, 60)), ("session", "s2", Rate(1, 60))])
    await guard.limit(svc, [])


class Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        self.calls += 1
        return await super().hit_many(hits, now)


async def test_all_tiers_are_one_store_call() -> None:
    counting = Counting()
    await guard.limit(services(counting), TIERS)
    assert counting.calls == 1


class Down(MemoryStore):
    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        raise StoreUnavailable("down")


async def test_unreachable_store_fails_open_or_closed() -> None:
    await guard.limit(services(Down(), "open"), TIERS)
    with pytest.raises(ApiError) as caught:
        await guard.limit(services(Down(), "closed"), TIERS)
    assert (caught.value.status, caught.value.code) == (503, "store_unavailable")


async def test_failing_open_logs_one_line_per_interval_not_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage under load: thousands of requests fail open; the log says so once per
    interval, not once per request."""
    import logging

    caplog.set_level(logging.WARNING, "quartproxy.guard")
    guard.FAIL_OPEN_LOG.reset()
    for _ in range(500):
        await guard.limit(services(Down(), "open"), TIERS)
    lines = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert len(lines) == 1
