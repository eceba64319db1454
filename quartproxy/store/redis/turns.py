"""Turns in the Redis store: the busy flag (one answer in flight per session), a turn's first
and last write (one script each on the session's slot), and the worker leases (core.leases,
docs/turn-leases.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..base import HistoryEntry, OwnedTurn
from .connection import RedisBase
from .wire import _NX, _PTR_KEEP, _f, _history_item, _ms


class Turns(RedisBase):
    # -- one answer in flight per session -----------------------------------------------------
    async def acquire_turn(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        with self._errors():
            ok: Any = await self._run(
                "acquire", [self.keys.s(session_id, "busy")], [message_id, _f(now), _f(ttl)]
            )
        return bool(int(ok))

    async def release_turn(self, session_id: str, message_id: str) -> None:
        with self._errors():
            await self._run("release", [self.keys.s(session_id, "busy")], [message_id])

    def _turn_keys(self, session_id: str, message_id: str) -> list[str]:
        k = self.keys
        return [
            k.s(session_id, "busy"),
            k.bufm(session_id, message_id),
            k.buf(session_id, message_id),
            k.s(session_id, "sbuf"),
            k.s(session_id, "erased"),
            k.s(session_id, "hist"),
        ]

    def _turn_args(
        self,
        session_id: str,
        message_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        history: Sequence[HistoryEntry],
        busy_ttl: float,
        buffer_ttl: float,
        now: float,
        owner: str,
    ) -> list[str | int]:
        oldest = min((e.created_at for e in history), default=now)
        args: list[str | int] = [
            message_id,
            session_id,
            _f(now),
            _f(busy_ttl),
            _f(now + buffer_ttl),
            _ms(buffer_ttl),
            _f(oldest),
            len(history),
            owner,
        ]
        args += [_history_item(e) for e in history]
        for seq, record in events:
            args += [seq, json.dumps(record, separators=(",", ":"))]
        return args

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
        args = self._turn_args(
            session_id, message_id, events, history, busy_ttl, buffer_ttl, now, owner
        )
        k = self.keys
        self._remember(message_id, session_id)
        with self._errors(), self._pointer_unsure(message_id):
            async with self._pipeline() as pipe:
                if self._pointer_due(message_id, now):
                    pipe.add("set", k.pointer(message_id), session_id, px=_ms(_PTR_KEEP))
                self._index(pipe, session_id, history)
                if owner:
                    # the turn's owner: its lease exists even before its first renewal
                    pipe.add("hset", k.wt(owner), {message_id: session_id})
                    pipe.add("pexpire", k.wt(owner), 86_400_000)
                    pipe.add("zadd", k.workers, {owner: now + busy_ttl}, condition=_NX)
                begun = pipe.script("begin", self._turn_keys(session_id, message_id), args)
            last = int(begun[0])
            if last == -2 and owner:  # busy: the turn does not exist, nor does its ownership
                await self._client.hdel(k.wt(owner), [message_id])
        if last >= 0:
            self._wakeups.appended(message_id, session_id, last, now + buffer_ttl, now)
        return last != -2

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
        args = self._turn_args(session_id, message_id, events, history, 0.0, buffer_ttl, now, owner)
        k = self.keys
        self._remember(message_id, session_id)
        with self._errors():
            async with self._pipeline() as pipe:
                self._index(pipe, session_id, history)
                finished = pipe.script("finish", self._turn_keys(session_id, message_id), args)
                if owner:
                    pipe.add("hdel", k.wt(owner), [message_id])
                if events:  # the pointer lives as long as the buffer after its last event
                    pipe.add("set", k.pointer(message_id), session_id, px=_ms(buffer_ttl))
            reply: Any = finished[0]
        last, flat = int(reply[0]), reply[1]
        if last >= 0:
            self._wakeups.appended(message_id, session_id, last, now + buffer_ttl, now)
        if not flat:
            return None
        return [(int(flat[i]), json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]

    # -- worker leases ------------------------------------------------------------------------
    async def renew_worker(
        self, worker_id: str, turns: Sequence[tuple[str, str]], ttl: float, now: float
    ) -> list[str]:
        """The lease and the worker's turn list are one script (the `{w}` slot); each busy flag
        is extended by a script of its own session's slot, in the same pipeline: atomic per
        session, not across sessions (a flag extended for a turn found lost in the same call is
        a flag its orphan sweep releases)."""
        k = self.keys
        exp = _f(now + ttl)
        with self._errors():
            async with self._pipeline() as pipe:
                renewed = pipe.script(
                    "renew",
                    [k.workers, k.wt(worker_id)],
                    [worker_id, exp, *(mid for _, mid in turns)],
                )
                for session_id, message_id in turns:
                    pipe.script("extend", [k.s(session_id, "busy")], [message_id, exp, _ms(ttl)])
            lost: Any = renewed[0]
        return [str(mid) for mid in lost]

    async def lapsed_turns(self, now: float, limit: int = 100) -> list[OwnedTurn]:
        with self._errors():
            flat: Any = await self._run(
                "lapsed", [self.keys.workers], [_f(now), limit, self.keys.wt_prefix]
            )
        return [
            OwnedTurn(str(flat[i]), str(flat[i + 1]), str(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
