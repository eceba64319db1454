"""Exact figures of the rate limits: every documented unit spelling, `remaining` and
`retry_after` step by step, the tolerance. Each case was a surviving mutant of core/limits.py."""

from __future__ import annotations

import pytest

from quartproxy.core.limits import MAX_TOLERANCE, Decision, Rate, gcra, tolerance

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("unit", "seconds"),
    [
        ("s", 1),
        ("sec", 1),
        ("second", 1),
        ("seconds", 1),
        ("m", 60),
        ("min", 60),
        ("minute", 60),
        ("minutes", 60),
        ("h", 3600),
        ("hour", 3600),
        ("hours", 3600),
        ("d", 86400),
        ("day", 86400),
        ("days", 86400),
    ],
)
def test_every_documented_unit_spelling(unit: str, seconds: int) -> None:
    assert Rate.parse(f"1/{unit}") == Rate(1, float(seconds))
    assert Rate.parse(f"7/3{unit}") == Rate(7, 3.0 * seconds)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1/minute", Rate(1, 60.0)),
        ("30/minute", Rate(30, 60.0)),
        (" 30 / MINUTE ", Rate(30, 60.0)),
        ("5/10s", Rate(5, 10.0)),
        ("100/15minutes", Rate(100, 900.0)),
        ("2/1hour", Rate(2, 3600.0)),
    ],
)
def test_valid_rates(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize(
    "text",
    [
        "",
        "minute",
        "30",
        "30/",
        "0/minute",
        "1/0minute",
        "-1/minute",
        "1.5/minute",
        "5/ms",
        "5/fortnight",
        "5/minutesX",
        "five/minute",
    ],
)
def test_invalid_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_interval_and_text() -> None:
    assert Rate(4, 60.0).interval == 15.0
    assert str(Rate(5, 10.0)) == "5/10s"
    assert str(Rate(30, 60.0)) == "30/60s"


def test_tolerance_is_1_ms_or_half_an_interval() -> None:
    assert MAX_TOLERANCE == 1e-3
    assert tolerance(Rate(1, 1.0)) == 1e-3
    assert tolerance(Rate(10_000, 1.0)) == pytest.approx(5e-5)


def test_remaining_counts_down_exactly_and_a_denial_costs_nothing() -> None:
    rate = Rate(5, 60.0)  # one every 12 s
    tat: float | None = None
    for expected in (4, 3, 2, 1, 0):
        decision, tat = gcra(tat, NOW, rate)
        assert decision == Decision(True, 0.0, expected)
    assert tat == pytest.approx(NOW + 60.0)
    denied, new = gcra(tat, NOW, rate)
    assert (denied.allowed, denied.remaining, new) == (False, 0, None)
    assert denied.retry_after == pytest.approx(12.0)
    later, new = gcra(tat, NOW + 5.0, rate)
    assert (later.allowed, new) == (False, None)
    assert later.retry_after == pytest.approx(7.0)
    again, tat2 = gcra(tat, NOW + 12.0, rate)
    assert again == Decision(True, 0.0, 0)
    assert tat2 == pytest.approx(NOW + 72.0)
    rested, _ = gcra(tat, NOW + 36.0, rate)
    assert rested == Decision(True, 0.0, 2)
    fresh, _ = gcra(tat, NOW + 600.0, rate)
    assert fresh == Decision(True, 0.0, 4)


def test_a_request_early_by_float_noise_passes_and_one_early_by_2_ms_does_not() -> None:
    rate = Rate(1, 60.0)
    _, tat = gcra(None, NOW, rate)
    assert gcra(tat, NOW + 60.0 - 0.0005, rate)[0].allowed
    early, _ = gcra(tat, NOW + 60.0 - 0.002, rate)
    assert not early.allowed
    assert early.retry_after == pytest.approx(0.002, abs=1e-6)


def test_a_request_exactly_at_the_tolerance_edge_passes() -> None:
    # dyadic figures, so the float sums are exact: interval 1/1024 s, tolerance 1/2048 s
    rate = Rate(1024, 1.0)
    assert tolerance(rate) == 1 / 2048
    now = 1024.0
    tat = now + 1.0 - 1 / 2048  # the next request is due exactly `tolerance` from now
    assert gcra(tat, now, rate)[0].allowed
    assert not gcra(tat + 1 / 1024, now, rate)[0].allowed
