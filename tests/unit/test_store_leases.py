"""The store's lease calls (renew_worker, lapsed_turns, owners in begin/finish_turn), the "an
ended buffer takes no more events" rule, incomplete history entries, and the orphan sweep
(quartproxy/leases.py) on top of them — on memory, SQLite files and a real redis-server, with
the fixtures of the shared suite (test_store_contract.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from quartproxy.core.leases import ORPHAN_CODE
from quartproxy.leases import SWEEP_BATCH, sweep_orphans
from quartproxy.store import HistoryEntry, OwnedTurn, Store
from tests.unit.test_store_contract import (  # noqa: F401 (fixtures)
    NOW,
    OpenBackend,
    open_backend,
    redis_server,
)

TTL = 10.0


@pytest.fixture
async def store(open_backend: OpenBackend) -> AsyncIterator[Store]:  # noqa: F811
    async with open_backend() as s:
        yield s


def start(sid: str, mid: str) -> dict[str, Any]:
    return {"type": "start", "message_id": mid, "session_id": sid}


def delta(text: str) -> dict[str, Any]:
    return {"type": "delta", "text": text}


async def begin(
    s: Store, sid: str, mid: str, owner: str, at: float = NOW, text: str = "question"
) -> bool:
    return await s.begin_turn(
        sid,
        mid,
        [(0, start(sid, mid))],
        [HistoryEntry(mid, "user", text, at)],
        busy_ttl=TTL,
        buffer_ttl=300,
        now=at,
        owner=owner,
    )


async def events(s: Store, mid: str, at: float = NOW) -> list[tuple[int, dict[str, Any]]]:
    part = await s.buffer_read(mid, -1, at)
    assert part is not None
    return part.events


# -- item 1: the busy flag is a lease renewed while the turn runs --------------------------------
async def test_renewal_keeps_the_busy_flag_past_its_first_ttl(store: Store) -> None:
    assert await begin(store, "s", "m", "w1")
    for k in range(1, 6):  # five renewals, 5 s apart: 25 s, well past the first 10-s TTL
        assert await store.renew_worker("w1", [("s", "m")], TTL, NOW + 5 * k) == []
        assert not await store.acquire_turn("s", "probe", TTL, NOW + 5 * k + 4.9)
    # renewals stop (the worker died): the flag lapses one TTL after the last one
    assert await store.acquire_turn("s", "next", TTL, NOW + 25 + TTL)


async def test_renewal_never_extends_a_flag_another_turn_holds(store: Store) -> None:
    assert await begin(store, "s", "m", "w1")
    assert await store.acquire_turn("s", "other", 100, NOW + TTL + 1)  # m's flag lapsed
    await store.renew_worker("w1", [("s", "m")], TTL, NOW + TTL + 2)
    await store.release_turn("s", "m")  # not the holder: nothing changes
    assert not await store.acquire_turn("s", "third", TTL, NOW + TTL + 50)


async def test_a_finished_turn_is_not_renewed_and_is_reported_lost(store: Store) -> None:
    assert await begin(store, "s", "m", "w1")
    await store.finish_turn(
        "s", "m", [(1, {"type": "end", "message_id": "m", "text": ""})], [],
        buffer_ttl=300, now=NOW + 1, owner="w1",
    )  # fmt: skip
    assert await store.renew_worker("w1", [("s", "m")], TTL, NOW + 2) == ["m"]
    assert await store.acquire_turn("s", "next", TTL, NOW + 3)


# -- item 2: worker leases own running turns -----------------------------------------------------
async def test_turns_of_a_lapsed_worker_are_listed_for_any_other_client(
    open_backend: OpenBackend,  # noqa: F811
) -> None:
    async with open_backend() as dead, open_backend() as alive:
        assert await begin(dead, "s1", "m1", "w-dead")
        assert await begin(dead, "s2", "m2", "w-dead")
        assert await begin(alive, "s3", "m3", "w-alive")
        await dead.renew_worker("w-dead", [("s1", "m1"), ("s2", "m2")], TTL, NOW + 1)
        await alive.renew_worker("w-alive", [("s3", "m3")], TTL, NOW + 9)
        assert await alive.lapsed_turns(NOW + TTL) == []  # w-dead renewed at NOW + 1
        found = await alive.lapsed_turns(NOW + 1 + TTL)
        assert sorted(found, key=lambda t: t.message_id) == [
            OwnedTurn("w-dead", "s1", "m1"),
            OwnedTurn("w-dead", "s2", "m2"),
        ]
        # listed until finished with that owner; then the worker itself is forgotten
        for t in found:
            await alive.finish_turn(
                t.session_id, t.message_id, [], [], buffer_ttl=300, now=NOW + 12, owner=t.worker_id
            )
        assert await alive.lapsed_turns(NOW + 12) == []
        assert await alive.lapsed_turns(NOW + 100) == [OwnedTurn("w-alive", "s3", "m3")]


async def test_a_worker_that_never_renewed_has_a_lease_from_its_first_turn(store: Store) -> None:
    assert await begin(store, "s", "m", "w")  # died before its first renewal
    assert await store.lapsed_turns(NOW + TTL - 1) == []
    assert await store.lapsed_turns(NOW + TTL) == [OwnedTurn("w", "s", "m")]


async def test_lapsed_turns_are_listed_in_batches(store: Store) -> None:
    for i in range(7):
        assert await begin(store, f"s{i}", f"m{i}", "w")
    first = await store.lapsed_turns(NOW + TTL, limit=3)
    assert len(first) == 3
    assert len(await store.lapsed_turns(NOW + TTL, limit=100)) == 7


async def test_unowned_turns_are_never_listed(store: Store) -> None:
    assert await begin(store, "s", "m", "")  # fail-open paths, old callers
    assert await store.lapsed_turns(NOW + 1e6) == []


# -- an ended buffer takes no more events (a zombie worker cannot write past the orphan end) -----
ORPHAN = {"type": "error", "code": ORPHAN_CODE, "message": "stopped"}


async def test_nothing_is_appended_after_a_final_event(store: Store) -> None:
    assert await begin(store, "s", "m", "w")
    await store.buffer_append("m", "s", [(1, delta("a"))], 300, NOW)
    await store.finish_turn("s", "m", [(2, ORPHAN)], [], buffer_ttl=300, now=NOW, owner="w")
    await store.buffer_append("m", "s", [(3, delta("late")), (4, delta("later"))], 300, NOW)
    assert await events(store, "m") == [(0, start("s", "m")), (1, delta("a")), (2, ORPHAN)]
    # the zombie's own end: nothing appended, no answer in history, the orphan end returned
    end = {"type": "end", "message_id": "m", "text": "a late answer"}
    late = HistoryEntry("m", "assistant", "a late answer", NOW + 1)
    stored = await store.finish_turn(
        "s", "m", [(5, end)], [late], buffer_ttl=300, now=NOW + 1, owner="w"
    )
    assert stored == [(2, ORPHAN)]
    assert await events(store, "m") == [(0, start("s", "m")), (1, delta("a")), (2, ORPHAN)]
    assert [e.text for e in await store.history("s")] == ["question"]


async def test_a_final_event_ends_a_buffer_written_by_buffer_append_too(store: Store) -> None:
    await store.buffer_append("m", "s", [(0, start("s", "m")), (1, ORPHAN)], 300, NOW)
    await store.buffer_append("m", "s", [(2, delta("x"))], 300, NOW)
    assert await events(store, "m") == [(0, start("s", "m")), (1, ORPHAN)]


async def test_incomplete_history_entries_keep_their_mark(store: Store) -> None:
    entries = [
        HistoryEntry("m", "user", "q", NOW),
        HistoryEntry("m", "assistant", "half an ans", NOW + 1, incomplete=True),
        HistoryEntry("n", "assistant", "whole", NOW + 2),
    ]
    await store.append_history("s", entries)
    assert await store.history("s") == entries


# -- the orphan sweep (quartproxy/leases.py) on each backend --------------------------------------
async def test_sweep_ends_a_dead_workers_turn_and_keeps_its_partial_answer(
    open_backend: OpenBackend,  # noqa: F811
) -> None:
    async with open_backend() as dead, open_backend() as sweeper:
        assert await begin(dead, "s", "m", "w-dead")
        await dead.buffer_append("m", "s", [(1, delta("Hel")), (2, delta("lo"))], 300, NOW)
        # an ended turn of the same dead worker whose finish did record its end earlier
        assert await begin(dead, "s2", "done", "w-dead")
        end = {"type": "end", "message_id": "done", "text": ""}
        await dead.buffer_append("done", "s2", [(1, end)], 300, NOW)

        assert await sweep_orphans(sweeper, 300, lambda: NOW + TTL - 1) == 0  # still alive
        assert await sweep_orphans(sweeper, 300, lambda: NOW + TTL) == 2

        got = await events(sweeper, "m", NOW + TTL)
        assert got[:3] == [(0, start("s", "m")), (1, delta("Hel")), (2, delta("lo"))]
        assert len(got) == 4 and got[3][0] == 3
        assert got[3][1]["type"] == "error" and got[3][1]["code"] == "upstream_error"
        assert await events(sweeper, "done", NOW + TTL) == [(0, start("s2", "done")), (1, end)]
        if sweeper.keeps_history:
            hist = await sweeper.history("s")
            assert [(e.role, e.text, e.incomplete) for e in hist] == [
                ("user", "question", False),
                ("assistant", "Hello", True),
            ]
            assert [e.role for e in await sweeper.history("s2")] == ["user"]
        # the busy flags are free: the visitor can send the next message
        assert await sweeper.acquire_turn("s", "next", TTL, NOW + TTL)
        assert await sweeper.acquire_turn("s2", "next2", TTL, NOW + TTL)
        # done once: a second sweep (another worker) finds nothing, writes nothing
        assert await sweep_orphans(dead, 300, lambda: NOW + TTL + 1) == 0
        assert len(await events(sweeper, "m", NOW + TTL)) == 4
        # the dead worker, if it was only frozen, learns its turn was ended
        assert await dead.renew_worker("w-dead", [("s", "m")], TTL, NOW + TTL + 2) == ["m"]


async def test_sweep_of_a_turn_without_deltas_writes_no_empty_answer(store: Store) -> None:
    assert await begin(store, "s", "m", "w")
    assert await sweep_orphans(store, 300, lambda: NOW + TTL) == 1
    got = await events(store, "m", NOW + TTL)
    assert [e[1]["type"] for e in got] == ["start", "error"]
    assert [e.role for e in await store.history("s")] == ["user"]


async def test_sweep_takes_a_batch_per_round(store: Store) -> None:
    for i in range(SWEEP_BATCH + 5):
        assert await begin(store, f"s{i}", f"m{i}", "w")
    assert await sweep_orphans(store, 300, lambda: NOW + TTL) == SWEEP_BATCH
    assert await sweep_orphans(store, 300, lambda: NOW + TTL) == 5
    assert await sweep_orphans(store, 300, lambda: NOW + TTL) == 0


async def test_begin_run_again_for_its_own_message_is_idempotent(store: Store) -> None:
    """begin_turn again for the flag's own message (its worker's retry after a lost reply) is
    accepted, adds no second question to history and keeps the turn its worker's — the same in
    every store (the differential test found them disagreeing)."""
    assert await begin(store, "s0", "m0", "w0")
    assert await begin(store, "s0", "m0", "w0")
    assert not await begin(store, "s0", "m1", "w0")  # still busy with m0
    assert [e.text for e in await store.history("s0")] == ["question"]
    assert await store.renew_worker("w0", [("s0", "m0")], TTL, NOW + 1) == []
