"""Answer buffers (resume) in the Redis store: one stream per answer, read from any id and
followed live with XREAD BLOCK (see the package docstring for why Streams).

Appends of several answers go in one round trip on one Redis and behind Sentinel: appends that
arrive while a round trip is in flight queue, and the next round trip carries all of them as one
`buf_append_many` script (GroupCommit, store/group.py: first caller leads, no timer, each
caller gets its own outcome, a failed round trip fails every caller of its group with
StoreUnavailable; a call cancelled while queued wrote nothing, one whose group was taken waits
for its outcome). In a Redis Cluster each append keeps its own round trip (`_append_alone`):
the answers of a group live in slots of different nodes, so one script cannot carry them, and a
pipeline over several nodes would make every answer wait for — and fail with — the slowest or
dead node of its group during a failover, where today only the answers of that node do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import outcome
import trio

from ...core.events import is_final_record
from ..base import BufferSlice, StoreUnavailable
from ..group import GroupCommit
from .connection import RedisBase
from .wire import _PTR_KEEP, _UNAVAILABLE, _f, _ms


@dataclass(slots=True)
class _Append:
    """One caller's append, encoded for buf_append_many (scripts.py): its 5 keys, its header
    and events; what LocalWakeups needs once it is stored."""

    message_id: str
    session_id: str
    keys: list[str]
    args: list[str | int]
    expires_at: float
    now: float


def _ends(events: Sequence[tuple[int, dict[str, Any]]]) -> int:
    """1 when the append ends its answer if it adds anything: what it adds last is the first
    event with the highest seq (core.turn_buffer.appendable keeps only rising seqs), so that is
    the event whose type counts, not the batch's last one (a replay may follow it)."""
    top = max(events, key=lambda e: e[0])  # the first of equal maxima
    return int(is_final_record(top[1]))


def _unavailable(text: str, cause: BaseException | None = None) -> StoreUnavailable:
    error = StoreUnavailable(text)
    error.__cause__ = cause
    return error


class Buffers(RedisBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One round trip of appends in flight at a time (the group's "worker"); the commands
        # client's other calls do not take it.
        self._group_limiter = trio.CapacityLimiter(1)
        self._group: GroupCommit[_Append, int] = GroupCommit(self._group_limiter, self._write_group)

    # -- answer buffers (resume) --------------------------------------------------------------
    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        """Stored before it returns; on one Redis or Sentinel in one round trip with the
        appends of other answers that arrived meanwhile (the module docstring)."""
        if not events:
            return
        self._remember(message_id, session_id)
        if self._kind == "cluster":
            await self._append_alone(message_id, session_id, events, ttl, now)
            return
        k = self.keys
        fin = _ends(events)
        with self._pointer_unsure(message_id):
            ptr_px = _ms(max(ttl, _PTR_KEEP)) if self._pointer_due(message_id, now) else 0
            args: list[str | int] = [
                len(events),
                session_id,
                _f(now + ttl),
                _ms(ttl),
                message_id,
                fin,
                ptr_px,
            ]
            for seq, record in events:
                args += [seq, json.dumps(record, separators=(",", ":"))]
            keys = [
                k.bufm(session_id, message_id),
                k.buf(session_id, message_id),
                k.s(session_id, "sbuf"),
                k.s(session_id, "erased"),
                k.pointer(message_id),
            ]
            await self._group.submit(_Append(message_id, session_id, keys, args, now + ttl, now))

    async def _write_group(self, batch: list[_Append]) -> list[outcome.Outcome[int]]:
        """One script call for every append of the group, in their order (per answer, the
        order of its calls); run by the group's leader, shielded."""
        keys: list[str] = []
        args: list[str | int] = []
        for a in batch:
            keys += a.keys
            args += a.args
        try:
            async with self._pipeline() as pipe:  # the failover retries of a batch
                out = pipe.script("buf_append_many", keys, args)
            replies: Any = out[0]
        except _UNAVAILABLE as exc:  # the round trip failed: every caller of the group is told
            text = f"Redis: {type(exc).__name__}: {exc}"
            return [outcome.Error(_unavailable(text, exc)) for _ in batch]
        results: list[outcome.Outcome[int]] = []
        for a, reply in zip(batch, replies, strict=True):
            if isinstance(reply, str):  # this append's own error (pcall in the script)
                results.append(outcome.Error(_unavailable(f"Redis: {reply}")))
                continue
            last = int(reply)
            if last >= 0:
                self._wakeups.appended(a.message_id, a.session_id, last, a.expires_at, a.now)
            results.append(outcome.Value(last))
        return results

    async def _append_alone(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        """One append in its own round trip (a cluster: the module docstring says why)."""
        fin = _ends(events)
        args: list[str | int] = [session_id, _f(now + ttl), _ms(ttl), message_id, fin]
        for seq, record in events:
            args += [seq, json.dumps(record, separators=(",", ":"))]
        k = self.keys
        with self._errors(), self._pointer_unsure(message_id):
            async with self._pipeline() as pipe:
                if self._pointer_due(message_id, now):
                    ptr = k.pointer(message_id)
                    pipe.add("set", ptr, session_id, px=_ms(max(ttl, _PTR_KEEP)))
                appended = pipe.script(
                    "buf_append",
                    [
                        k.bufm(session_id, message_id),
                        k.buf(session_id, message_id),
                        k.s(session_id, "sbuf"),
                        k.s(session_id, "erased"),
                    ],
                    args,
                )
            last: Any = appended[0]
        if int(last) >= 0:
            self._wakeups.appended(message_id, session_id, int(last), now + ttl, now)

    async def buffer_read(self, message_id: str, after: int, now: float) -> BufferSlice | None:
        first = f"{after + 1}-0" if after >= -1 else "-"
        session_id = await self._session_of(message_id)
        if session_id is None:
            return None
        k = self.keys
        with self._errors():
            reply: Any = await self._run(
                "buf_read",
                [k.bufm(session_id, message_id), k.buf(session_id, message_id)],
                [_f(now), first],
            )
        if not reply:
            return None
        sid, flat = reply
        events = [(int(flat[i]), json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]
        return BufferSlice(str(sid), events)

    async def buffer_wait(self, message_id: str, after: int) -> None:
        local = self._wakeups.local_event(message_id, after)
        if local is not None:
            await local.wait()
            return
        session_id = await self._session_of(message_id)
        if session_id is None:
            return  # no such buffer: the caller's next read says so
        # Written by another worker: block on the stream from the last id seen. XREAD BLOCK
        # returns as soon as an entry after that id exists (including one appended between the
        # caller's read and this call), or after block_seconds (spurious, allowed).
        last_id = f"{after}-1" if after >= 0 else "0-0"
        with self._errors():
            await self._blocking.xread(
                {self.keys.buf(session_id, message_id): last_id}, count=1, block=self._block_ms
            )
