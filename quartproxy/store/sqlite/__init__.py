"""SQLite store for the `sqlite` mode: one file, survives restarts, safe for several processes.

- stdlib `sqlite3`, one connection per store used by one worker thread at a time
  (`trio.to_thread.run_sync` with a CapacityLimiter of 1), so the event loop never blocks on disk.
- WAL journal + `synchronous=NORMAL`: a committed transaction survives a crash or `kill -9` of
  the process (only an OS crash or power loss can lose the last commits). Every buffer event is
  committed before `buffer_append` returns, so an event a client has seen is on disk.
- One call, one transaction (one thread hop, one commit): `hit_many` charges all the limit
  tiers of a request, `incr_many` the screening counters, `begin_turn` takes the busy flag and
  writes the Start event and the question, `finish_turn` writes the final event and the answer
  and releases the flag. `buffer_append` (all the events of one upstream read) is group
  committed (group.py): the appends of every answer that arrive while a transaction runs go
  together in the next one, and each returns once its own is committed.
- Read-modify-write (the GCRA step, counters, the busy flag, idempotent appends) runs in one
  `BEGIN IMMEDIATE` transaction: the write lock is taken before the read, so several processes
  on one file decide exactly (busy_timeout makes them queue instead of failing).
- `secure_delete=ON`: erased sessions are overwritten with zeros in the database file.
- SQLite has no change notifications: `buffer_wait` for an answer written by another process
  polls every `poll_interval` seconds; answers written by this process wake waiters at once
  (see store/_wakeups.py).
- Expired rows (limits, counters, sessions, buffers) are swept every few thousand writes.

Split by concern: schema.py (tables, migrations), connection.py (opening, the worker thread,
the sweep), limits.py, sessions.py (with history), turns.py (busy flag, start and finish,
worker leases), buffers.py (resume), group.py (the group commit of buffer appends),
api_keys.py (their last use), rows.py (row helpers inside a transaction).
"""

from __future__ import annotations

from .api_keys import ApiKeys
from .buffers import Buffers
from .limits import Limits
from .sessions import Sessions
from .turns import Turns

__all__ = ["SqliteStore"]


class SqliteStore(Limits, Sessions, Turns, Buffers, ApiKeys):
    """The Store protocol (store/base.py) on one SQLite file."""
