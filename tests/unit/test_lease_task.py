"""The per-worker lease task (quartproxy/leases.py keep_leases) on a mock clock: batches of
renewals, the sweep held back for one round after the worker's own store failure, failures that
never end the task, lost turns stopped."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing

from quartproxy.core.leases import lease_timing
from quartproxy.leases import RENEW_BATCH, keep_leases
from quartproxy.store import MemoryStore, OwnedTurn, StoreUnavailable
from quartproxy.turns import LiveTurn, TurnRunner

TIMING = lease_timing(6.0)


class Recording(MemoryStore):
    """A memory store that records lease calls and fails on the rounds it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.renewals: list[int] = []  # number of turns per renew_worker call
        self.sweeps = 0
        self.fail_renew: set[int] = set()  # round numbers (1-based) whose renewal fails
        self.fail_sweep: Exception | None = None
        self.round = 0
        self.lost: list[str] = []

    async def renew_worker(
        self, worker_id: str, turns: Sequence[tuple[str, str]], ttl: float, now: float
    ) -> list[str]:
        if not turns or turns[0] == self._first_turn:
            self.round += 1
        if self.round in self.fail_renew:
            raise StoreUnavailable("down")
        self.renewals.append(len(turns))
        lost, self.lost = self.lost, []
        return lost

    async def lapsed_turns(self, now: float, limit: int = 100) -> list[OwnedTurn]:
        self.sweeps += 1
        if self.fail_sweep is not None:
            raise self.fail_sweep
        return []

    _first_turn: tuple[str, str] | None = None


def runner_with(store: Recording, turns: int, nursery: trio.Nursery) -> TurnRunner:
    runner = TurnRunner(store, None, nursery, buffer_seconds=300, busy_seconds=6)  # type: ignore[arg-type]
    for i in range(turns):
        runner.live[f"m{i}"] = LiveTurn(f"m{i}", f"s{i}", owned=True)
    runner.live["unowned"] = LiveTurn("unowned", "sx")  # fail-open turn: never renewed
    store._first_turn = ("s0", "m0") if turns else None
    return runner


async def rounds(store: Recording, runner: TurnRunner, n: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(keep_leases, runner, TIMING)
        await trio.sleep(TIMING.renew_every * (n - 1) + TIMING.renew_every / 2)
        nursery.cancel_scope.cancel()


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_renewals_come_in_bounded_batches(clock: Any) -> None:
    store = Recording()
    async with trio.open_nursery() as nursery:
        runner = runner_with(store, 2 * RENEW_BATCH + 5, nursery)
        await rounds(store, runner, 2)
    assert store.renewals == [RENEW_BATCH, RENEW_BATCH, 5] * 2


async def test_a_worker_without_turns_still_renews_its_lease(clock: Any) -> None:
    store = Recording()
    async with trio.open_nursery() as nursery:
        await rounds(store, runner_with(store, 0, nursery), 3)
    assert store.renewals == [0, 0, 0]
    assert store.sweeps == 3  # at start-up, then after every good round


async def test_after_its_own_store_failure_a_worker_waits_a_round_before_sweeping(
    clock: Any,
) -> None:
    store = Recording()
    store.fail_renew = {2}
    async with trio.open_nursery() as nursery:
        await rounds(store, runner_with(store, 1, nursery), 5)
    # round 1 sweeps (start-up), 2 fails, 3 renews only (others get a round), 4 and 5 sweep
    assert store.sweeps == 3


async def test_store_errors_never_end_the_task(clock: Any) -> None:
    store = Recording()
    store.fail_sweep = sqlite3.DatabaseError("database disk image is malformed")
    store.fail_renew = {2, 3}
    async with trio.open_nursery() as nursery:
        await rounds(store, runner_with(store, 1, nursery), 6)
    assert len(store.renewals) == 4  # rounds 1, 4, 5, 6: still running after every failure


async def test_turns_ended_elsewhere_are_stopped(clock: Any) -> None:
    store = Recording()
    async with trio.open_nursery() as nursery:
        runner = runner_with(store, 3, nursery)
        store.lost = ["m1"]
        await rounds(store, runner, 1)
        assert runner.live["m1"].cancel_scope.cancel_called
        assert not runner.live["m0"].cancel_scope.cancel_called
        assert not runner.live["m2"].cancel_scope.cancel_called
