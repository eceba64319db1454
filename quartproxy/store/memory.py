"""In-memory store for the stateless mode (one worker). Atomic because no method awaits
between reading and writing its state: trio switches tasks only at an await."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from ..core.limits import Decision, Rate, gcra
from .base import BufferSlice, HistoryEntry, SessionRecord


@dataclass
class _Buffer:
    session_id: str
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    expires_at: float = math.inf
    # Made by the first buffer_wait, dropped by the append that sets it: an answer nobody waits
    # on through the store (the usual case: its client follows the live turn) has none.
    changed: trio.Event | None = None


class MemoryStore:
    name = "memory"
    keeps_history = False  # stateless: history lives in n8n (loadPreviousSession)

    def __init__(self, max_keys: int = 200_000) -> None:
        self._max_keys = max_keys
        self._tat: dict[str, float] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._busy: dict[str, tuple[str, float]] = {}
        self._history: dict[str, list[HistoryEntry]] = defaultdict(list)
        self._buffers: dict[str, _Buffer] = {}
        self._erased: dict[str, None] = {}  # deleted sessions: late writes for them are dropped
        self._ops = 0

    # -- housekeeping: amortised sweep so idle keys cannot grow without bound ------------------
    def _sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % 1024 and len(self._tat) < self._max_keys:
            return
        self._tat = {k: v for k, v in self._tat.items() if v > now}
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v.expires_at > now}
        self._buffers = {k: v for k, v in self._buffers.items() if v.expires_at > now}

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        self._sweep(now)
        decision, new_tat = gcra(self._tat.get(key), now, rate)
        if new_tat is not None:
            self._tat[key] = new_tat
        return decision

    async def incr(self, key: str, ttl: float, now: float) -> int:
        count, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + ttl
        self._counters[key] = (count + 1, expires)
        return count + 1

    async def put_session(self, record: SessionRecord) -> None:
        self._sessions[record.session_id] = record

    async def get_session(self, session_id: str, now: float) -> SessionRecord | None:
        rec = self._sessions.get(session_id)
        return rec if rec is not None and rec.expires_at > now else None

    async def delete_session(self, session_id: str) -> None:
        self._erased[session_id] = None
        while len(self._erased) > self._max_keys:
            del self._erased[next(iter(self._erased))]
        self._sessions.pop(session_id, None)
        self._history.pop(session_id, None)
        self._busy.pop(session_id, None)
        for mid in [m for m, b in self._buffers.items() if b.session_id == session_id]:
            buf = self._buffers.pop(mid)
            if buf.changed is not None:
                buf.changed.set()

    async def acquire_turn(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        held = self._busy.get(session_id)
        if held is not None and held[1] > now:
            return False
        self._busy[session_id] = (message_id, now + ttl)
        return True

    async def release_turn(self, session_id: str, message_id: str) -> None:
        held = self._busy.get(session_id)
        if held is not None and held[0] == message_id:
            del self._busy[session_id]

    async def append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None:
        if session_id in self._erased:
            return
        self._history[session_id].extend(entries)

    async def history(self, session_id: str, limit: int = 200) -> list[HistoryEntry]:
        if limit <= 0:
            return []
        return list(self._history.get(session_id, ())[-limit:])

    async def purge_history(self, before: float) -> int:
        removed = 0
        for sid in list(self._history):
            kept = [e for e in self._history[sid] if e.created_at >= before]
            removed += len(self._history[sid]) - len(kept)
            if kept:
                self._history[sid] = kept
            else:
                del self._history[sid]
        return removed

    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        seq: int,
        record: dict[str, Any],
        ttl: float,
        now: float,
    ) -> None:
        if session_id in self._erased:
            return
        buf = self._buffers.get(message_id)
        if buf is None:
            buf = self._buffers[message_id] = _Buffer(session_id)
        if buf.events and buf.events[-1][0] >= seq:
            return  # idempotent: a replayed append changes nothing
        buf.events.append((seq, record))
        buf.expires_at = now + ttl
        if buf.changed is not None:  # someone waits (resume readers); the next wait makes another
            changed, buf.changed = buf.changed, None
            changed.set()

    async def buffer_read(self, message_id: str, after: int, now: float) -> BufferSlice | None:
        buf = self._buffers.get(message_id)
        if buf is None or buf.expires_at <= now:
            return None
        return BufferSlice(buf.session_id, [e for e in buf.events if e[0] > after])

    async def buffer_wait(self, message_id: str, after: int) -> None:
        buf = self._buffers.get(message_id)
        if buf is None or (buf.events and buf.events[-1][0] > after):
            return
        if buf.changed is None:
            buf.changed = trio.Event()
        await buf.changed.wait()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
