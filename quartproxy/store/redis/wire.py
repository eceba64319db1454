"""What the Redis store's modules share below the store itself: the errors that mean "the
store is not there" or "a primary is gone", number encoding for the scripts, history items as
JSON, and a batch of commands to send together (RedisBase._pipeline)."""

from __future__ import annotations

import json
import math
from typing import Any

import coredis.exceptions
from coredis.tokens import PureToken

from ..base import ERASED_KEEP, HistoryEntry

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
    if e.files:
        item["f"] = e.files
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
