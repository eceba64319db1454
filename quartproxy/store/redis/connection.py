"""The Redis store's connection: the two coredis clients (commands, and blocking XREADs),
errors as StoreUnavailable, scripts by EVALSHA, batches sent again through a failover, the
in-process message -> session cache, the health check. The concerns of the store (limits.py,
sessions.py, turns.py, buffers.py) are mixins over this base."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Self

import coredis.exceptions
import trio

from ... import metrics
from ...core.redis_url import parse_redis_url
from .._wakeups import LocalWakeups
from ..base import HistoryEntry, StoreUnavailable
from .client import RedisKeys, open_client, refresh_layout
from .scripts import SCRIPTS as _SCRIPTS
from .wire import _CAUGHT, _FAILOVER, _LT, _PTR_KEEP, _SID_CACHE, _UNAVAILABLE, _Batch, _ms


class RedisBase:
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
        self.failover_wait = failover_wait  # cluster/Sentinel: see client.open_client
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
    async def __aenter__(self) -> Self:
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

    def _index(self, pipe: _Batch, session_id: str, history: Sequence[HistoryEntry]) -> None:
        # Queued before the write it indexes: a session in the index without old entries is
        # harmless (the purge drops it), the converse would keep history past retention.
        if history:
            oldest = min(e.created_at for e in history)
            pipe.add("zadd", self.keys.hist_idx, {session_id: oldest}, comparison=_LT)

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
