"""Sessions and their history in the Redis store: the record, erasure (with the answers it
held), appends, reads and the retention purge through the `{h}` index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..base import ERASED_KEEP, HistoryEntry, SessionRecord
from .connection import RedisBase
from .wire import _LT, _f, _history_item, _ms


class Sessions(RedisBase):
    # -- sessions -----------------------------------------------------------------------------
    async def put_session(self, record: SessionRecord) -> None:
        data = json.dumps(
            {
                "origin": record.origin,
                "fp": record.fingerprint_hash,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "metadata": record.metadata,
            }
        )
        with self._errors():
            await self._client.set(
                self.keys.s(record.session_id, "sess"),
                data,
                px=_ms(record.expires_at - record.created_at),
            )

    async def get_session(self, session_id: str, now: float) -> SessionRecord | None:
        with self._errors():
            raw = await self._client.get(self.keys.s(session_id, "sess"))
        if raw is None:
            return None
        d = json.loads(raw)
        if d["expires_at"] <= now:
            return None
        return SessionRecord(
            session_id, d["origin"], d["fp"], d["created_at"], d["expires_at"], d["metadata"]
        )

    async def delete_session(self, session_id: str) -> None:
        k = self.keys
        with self._errors():
            async with self._pipeline() as pipe:
                pipe.script(
                    "delete_session",
                    [k.s(session_id, n) for n in ("sess", "hist", "busy", "sbuf", "erased")],
                    [k.session(session_id), int(ERASED_KEEP)],
                )
                pipe.add("zrem", k.hist_idx, [session_id])
        self._wakeups.session_deleted(session_id)

    # -- history ------------------------------------------------------------------------------
    async def append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None:
        if not entries:
            return
        k = self.keys
        with self._errors():
            async with self._pipeline() as pipe:
                self._index(pipe, session_id, entries)
                pipe.script(
                    "hist_append",
                    [k.s(session_id, "hist"), k.s(session_id, "erased")],
                    [_history_item(e) for e in entries],
                )

    async def history(self, session_id: str, limit: int = 200) -> list[HistoryEntry]:
        if limit <= 0:
            return []
        with self._errors():
            raws = await self._client.lrange(self.keys.s(session_id, "hist"), -limit, -1)
        out = []
        for raw in raws:
            d = json.loads(raw)
            files = tuple((n, t, int(s)) for n, t, s in d.get("f", ()))
            out.append(HistoryEntry(d["m"], d["r"], d["t"], d["c"], bool(d.get("i")), files))
        return out

    async def _purge_one(self, session_id: str, before: float) -> tuple[int, str | None]:
        reply: Any = await self._run(
            "hist_purge_one", [self.keys.s(session_id, "hist")], [_f(before)]
        )
        return int(reply[0]), (str(reply[1]) if reply[1] else None)

    async def purge_history(self, before: float) -> int:
        removed = 0
        index = self.keys.hist_idx
        with self._errors():
            while True:
                # Each visited session leaves the range (removed, or its score moves to an entry
                # at or after `before`), so this loop ends.
                # "(x" is Redis' exclusive bound (coredis types it as a number; it sends text)
                upper: Any = f"({_f(before)}"
                sids: Any = await self._client.zrangebyscore(
                    index, float("-inf"), upper, offset=0, count=100
                )
                if not sids:
                    return removed
                for sid in map(str, sids):
                    n, oldest = await self._purge_one(sid, before)
                    removed += n
                    if oldest is not None:
                        await self._client.zadd(index, {sid: float(oldest)})
                        continue
                    # The list and the index are in different slots: an entry appended between
                    # the purge and this removal is looked for again and re-indexed.
                    await self._client.zrem(index, [sid])
                    n, oldest = await self._purge_one(sid, before)
                    removed += n
                    if oldest is not None:
                        await self._client.zadd(index, {sid: float(oldest)}, comparison=_LT)
