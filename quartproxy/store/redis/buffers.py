"""Answer buffers (resume) in the Redis store: one stream per answer, read from any id and
followed live with XREAD BLOCK (see the package docstring for why Streams)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..base import FINAL_TYPES, BufferSlice
from .connection import RedisBase
from .wire import _PTR_KEEP, _f, _ms


class Buffers(RedisBase):
    # -- answer buffers (resume) --------------------------------------------------------------
    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        if not events:
            return
        fin = int(events[-1][1].get("type") in FINAL_TYPES)
        args: list[str | int] = [session_id, _f(now + ttl), _ms(ttl), message_id, fin]
        for seq, record in events:
            args += [seq, json.dumps(record, separators=(",", ":"))]
        k = self.keys
        self._remember(message_id, session_id)
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
