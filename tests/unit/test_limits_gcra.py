"""The pure GCRA step at realistic Unix times (where float spacing is ~2.4e-7 s)."""

from __future__ import annotations

import pytest

from quartproxy.core.limits import Rate, gcra

NOW = 1_700_000_000.0


@pytest.mark.parametrize("period", [1.0, 10.0, 60.0, 3600.0, 86400.0])
def test_a_burst_of_exactly_count_passes_at_one_instant(period: float) -> None:
    for count in [*range(1, 64), 100, 600, 1000]:
        tat: float | None = None
        passed = 0
        for _ in range(count + 5):
            decision, new_tat = gcra(tat, NOW, Rate(count, period))
            if new_tat is not None:
                tat = new_tat
            passed += decision.allowed
        assert passed == count, (count, period)


def test_sustained_rate_after_the_burst() -> None:
    rate = Rate(7, 3600)
    tat: float | None = None
    for _ in range(7):
        _, tat = gcra(tat, NOW, rate)
    denied, _ = gcra(tat, NOW + 1, rate)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(rate.interval - 1)
    allowed, _ = gcra(tat, NOW + rate.interval, rate)
    assert allowed.allowed
