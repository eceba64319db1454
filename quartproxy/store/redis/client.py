"""The coredis clients of the Redis store, for the topology REDIS_URL names (core.redis_url):
one Redis, a Redis Cluster (coredis.RedisCluster: slot routing, MOVED/ASK, a new layout after
a failover) or the primary a Sentinel set names (coredis.Sentinel: the primary is asked again
after a failover, old connections closed).

Key names (RedisKeys) carry hash tags so that a cluster can run every script: all the keys of
one session — record, busy flag, history, answer buffers and their set, the erased marker —
share the tag `{s:<session_id>}` (one slot, so a turn's scripts stay atomic); the rate-limit
and counter keys share `{rl}` (one slot: the tiers of a request stay one atomic script, exact
across instances); the worker leases `{w}`; the history index `{h}`; the message -> session
pointer of an answer buffer `{m:<message_id>}`. The same names are used on one Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import coredis
import coredis.exceptions
import coredis.retry
from coredis.connection import TCPLocation

from ...core.redis_url import RedisTarget, parse_redis_url

# The constructors' overloads are keyed on a literal decode_responses; ours comes in **kwargs.
_CLUSTER: Any = coredis.RedisCluster
_SENTINEL: Any = coredis.Sentinel


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix may not contain { or } (Redis Cluster hash tags)")
        self.p = prefix
        self.workers = f"{prefix}{{w}}:workers"
        self.wt_prefix = f"{prefix}{{w}}:wt:"
        self.hist_idx = f"{prefix}{{h}}:hist-idx"

    def session(self, session_id: str) -> str:
        """The prefix of every key of one session (its hash tag)."""
        return f"{self.p}{{s:{session_id}}}:"

    def s(self, session_id: str, kind: str) -> str:  # sess, busy, hist, sbuf, erased
        return f"{self.p}{{s:{session_id}}}:{kind}"

    def buf(self, session_id: str, message_id: str) -> str:
        return f"{self.p}{{s:{session_id}}}:buf:{message_id}"

    def bufm(self, session_id: str, message_id: str) -> str:
        return f"{self.p}{{s:{session_id}}}:bufm:{message_id}"

    def pointer(self, message_id: str) -> str:
        return f"{self.p}{{m:{message_id}}}:sid"

    def rl(self, key: str) -> str:
        return f"{self.p}{{rl}}:rl:{key}"

    def ct(self, key: str) -> str:
        return f"{self.p}{{rl}}:ct:{key}"

    def wt(self, worker_id: str) -> str:
        return self.wt_prefix + worker_id


def _failover_retry(wait: float) -> coredis.retry.RetryPolicy:
    return coredis.retry.ConstantRetryPolicy(
        (
            coredis.exceptions.ConnectionError,
            coredis.exceptions.ClusterDownError,
            coredis.exceptions.TryAgainError,
            coredis.exceptions.ReadOnlyError,  # a demoted primary, until the pool moves on
            coredis.exceptions.PrimaryNotFoundError,
            TimeoutError,
        ),
        retries=None,
        deadline=wait,
        delay=0.25,
    )


def _tls(target: RedisTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    out: dict[str, Any] = {"ssl": True}
    out.update(target.tls_options)
    return out


@contextlib.asynccontextmanager
async def open_client(
    url: str,
    *,
    max_connections: int,
    stream_timeout: float | None,
    connect_timeout: float,
    failover_wait: float = 10.0,
) -> AsyncIterator[coredis.Redis[str] | coredis.RedisCluster[str]]:
    """One entered client for `url` (its own connection pool). In a cluster or behind Sentinel
    a command that fails because its primary is gone is tried again (every 0.25 s) for up to
    `failover_wait` seconds — the time a replica takes to be promoted — before the error
    reaches the store (StoreUnavailable). A retried write whose first reply was lost may run
    twice: the turn scripts are idempotent (seqs, the turn's own busy flag); a limit charge
    counts twice (a stricter limit, never a looser one)."""
    target = parse_redis_url(url)
    retry = coredis.retry.ConstantRetryPolicy(
        (coredis.exceptions.ConnectionError,), retries=1, delay=0.01
    )
    common: dict[str, Any] = {"decode_responses": True, "connect_timeout": connect_timeout}
    if stream_timeout is not None:
        common["stream_timeout"] = stream_timeout
    auth = {"username": target.username, "password": target.password}
    if target.kind == "single":
        client: Any = coredis.Redis.from_url(
            url, max_connections=max_connections, retry_policy=retry, **common
        )
        async with client:
            yield client
    elif target.kind == "cluster":
        cluster = _CLUSTER(
            startup_nodes=[TCPLocation(h, p) for h, p in target.nodes],
            max_connections=max_connections,
            # MOVED/ASK and a changed layout are the cluster client's own business; a dead
            # primary's slots fail until its replica is promoted: retried up to failover_wait.
            retry_policy=_failover_retry(failover_wait),
            **auth,
            **_tls(target),
            **common,
        )
        async with cluster:
            yield cluster
    else:
        sentinel_kwargs: dict[str, Any] = {"connect_timeout": connect_timeout, **_tls(target)}
        sentinel_kwargs.update(target.sentinel_auth)
        if stream_timeout is not None:
            sentinel_kwargs["stream_timeout"] = stream_timeout
        sentinel = _SENTINEL(
            [TCPLocation(h, p) for h, p in target.nodes],
            sentinel_kwargs=sentinel_kwargs,
            retry_policy=_failover_retry(failover_wait),
            db=target.db,
            **auth,
            **_tls(target),
            **common,
        )
        async with sentinel:
            primary = sentinel.primary_for(target.service, max_connections=max_connections)
            async with primary:
                yield primary


async def refresh_layout(client: Any) -> None:
    """Ask a cluster for its slots again. coredis refreshes its layout after errors reported by
    single commands, but a pipeline whose node refuses connections raises without reporting
    (coredis 6.x, ClusterPipeline._send_cluster_commands), so its retries would go to the dead
    node until some other command reported enough errors. Best effort: nodes may be down."""
    layout = client.connection_pool.cluster_layout
    with contextlib.suppress(coredis.exceptions.RedisError, OSError, TimeoutError):
        await layout.initialize()
