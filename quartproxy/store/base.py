"""The Store protocol: everything the gateway keeps, behind one small interface.

Three backends implement it — memory (stateless mode), SQLite (one file), Redis (production,
many workers) — and pass one shared test suite (tests/unit/test_store_contract.py). It is chosen
once at start-up (`store.open_store`); no handler knows which one it talks to.

Every method is atomic on its own (the rate-limit decision above all). Times are Unix seconds
passed in by the caller, so tests control the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.events import FINAL_TYPES as FINAL_TYPES  # re-exported for the backends
from ..core.limits import Decision, Rate

ERASED_KEEP = 86400.0  # seconds during which late writes for a deleted session are dropped


class StoreUnavailable(Exception):
    """The backend cannot be reached (Redis down, disk gone). Callers decide fail-open/closed."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    origin: str
    fingerprint_hash: str
    created_at: float
    expires_at: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    message_id: str
    role: str  # "user" | "assistant"
    text: str
    created_at: float
    # An answer cut short (its worker died, the server shut down, n8n failed mid-stream): the
    # part received before. History shows it with `"incomplete": true`.
    incomplete: bool = False
    # What was attached to a visitor's message: (name, type, size) per file, never the bytes.
    files: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class BufferSlice:
    """Events of one answer after a given seq, and whose answer it is."""

    session_id: str
    events: list[tuple[int, dict[str, Any]]]  # (seq, event record), seq ascending


@dataclass(frozen=True, slots=True)
class OwnedTurn:
    """A running turn as the store knows it: whose worker lease it depends on."""

    worker_id: str
    session_id: str
    message_id: str


class Store(Protocol):
    name: str
    keeps_history: bool  # False: history is asked from n8n (stateless mode)

    # -- rate limits and counters ------------------------------------------------------------
    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        """One atomic GCRA decision for `key` (see core.limits.gcra)."""
        ...

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], now: float) -> list[Decision]:
        """Charge several `(key, rate)` in order, atomically and in one round trip, stopping at
        the first refusal: the decisions of the keys charged, so a refusal is always the last
        one and the keys after it are not charged (nor looked at). Each decision is what `hit`
        would have returned at that point; an empty `hits` makes no round trip."""
        ...

    async def incr(self, key: str, ttl: float, now: float) -> int:
        """Add one to a counter that expires `ttl` seconds after its first hit; the new value."""
        ...

    async def incr_many(self, counters: Sequence[tuple[str, float]], now: float) -> list[int]:
        """`incr` for each `(key, ttl)` in order, atomically and in one round trip; the new
        values in the same order."""
        ...

    # -- sessions ------------------------------------------------------------------------------
    async def put_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, session_id: str, now: float) -> SessionRecord | None:
        """None when unknown, expired or deleted."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Erase the session, its history, its answer buffers and its busy flag. Later
        append_history/buffer_append calls for it (an answer still running on another worker)
        are dropped, for at least a day."""
        ...

    # -- one answer in flight per session ------------------------------------------------------
    async def acquire_turn(self, session_id: str, message_id: str, ttl: float, now: float) -> bool:
        """True when no other answer is in flight for the session (the flag expires after ttl,
        so a crashed worker cannot lock a session forever)."""
        ...

    async def release_turn(self, session_id: str, message_id: str) -> None:
        """Clear the flag if it is still this message's."""
        ...

    # -- one turn's first and last writes, one round trip each ------------------------------
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
        """`acquire_turn`, then — only when the flag was free — `buffer_append(events)` and
        `append_history(history)`, atomically and in one round trip (one transaction, one
        script). False (busy): nothing was written. An erased session gets the flag but its
        events and history are dropped, as with the single calls.

        `owner`: the worker id whose lease the turn depends on (see `renew_worker`); the turn
        is recorded as that worker's until `finish_turn` with the same owner."""
        ...

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
        """The last write of an answer, atomically and in one round trip: append its final
        `events` (seqs consecutive, the last one final) to the buffer and `history` to the
        session's history, `release_turn`, and drop the turn from `owner`'s turns. An erased
        session, or no `events`: only the release and the owner.

        None when the events were stored as given (or dropped: erased session) — the usual
        case. When the buffer already holds events from `events[0]`'s seq on — an earlier call
        of this answer was stored but its reply was lost (cancelled Redis call, dropped
        connection), so the caller never published them — the events are not dropped as
        replays: the buffer's events from that seq on are returned, for the caller to publish
        instead of `events`, so the buffer and its listeners still agree and end with a final
        event. They are the stored events followed by `events` renumbered after the last one,
        or, when a stored event is already final (FINAL_TYPES), the stored events up to it
        (then nothing is appended and `history` is not written: it belongs to that end).
        Likewise when the buffer already ends with a final event before `events[0]`'s seq
        (another worker ended the turn as an orphan): that final event alone is returned."""
        ...

    # -- worker leases (core.leases) ------------------------------------------------------------
    async def renew_worker(
        self, worker_id: str, turns: Sequence[tuple[str, str]], ttl: float, now: float
    ) -> list[str]:
        """One round trip: the worker's lease lasts until `now + ttl`, and so does the busy
        flag of each of its running `turns` (session_id, message_id) still held by that
        message. Returns the message ids of `turns` the worker no longer owns: they were ended
        as orphans (its lease had lapsed), so the caller stops them."""
        ...

    async def lapsed_turns(self, now: float, limit: int = 100) -> list[OwnedTurn]:
        """Up to `limit` turns owned by workers whose lease lapsed at or before `now` (a turn
        stays listed until `finish_turn(..., owner=worker_id)`); lapsed workers that own no
        turn are forgotten."""
        ...

    # -- history -------------------------------------------------------------------------------
    async def append_history(self, session_id: str, entries: Sequence[HistoryEntry]) -> None: ...

    async def history(self, session_id: str, limit: int = 200) -> list[HistoryEntry]:
        """The last `limit` entries, oldest first."""
        ...

    async def purge_history(self, before: float) -> int:
        """Delete entries created before `before`; how many were deleted."""
        ...

    # -- answer buffers (resume) ---------------------------------------------------------------
    async def buffer_append(
        self,
        message_id: str,
        session_id: str,
        events: Sequence[tuple[int, dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> None:
        """Store `(seq, record)` events of an answer — typically all the events of one upstream
        read — in one atomic write (one transaction, one round trip): readers see all of them
        or none. An event whose seq is not above the buffer's last one is a replay and is
        skipped (idempotent), so a batch may be retried; a batch for an erased session, or for
        a buffer whose last event is final (FINAL_TYPES: the answer has ended), writes
        nothing. The buffer expires `ttl` seconds after the last batch that added an event.
        StoreUnavailable when the backend fails (a lost Redis reply may hide a done write)."""
        ...

    async def buffer_read(self, message_id: str, after: int, now: float) -> BufferSlice | None:
        """Events with seq > after; None when the buffer is unknown or expired."""
        ...

    async def buffer_wait(self, message_id: str, after: int) -> None:
        """Return when events after `after` may exist (spurious returns are allowed).
        Callers bound the wait with a cancel scope; it must be cancellation-safe."""
        ...

    # -- API keys' last use (docs/api-clients.md) ---------------------------------------------
    async def note_api_key_use(self, key_id: str, now: float) -> None:
        """Remember `now` as the key's last use unless a later use is already noted (workers
        note concurrently). Kept until the key id is forgotten with `forget_api_key`."""
        ...

    async def api_key_uses(self, key_ids: Sequence[str]) -> dict[str, float]:
        """The last noted use of each of `key_ids` that was ever used."""
        ...

    async def forget_api_key(self, key_id: str) -> None:
        """Drop the key's last use (a revoked key's id may be given out again)."""
        ...

    # -- lifecycle -----------------------------------------------------------------------------
    async def ping(self) -> None:
        """Raise StoreUnavailable when the backend cannot serve."""
        ...

    async def aclose(self) -> None: ...
