"""Rate limits (GCRA, core/limits.py) and expiring counters of the Redis store: all the tiers
of a request in one script on the `{rl}` slot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.limits import Decision, Rate, tolerance
from .connection import RedisBase
from .wire import _f


class Limits(RedisBase):
    # -- rate limits and counters -------------------------------------------------------------
    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        return (await self.hit_many([(key, rate)], now))[0]

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        if not hits:
            return []
        args: list[str | int] = [_f(now)]
        for _, rate in hits:
            args += [_f(rate.interval), _f(rate.period), rate.count, _f(tolerance(rate))]
        with self._errors():
            reply: Any = await self._run("gcra", [self.keys.rl(key) for key, _ in hits], args)
        return [
            Decision(bool(int(allowed)), float(retry_after), int(remaining))
            for allowed, retry_after, remaining in reply
        ]

    async def incr(self, key: str, ttl: float, now: float) -> int:
        return (await self.incr_many([(key, ttl)], now))[0]

    async def incr_many(self, counters: Sequence[tuple[str, float]], now: float) -> list[int]:
        if not counters:
            return []
        with self._errors():
            reply: Any = await self._run(
                "incr",
                [self.keys.ct(key) for key, _ in counters],
                [_f(now), *(_f(ttl) for _, ttl in counters)],
            )
        return [int(n) for n in reply]
