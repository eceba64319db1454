"""Redis store for the `production` mode: shared by every worker and instance.

coredis (>= 6, RESP3, anyio) runs under trio. The client owns an anyio task group, so the store
must be entered (`async with RedisStore(url) as store`) by a long-lived task — see
`store.open_store` and `app.own_services`: one task started with `app.nursery.start` enters it,
hands it over through `task_status.started`, and leaves it when `after_serving` sets an event
(entering in `before_serving` and leaving in `after_serving` misnests the nurseries).

Keys (all under `prefix`, default "qp:"), with the hash tags that make every script run on one
Redis Cluster slot (RedisKeys in store/redis_client.py; one Redis and Sentinel use the same):
- `{rl}:rl:<key>` string: the GCRA theoretical arrival time, decided by ONE Lua script that
  charges all the tiers of a request in one round trip; `{rl}:ct:<key>` hash {n, exp}:
  fixed-window counters. All limit keys share the `{rl}` slot, so the tiers of one request
  (ip, session, origin) stay one atomic script, exact across workers and instances; in a
  cluster that slot's primary takes every limit decision (one script per request).
- Per session, tag `{s:<sid>}`: `:sess` (JSON SessionRecord), `:busy` hash {mid, exp}
  (compare-and-set), `:hist` list of JSON entries oldest first, `:buf:<mid>` stream of answer
  events (entry id `<seq>-1`, fields s=seq, r=JSON record), `:bufm:<mid>` hash {sid, exp, last,
  fin}, `:sbuf` set of the session's message ids (erasure), `:erased` (a day: appends for a
  deleted session are dropped, so an answer still running elsewhere cannot write it back).
  A turn's first write (busy flag, Start event, question) and last write (final event,
  answer, release) are one script each on that slot (`begin_turn`, `finish_turn`).
- `{m:<mid>}:sid` string: which session an answer belongs to, for readers that know only the
  message id (resume); written by the batch of the turn's first write, cached in process.
- `{h}:hist-idx` sorted set sid -> oldest created_at, so the retention purge visits only
  sessions that have old entries; written before the history it indexes (same batch).
- `{w}:workers` sorted set worker id -> lease expiry; `{w}:wt:<wid>` hash message id ->
  session id: the running turns of that worker (core.leases, docs/turn-leases.md).
- Writes to several slots (a turn's index, pointer and owner entries beside its session's
  script) go as one pipeline (`_pipeline`): one round trip on one Redis, one per node in a
  cluster; atomic per command, not across them (docs/topologies.md says what that means).

Why Streams for answer buffers: one primitive gives both replay-from-id (XRANGE) and
live-follow (XREAD BLOCK from the last id seen), without a window between "read what exists"
and "subscribe" that pub/sub would have, and it works from any worker. A reader in the process
that writes the answer waits on an in-process event instead (no Redis connection held).
Each XREAD BLOCK holds one connection of a separate pool (`blocking_connections`) for at most
`block_seconds`; then it returns (a spurious wake-up the caller tolerates).

Time: every method takes `now` from the caller (tests control the clock) and logical expiry is
compared against it inside the scripts; Redis TTLs (PEXPIRE) only garbage-collect keys. So
workers and instances must have synchronised clocks (NTP): a host whose clock is off by d
seconds shifts its own limit decisions by d.

Errors: connection refused/reset/timeouts and every error reply (OOM, READONLY, script errors)
become StoreUnavailable; callers decide whether to fail open or closed (RATE_LIMIT_FAIL_MODE),
and the app answers what is left with `503 store_unavailable`. In a cluster or behind Sentinel
a write whose primary is gone is sent again until `failover_wait` (redis_client.open_client,
_pipeline).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import coredis.exceptions
import trio
from coredis.tokens import PureToken

from .. import metrics
from ..core.limits import Decision, Rate, tolerance
from ..core.redis_url import parse_redis_url
from ._wakeups import LocalWakeups
from .base import (
    ERASED_KEEP,
    FINAL_TYPES,
    BufferSlice,
    HistoryEntry,
    OwnedTurn,
    SessionRecord,
    StoreUnavailable,
)
from .redis_client import RedisKeys, open_client, refresh_layout
from .redis_scripts import SCRIPTS as _SCRIPTS

# A primary gone (a failover under way): a batch is sent again (RedisStore._pipeline).
_FAILOVER: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.ClusterDownError,
    coredis.exceptions.TryAgainError,
    coredis.exceptions.ReadOnlyError,
    coredis.exceptions.PrimaryNotFoundError,
    TimeoutError,
    OSError,
)

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError,  # includes BusyLoadingError and ProtocolError
    coredis.exceptions.ReadOnlyError,
    # a cluster between layouts (failover in progress, nodes disagreeing, a slot without a
    # primary) or Sentinel without a primary to name
    coredis.exceptions.RedisClusterError,
    coredis.exceptions.SentinelError,
    # every error reply: OOM under maxmemory/noeviction, READONLY, a failing script, MISCONF
    # (a failed background save): the store cannot do what was asked
    coredis.exceptions.RedisError,
    TimeoutError,
    OSError,
)


_LT = PureToken.LT
_NX = PureToken.NX
_SID_CACHE = 65_536  # message -> session pairs kept in process
# A message's pointer key (message id -> session id) is written once a day by a process that
# appends to its buffer, and lives as long as the buffer once the answer has ended.
_PTR_KEEP = ERASED_KEEP


_CAUGHT: tuple[type[BaseException], ...] = (coredis.exceptions.RedisError, *_UNAVAILABLE)


def _f(x: float) -> str:
    return repr(float(x))  # shortest exact round-trip text


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _history_item(e: HistoryEntry) -> str:
    item: dict[str, Any] = {"m": e.message_id, "r": e.role, "t": e.text, "c": e.created_at}
    if e.incomplete:
        item["i"] = 1
    return json.dumps(item)


class _Batch:
    """Commands to send together (see RedisStore._pipeline); each result is the one item of the
    list its queueing call returns, once the batch has run."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, tuple[Any, ...], dict[str, Any], list[Any]]] = []

    def add(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        self.queued.append((method, args, kwargs, out))
        return out

    def script(self, name: str, keys: list[str], args: list[str | int]) -> list[Any]:
        return self.add("", name, keys, args)


class RedisStore:
    name = "redis"
    keeps_history = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "qp:",
        max_connections: int = 64,
        blocking_connections: int = 256,
        block_seconds: float = 4.0,
        connect_timeout: float = 2.0,
        stream_timeout: float = 5.0,
        failover_wait: float = 10.0,
    ) -> None:
        self.url = url
        self.failover_wait = failover_wait  # cluster/Sentinel: see redis_client.open_client
        self.prefix = prefix
        self.keys = RedisKeys(prefix)
        self._kind = parse_redis_url(url).kind
        self._block_ms = _ms(block_seconds)
        self._pool_args = (max_connections, blocking_connections, connect_timeout, stream_timeout)
        self._client: Any = None
        # XREAD BLOCK holds its connection for the whole wait: a pool of its own, so waiting
        # readers can never starve limit decisions of connections.
        self._blocking: Any = None
        # message id -> session id of the answers this process has seen (immutable pairs), so a
        # buffer is found without asking the pointer key again; and when it wrote the pointer.
        self._sids: OrderedDict[str, str] = OrderedDict()
        self._pointed: OrderedDict[str, float] = OrderedDict()
        self._wakeups = LocalWakeups()
        self._stack: contextlib.AsyncExitStack | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> RedisStore:
        max_conn, blocking, connect, stream = self._pool_args
        async with contextlib.AsyncExitStack() as stack:
            # Entering does not connect: a Redis that is down at start-up makes the store
            # degraded (ping fails), not the process dead.
            self._client = await stack.enter_async_context(
                open_client(
                    self.url,
                    max_connections=max_conn,
                    stream_timeout=stream,
                    connect_timeout=connect,
                    failover_wait=self.failover_wait,
                )
            )
            self._blocking = await stack.enter_async_context(
                open_client(
                    self.url,
                    max_connections=blocking,
                    stream_timeout=None,
                    connect_timeout=connect,
                    failover_wait=self.failover_wait,
                )
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._wakeups.clear()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def _run(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        text, sha = _SCRIPTS[name]
        try:
            return await self._client.evalsha(sha, keys=keys, args=args)
        except coredis.exceptions.NoScriptError:
            # this node has not seen it (first use, restart, a promoted replica): EVAL caches it
            return await self._client.eval(text, keys=keys, args=args)

    @contextlib.asynccontextmanager
    async def _pipeline(self) -> AsyncIterator[_Batch]:
        """Commands sent together. Not a transaction: on one Redis one round trip, in order; in
        a cluster one batch per node, nodes in the order of their first command. Each command
        is atomic on its own. Scripts go as EVALSHA (coredis' own pipeline script loading asks
        every node and fails while one is down, so it is not used). In a cluster or behind
        Sentinel a batch that fails because a primary is gone is sent again, whole, until
        `failover_wait` has passed (coredis retries single commands, not pipelines): every
        batch the store sends is idempotent, but for append_history's entries."""
        batch = _Batch()
        yield batch
        deadline = trio.current_time() + self.failover_wait
        while True:
            try:
                await self._send(batch)
                return
            except _FAILOVER:
                if self._kind == "single" or trio.current_time() >= deadline:
                    raise
            metrics.store_failover_retry()
            await trio.sleep(0.25)  # a retry interval while a replica is promoted
            if self._kind == "cluster":
                await refresh_layout(self._client)

    async def _send(self, batch: _Batch) -> None:
        if len(batch.queued) == 1 and not batch.queued[0][0]:  # one script: no pipeline
            _, args, _, out = batch.queued[0]
            out[:] = [await self._run(*args)]
            return
        reqs = []
        async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
            for method, args, kwargs, _ in batch.queued:
                if method:
                    reqs.append(getattr(pipe, method)(*args, **kwargs))
                else:
                    name, keys, argv = args
                    reqs.append(pipe.evalsha(_SCRIPTS[name][1], keys=keys, args=argv))
        results: list[Any] = []
        for req, (method, args, _, _) in zip(reqs, batch.queued, strict=True):
            try:
                result = await req
            except _CAUGHT as exc:
                result = exc
            if isinstance(result, coredis.exceptions.NoScriptError) and not method:
                try:
                    result = await self._run(*args)
                except _CAUGHT as exc:
                    result = exc
            results.append(result)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        for (_, _, _, out), result in zip(batch.queued, results, strict=True):
            out[:] = [result]

    def _remember(self, message_id: str, session_id: str) -> None:
        self._sids[message_id] = session_id
        self._sids.move_to_end(message_id)
        while len(self._sids) > _SID_CACHE:
            self._sids.popitem(last=False)

    def _pointer_due(self, message_id: str, now: float) -> bool:
        """Whether this process should (re)write the message's pointer key."""
        at = self._pointed.get(message_id)
        if at is not None and now - at < _PTR_KEEP / 2:
            return False
        self._pointed[message_id] = now
        self._pointed.move_to_end(message_id)
        while len(self._pointed) > _SID_CACHE:
            self._pointed.popitem(last=False)
        return True

    @contextlib.contextmanager
    def _pointer_unsure(self, message_id: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._pointed.pop(message_id, None)  # written or not: write it again next time
            raise

    async def _session_of(self, message_id: str) -> str | None:
        sid = self._sids.get(message_id)
        if sid is None:
            with self._errors():
                sid = await self._client.get(self.keys.pointer(message_id))
            if sid is not None:
                self._remember(message_id, sid)
        return sid

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

    def _index(self, pipe: _Batch, session_id: str, history: Sequence[HistoryEntry]) -> None:
        # Queued before the write it indexes: a session in the index without old entries is
        # harmless (the purge drops it), the converse would keep history past retention.
        if history:
            oldest = min(e.created_at for e in history)
            pipe.add("zadd", self.keys.hist_idx, {session_id: oldest}, comparison=_LT)

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
            out.append(HistoryEntry(d["m"], d["r"], d["t"], d["c"], bool(d.get("i"))))
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

    async def ping(self) -> None:
        """In a cluster every primary must answer. Bounded: a failover under way shows as a
        failed check at once (/health degraded), not as a health check waiting it out."""
        with trio.move_on_after(self._pool_args[2]) as bound:
            try:
                await self._client.ping()
            except Exception as exc:  # a health check: whatever fails, the store is not there
                if self._kind == "cluster":  # the next check asks the nodes a fresh layout has
                    await refresh_layout(self._client)
                raise StoreUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        if bound.cancelled_caught:
            raise StoreUnavailable(f"Redis: no answer to PING within {self._pool_args[2]:g} s")
