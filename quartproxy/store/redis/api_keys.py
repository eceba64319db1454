"""API keys' last use in the Redis store: one sorted set key id -> last use (`{k}` slot),
written with ZADD GT so a worker noting an older use never moves it back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coredis.tokens import PureToken

from .connection import RedisBase


class ApiKeys(RedisBase):
    def _uses_key(self) -> str:
        return f"{self.keys.p}{{k}}:api-key-uses"

    async def note_api_key_use(self, key_id: str, now: float) -> None:
        with self._errors():
            await self._client.zadd(self._uses_key(), {key_id: now}, comparison=PureToken.GT)

    async def api_key_uses(self, key_ids: Sequence[str]) -> dict[str, float]:
        wanted = list(key_ids)
        if not wanted:
            return {}
        with self._errors():
            scores: Any = await self._client.zmscore(self._uses_key(), wanted)
        return {k: float(s) for k, s in zip(wanted, scores, strict=True) if s is not None}

    async def forget_api_key(self, key_id: str) -> None:
        with self._errors():
            await self._client.zrem(self._uses_key(), [key_id])
