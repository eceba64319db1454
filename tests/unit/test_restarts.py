"""The supervisor's restart rule (quartproxy/core/restarts.py), with plain values."""

from __future__ import annotations

import pytest

from quartproxy.core.restarts import Decision, RestartPolicy, delay_for, on_death, survived

POLICY = RestartPolicy(settle_seconds=10.0, first_delay=0.5, max_delay=30.0, give_up_after=6)


def test_a_crash_of_a_healthy_worker_is_replaced_at_once_and_ends_any_streak() -> None:
    assert on_death(POLICY, 0, 3600.0) == Decision(streak=0, delay=0.0, give_up=False)
    assert on_death(POLICY, 4, 10.0) == Decision(streak=0, delay=0.0, give_up=False)


def test_the_first_early_death_is_replaced_at_once() -> None:
    assert on_death(POLICY, 0, None) == Decision(streak=1, delay=0.0, give_up=False)
    assert on_death(POLICY, 0, 9.9) == Decision(streak=1, delay=0.0, give_up=False)


def test_early_deaths_in_a_row_back_off_exponentially_then_give_up() -> None:
    streak, seen = 0, []
    for _ in range(6):
        d = on_death(POLICY, streak, None)
        streak = d.streak
        seen.append((d.streak, d.delay, d.give_up))
    assert seen == [
        (1, 0.0, False),
        (2, 0.5, False),
        (3, 1.0, False),
        (4, 2.0, False),
        (5, 4.0, False),
        (6, 8.0, True),
    ]


@pytest.mark.parametrize("streak", [8, 10, 50, 1000, 10**6])
def test_the_delay_is_capped_and_finite(streak: int) -> None:
    assert delay_for(POLICY, streak) == 30.0


def test_without_a_give_up_limit_it_never_gives_up() -> None:
    forever = RestartPolicy(give_up_after=None, max_delay=5.0)
    streak = 0
    for _ in range(500):
        d = on_death(forever, streak, None)
        assert not d.give_up
        assert 0.0 <= d.delay <= 5.0
        streak = d.streak
    assert streak == 500


def test_delays_never_decrease_along_a_streak() -> None:
    delays = [delay_for(POLICY, n) for n in range(0, 40)]
    assert delays == sorted(delays)
    assert delays[:3] == [0.0, 0.0, 0.5]


def test_survival_needs_readiness_and_the_settle_time() -> None:
    assert not survived(POLICY, None)  # still starting, however long that takes
    assert not survived(POLICY, 9.99)
    assert survived(POLICY, 10.0)
