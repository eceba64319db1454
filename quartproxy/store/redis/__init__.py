"""Redis store for the `production` mode: shared by every worker and instance.

coredis (>= 6, RESP3, anyio) runs under trio. The client owns an anyio task group, so the store
must be entered (`async with RedisStore(url) as store`) by a long-lived task — see
`store.open_store` and `app.own_services`: one task started with `app.nursery.start` enters it,
hands it over through `task_status.started`, and leaves it when `after_serving` sets an event
(entering in `before_serving` and leaving in `after_serving` misnests the nurseries).

Keys (all under `prefix`, default "qp:"), with the hash tags that make every script run on one
Redis Cluster slot (RedisKeys in client.py; one Redis and Sentinel use the same):
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
- `{k}:api-key-uses` sorted set API key id -> its last use (ZADD GT: never moves back).
- `{w}:workers` sorted set worker id -> lease expiry; `{w}:wt:<wid>` hash message id ->
  session id: the running turns of that worker (core.leases, docs/turn-leases.md).
- Writes to several slots (a turn's index, pointer and owner entries beside its session's
  script) go as one pipeline (`_pipeline`): one round trip on one Redis, one per node in a
  cluster; atomic per command, not across them (docs/topologies.md says what that means).
- Buffer appends of several answers (streamed deltas) that arrive while one round trip of
  appends is in flight go together in the next, as one `buf_append_many` script over all their
  slots: on one Redis and behind Sentinel only (no slots there); a cluster sends each append
  alone (buffers.py says why).

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
a write whose primary is gone is sent again until `failover_wait` (client.open_client,
_pipeline).

Split by concern: client.py (the coredis clients, key names), scripts.py and turn_scripts.py
(the Lua), wire.py (errors, encoding, batches), connection.py (lifecycle, scripts, pipelines,
the health check), limits.py, sessions.py (with history), turns.py (busy flag, start and
finish, worker leases), buffers.py (resume).
"""

from __future__ import annotations

from .api_keys import ApiKeys
from .buffers import Buffers
from .client import RedisKeys
from .limits import Limits
from .sessions import Sessions
from .turns import Turns

__all__ = ["RedisKeys", "RedisStore"]


class RedisStore(Limits, Sessions, Turns, Buffers, ApiKeys):
    """The Store protocol (store/base.py) on one Redis, a Redis Cluster or a Sentinel set."""
