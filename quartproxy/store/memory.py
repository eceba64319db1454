"""In-memory store for the stateless mode (one worker). Atomic because no method awaits
between reading and writing its state: trio switches tasks only at an await.

Expiry: every key of the expiring tables (limits, counters, sessions, buffers) has an entry
(expiry time, table, key) in one heap, pushed when the key is created. The writes that carry
`now` pop the entries that are due — at most `_SWEEP_STEP` per call, so no call pays for a
big sweep — and delete the key if it really expired, or push it again with its current expiry
(a limit, counter or buffer that was written since). A call with nothing due costs one look at
the heap's top.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import trio

from ..core.events import is_final_record
from ..core.limits import Decision, Rate, gcra
from ..core.turn_buffer import appendable, finish_outcome, finish_reads_from
from .base import BufferSlice, HistoryEntry, OwnedTurn, SessionRecord

# One buffered event as kept here: (seq, key, value, key, value...), not (seq, record): a tuple
# holding a dict stays tracked by the cyclic GC for ever; a tuple of strings and numbers is
# untracked by the first collection that meets it. The buffers of the last STREAM_BUFFER_SECONDS
# are the bulk of a busy worker's heap, and a full collection walked every event of them,
# stalling every stream; a finished answer's buffer becomes one plain tuple too (`_Ended`).
# bench/gc_pause.py: 75,000 buffered answers, a full collection 343 -> 6 ms of CPU.
_Kept = tuple[Any, ...]


def _keep(event: tuple[int, dict[str, Any]]) -> _Kept:
    seq, record = event
    return (seq, *chain.from_iterable(record.items()))


def _record(kept: _Kept) -> tuple[int, dict[str, Any]]:
    return kept[0], dict(zip(kept[1::2], kept[2::2], strict=True))


@dataclass(slots=True)
class _Buffer:
    session_id: str
    events: list[_Kept] | tuple[_Kept, ...] = field(default_factory=list)
    expires_at: float = math.inf
    # Made by the first buffer_wait, dropped by the append that sets it: an answer nobody waits
    # on through the store (the usual case: its client follows the live turn) has none.
    changed: trio.Event | None = None


# A finished answer's buffer: (session_id, events, expires_at). An exact tuple, not a NamedTuple
# or an object: only exact tuples are untracked by the collector (see _Kept).
_Ended = tuple[str, tuple[_Kept, ...], float]


def _parts(buf: _Buffer | _Ended) -> tuple[str, Sequence[_Kept], float]:
    """session_id, events, expires_at of either form."""
    return (buf.session_id, buf.events, buf.expires_at) if isinstance(buf, _Buffer) else buf


_TAT, _COUNTER, _SESSION, _BUFFER = range(4)  # the expiring tables, as heap entries name them
_SWEEP_STEP = 64  # due entries handled per call at most (a few keys are created per call)


class MemoryStore:
    name = "memory"
    keeps_history = False  # stateless: history lives in n8n (loadPreviousSession)

    def __init__(self, max_keys: int = 200_000) -> None:
        self._max_keys = max_keys  # bound on remembered erasures
        self._tat: dict[str, float] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._api_key_uses: dict[str, float] = {}  # bounded by the configured key ids
        self._busy: dict[str, tuple[str, float]] = {}
        self._history: dict[str, list[HistoryEntry]] = defaultdict(list)
        self._buffers: dict[str, _Buffer | _Ended] = {}
        self._erased: dict[str, None] = {}  # deleted sessions: late writes for them are dropped
        self._due: list[tuple[float, int, str]] = []  # heap of (expires_at, table, key)
        self._workers: dict[str, float] = {}  # worker id -> lease expiry
        self._owned: dict[str, dict[str, str]] = {}  # worker id -> {message id: session id}

    # -- housekeeping: expired keys leave a few at a time, so idle keys cannot pile up ---------
    def _expires(self, table: int, key: str) -> float | None:
        """The key's current expiry in `table`, None when it is gone."""
        if table == _TAT:
            return self._tat.get(key)
        if table == _COUNTER:
            counter = self._counters.get(key)
            return None if counter is None else counter[1]
        if table == _SESSION:
            rec = self._sessions.get(key)
            return None if rec is None else rec.expires_at
        buf = self._buffers.get(key)
        return None if buf is None else _parts(buf)[2]

    def _sweep(self, now: float) -> None:
        due = self._due
        for _ in range(_SWEEP_STEP):
            if not due or due[0][0] > now:
                return
            _, table, key = heapq.heappop(due)
            expires = self._expires(table, key)
            if expires is None:
                continue  # deleted meanwhile (a session, its buffers)
            if expires > now:
                heapq.heappush(due, (expires, table, key))  # renewed since: look again then
            elif table == _TAT:
                del self._tat[key]
            elif table == _COUNTER:
                del self._counters[key]
            elif table == _SESSION:
                del self._sessions[key]
            else:
                self._wake(self._buffers.pop(key))  # a waiting reader finds it gone

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        return (await self.hit_many([(key, rate)], now))[0]

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        self._sweep(now)
        tats = self._tat
        out: list[Decision] = []
        for key, rate in hits:
            old = tats.get(key)
            decision, new_tat = gcra(old, now, rate)
            out.append(decision)
            if new_tat is None:
                break  # refused: the later keys are not charged
            if old is None:
                heapq.heappush(self._due, (new_tat, _TAT, key))
            tats[key] = new_tat
        return out

    async def incr(self, key: str, ttl: float, now: float) -> int:
        return (await self.incr_many([(key, ttl)], now))[0]

    async def incr_many(self, counters: Sequence[tuple[str, float]], now: float) -> list[int]:
        self._sweep(now)
        out: list[int] = []
        for key, ttl in counters:
            current = self._counters.get(key)
            if current is None:
                count, expires = 0, now + ttl
                heapq.heappush(self._due, (expires, _COUNTER, key))
            else:
                count, expires = current
                if expires <= now:
                    count, expires = 0, now + ttl
            self._counters[key] = (count + 1, expires)
            out.append(count + 1)
        return out

    async def put_session(self, record: SessionRecord) -> None:
        if record.session_id not in self._sessions:
            heapq.heappush(self._due, (record.expires_at, _SESSION, record.session_id))
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
        for mid in [m for m, b in self._buffers.items() if _parts(b)[0] == session_id]:
            self._wake(self._buffers.pop(mid))

    @staticmethod
    def _wake(buf: _Buffer | _Ended) -> None:
        if isinstance(buf, _Buffer) and buf.changed is not None:
            buf.changed.set()

    async def acquire_turn(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        return self._acquire(session_id, message_id, ttl, now)

    def _acquire(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        held = self._busy.get(session_id)
        if held is not None and held[1] > now:
            return False
        self._busy[session_id] = (message_id, now + ttl)
        return True

    async def release_turn(self, session_id: str, message_id: str) -> None:
        self._release(session_id, message_id)

    def _release(self, session_id: str, message_id: str) -> None:
        held = self._busy.get(session_id)
        if held is not None and held[0] == message_id:
            del self._busy[session_id]

    # The composite calls are atomic like the others: their steps are plain functions.
    async def begin_turn(
        self,
        session_id: str,
        message_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        history: Sequence[HistoryEntry],
        *,
        busy_ttl: float,
        buffer_ttl: float,
        now: float,
        owner: str = "",
    ) -> bool:
        self._sweep(now)
        # Idempotent for the flag's own message, as in every store (a retry after a lost reply
        # in Redis): only the events not stored yet, and the history only with them.
        held = self._busy.get(session_id)
        again = held is not None and held[0] == message_id
        if again:
            self._busy[session_id] = (message_id, now + busy_ttl)
        elif not self._acquire(session_id, message_id, busy_ttl, now):
            if owner:  # busy: the turn does not exist, nor does its ownership (as in Redis)
                self._owned.get(owner, {}).pop(message_id, None)
            return False
        if owner:
            self._owned.setdefault(owner, {})[message_id] = session_id
            self._workers.setdefault(owner, now + busy_ttl)  # a lease even before its renewal
        added = self._buffer_append(message_id, session_id, events, buffer_ttl, now)
        if added or not again:
            self._append_history(session_id, history)
        return True

    async def finish_turn(
        self,
        session_id: str,
        message_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        history: Sequence[HistoryEntry],
        *,
        buffer_ttl: float,
        now: float,
        owner: str = "",
    ) -> list[tuple[int, dict[str, Any]]] | None:
        self._sweep(now)
        self._release(session_id, message_id)
        if owner:
            self._owned.get(owner, {}).pop(message_id, None)
        if session_id in self._erased or not events:
            return None
        buf = self._buffers.get(message_id)
        kept = () if buf is None else _parts(buf)[1]
        last = kept[-1][0] if kept else None
        start = finish_reads_from(events[0][0], last)
        tail = [] if start is None else [_record(e) for e in kept if e[0] >= start]
        outcome = finish_outcome(events, last, tail)  # see Store.finish_turn
        if outcome.write:
            self._buffer_append(message_id, session_id, outcome.write, buffer_ttl, now)
            self._append_history(session_id, history)
        return outcome.stored

    async def renew_worker(
        self, worker_id: str, turns: Sequence[tuple[str, str]], ttl: float, now: float
    ) -> list[str]:
        self._workers[worker_id] = now + ttl
        owned = self._owned.get(worker_id, {})
        lost = []
        # As in every store (Redis extends each flag in its own session's slot, apart from the
        # lease): a flag still held by a given turn is extended even when the turn is reported
        # lost; its worker then stops the turn, which releases the flag.
        for session_id, message_id in turns:
            if message_id not in owned:
                lost.append(message_id)
            held = self._busy.get(session_id)
            if held is not None and held[0] == message_id:
                self._busy[session_id] = (message_id, now + ttl)
        return lost

    async def lapsed_turns(self, now: float, limit: int = 100) -> list[OwnedTurn]:
        out: list[OwnedTurn] = []
        for worker_id, expires in list(self._workers.items()):
            if expires > now:
                continue
            owned = self._owned.get(worker_id)
            if not owned:
                del self._workers[worker_id]
                self._owned.pop(worker_id, None)
                continue
            for message_id, session_id in owned.items():
                if len(out) >= limit:
                    return out
                out.append(OwnedTurn(worker_id, session_id, message_id))
        return out

    async def append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None:
        self._append_history(session_id, entries)

    def _append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None:
        if session_id in self._erased or not entries:
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
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        self._sweep(now)
        self._buffer_append(message_id, session_id, events, ttl, now)

    def _buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> bool:
        if session_id in self._erased or not events:
            return False
        buf = self._buffers.get(message_id)
        if buf is None:
            buf = self._buffers[message_id] = _Buffer(session_id)
            heapq.heappush(self._due, (now + ttl, _BUFFER, message_id))
        elif not isinstance(buf, _Buffer):
            return False  # ended: nothing after a final event (appendable)
        last = _record(buf.events[-1]) if buf.events else None
        added = appendable(
            None if last is None else last[0], last is not None and is_final_record(last[1]), events
        )
        if not added:
            return False
        assert isinstance(buf.events, list)  # a tuple only once ended (buffer_wait)
        buf.events.extend(map(_keep, added))
        buf.expires_at = now + ttl
        if buf.changed is not None:  # someone waits (resume readers); the next wait makes another
            changed, buf.changed = buf.changed, None
            changed.set()
        if is_final_record(added[-1][1]):  # the answer is over: see _Kept
            self._buffers[message_id] = (buf.session_id, tuple(buf.events), buf.expires_at)
        return True

    async def buffer_read(self, message_id: str, after: int, now: float) -> BufferSlice | None:
        buf = self._buffers.get(message_id)
        if buf is None:
            return None
        session_id, kept, expires_at = _parts(buf)
        if expires_at <= now:
            return None
        return BufferSlice(session_id, [_record(e) for e in kept if e[0] > after])

    async def buffer_wait(self, message_id: str, after: int) -> None:
        buf = self._buffers.get(message_id)
        if buf is None:
            return
        session_id, kept, expires_at = _parts(buf)
        if kept and kept[-1][0] > after:
            return
        if not isinstance(buf, _Buffer):  # a wait at the end of an ended answer (rare): it is
            # woken by the expiry or erasure of the buffer, which needs the object form again
            buf = self._buffers[message_id] = _Buffer(session_id, buf[1], expires_at)
        if buf.changed is None:
            buf.changed = trio.Event()
        await buf.changed.wait()

    async def note_api_key_use(self, key_id: str, now: float) -> None:
        self._api_key_uses[key_id] = max(now, self._api_key_uses.get(key_id, now))

    async def api_key_uses(self, key_ids: Sequence[str]) -> dict[str, float]:
        return {k: self._api_key_uses[k] for k in key_ids if k in self._api_key_uses}

    async def forget_api_key(self, key_id: str) -> None:
        self._api_key_uses.pop(key_id, None)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
