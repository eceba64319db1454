"""core.leases: the lease timing rule and how an orphaned turn's buffer is ended (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from quartproxy.core.leases import (
    ORPHAN_CODE,
    RENEWALS_PER_LEASE,
    LeaseTiming,
    OrphanEnd,
    lease_timing,
    orphan_end,
    orphan_error_record,
)

START: dict[str, Any] = {"type": "start", "message_id": "m", "session_id": "s"}


def delta(text: str) -> dict[str, Any]:
    return {"type": "delta", "text": text}


@pytest.mark.parametrize("lease", [0.3, 1.0, 6.0, 60.0])
def test_timing_renews_several_times_per_lease_and_bounds_the_resume(lease: float) -> None:
    t = lease_timing(lease)
    assert t == LeaseTiming(lease, lease / RENEWALS_PER_LEASE, lease / RENEWALS_PER_LEASE)
    assert RENEWALS_PER_LEASE >= 2  # one missed renewal never lets a live lease lapse
    assert t.renew_every * 2 < t.ttl
    assert t.resume_bound == lease + t.sweep_every


def test_default_lease_ends_orphans_within_a_few_seconds() -> None:
    from quartproxy.config import Settings

    assert lease_timing(Settings.turn_lease_seconds).resume_bound <= 10.0


def test_orphan_end_of_a_turn_with_deltas() -> None:
    events = [(0, START), (1, delta("Hel")), (2, delta("lo "))]
    assert orphan_end(events) == OrphanEnd(3, "Hello ", False)


def test_orphan_end_of_a_turn_with_only_its_start() -> None:
    assert orphan_end([(0, START)]) == OrphanEnd(1, "", False)


def test_orphan_end_of_an_empty_or_gone_buffer() -> None:
    assert orphan_end([]) == OrphanEnd(0, "", False)


FINALS = [
    {"type": "end", "message_id": "m", "text": "ab"},
    {"type": "error", "code": "internal", "message": "x"},
]


@pytest.mark.parametrize("final", FINALS)
def test_orphan_end_of_a_turn_that_already_ended_writes_nothing(final: dict[str, Any]) -> None:
    events = [(0, START), (1, delta("a")), (2, delta("b")), (3, final)]
    end = orphan_end(events)
    assert end.finished
    assert end.text == "ab"


def test_orphan_end_counts_seqs_not_positions() -> None:
    # a resumed read (after > -1) starts later; the final event goes after the last seq seen
    assert orphan_end([(5, delta("x")), (6, delta("y"))]) == OrphanEnd(7, "xy", False)


def test_orphan_error_is_a_contract_error_event() -> None:
    record = orphan_error_record()
    assert record["type"] == "error"
    assert record["code"] == ORPHAN_CODE == "upstream_error"
    assert "again" in record["message"]  # tells the visitor what to do
