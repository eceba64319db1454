"""Property tests of the GCRA limiter over arbitrary arrival sequences.

What `N/period` guarantees (GCRA with a burst of N): N requests may arrive at once, then one
every period/N. Over any stretch of time of length W at most N + W*N/period requests pass, so
in one `period` window up to 2N-1 can pass (a full burst at the window's start, then the
sustained rate) -- the test below pins that down so nobody reads "N per any window" into it.
"""

from __future__ import annotations

import trio
import trio.lowlevel
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quartproxy.core.limits import Rate, gcra, tolerance
from quartproxy.store.memory import MemoryStore

RATES = st.builds(
    Rate,
    st.integers(min_value=1, max_value=10),
    st.sampled_from([0.5, 1.0, 3.0, 60.0]),
)
GAPS = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=5.0, allow_nan=False)),
    min_size=1,
    max_size=60,
)


def arrivals(gaps: list[float]) -> list[float]:
    t, out = 1000.0, []
    for g in gaps:
        t += g
        out.append(t)
    return out


def run(times: list[float], rate: Rate) -> list[tuple[float, bool, float]]:
    tat: float | None = None
    out = []
    for now in times:
        decision, new_tat = gcra(tat, now, rate)
        if new_tat is not None:
            tat = new_tat
        out.append((now, decision.allowed, decision.retry_after))
    return out


@given(RATES, GAPS)
@example(Rate(1, 1.0), [0.0, 0.99999])  # found by hypothesis: 10 µs early, within tolerance
def test_never_more_than_the_burst_plus_the_sustained_rate(rate: Rate, gaps: list[float]) -> None:
    allowed = [t for t, ok, _ in run(arrivals(gaps), rate) if ok]
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            passed = j - i + 1
            # gcra lets a request through up to tolerance(rate) early (float rounding of
            # stored times), so the window may look that much longer
            window = allowed[j] - allowed[i] + tolerance(rate)
            assert passed <= rate.count + window / rate.interval + 1e-6


@given(RATES, st.integers(min_value=1, max_value=60))
def test_simultaneous_requests_let_exactly_count_through(rate: Rate, n: int) -> None:
    results = run([5.0] * n, rate)
    assert sum(ok for _, ok, _ in results) == min(n, rate.count)


@given(RATES, GAPS)
def test_denied_requests_do_not_consume(rate: Rate, gaps: list[float]) -> None:
    times = arrivals(gaps)
    first = run(times, rate)
    kept = [t for t, ok, _ in first if ok]
    assert all(ok for _, ok, _ in run(kept, rate))


@given(RATES, GAPS)
def test_retry_after_is_honest(rate: Rate, gaps: list[float]) -> None:
    tat: float | None = None
    for now in arrivals(gaps):
        decision, new_tat = gcra(tat, now, rate)
        if decision.allowed:
            assert decision.retry_after == 0
            assert 0 <= decision.remaining < rate.count
            tat = new_tat
        else:
            # `tolerance(rate)` is the float slop a decision allows (at most 1 ms).
            slop = tolerance(rate)
            assert new_tat is None and 0 < decision.retry_after <= rate.period + slop
            assert gcra(tat, now + decision.retry_after, rate)[0].allowed
            early = now + decision.retry_after * 0.5
            assert not gcra(tat, early, rate)[0].allowed or decision.retry_after <= 2 * slop


@given(RATES, st.lists(st.floats(min_value=0.0, max_value=3.0), max_size=40))
def test_requests_at_the_sustained_rate_always_pass(rate: Rate, extra: list[float]) -> None:
    times = arrivals([rate.interval + e for e in extra] or [0.0])
    assert all(ok for _, ok, _ in run(times, rate))


def test_one_period_window_can_hold_a_burst_and_the_sustained_rate() -> None:
    rate = Rate(5, 60.0)
    times = [0.0] * 5 + [12.0 * k for k in range(1, 5)]  # all inside [0, 60)
    assert all(ok for _, ok, _ in run(times, rate))
    assert not run([*times, 48.0], rate)[-1][1]


@settings(max_examples=30)
@given(st.integers(min_value=1, max_value=10), st.integers(min_value=1, max_value=80))
def test_memory_store_is_atomic_under_concurrency(count: int, n: int) -> None:
    store = MemoryStore()
    rate = Rate(count, 60.0)
    passed = 0

    async def one() -> None:
        nonlocal passed
        await trio.lowlevel.checkpoint()  # every task starts before any decides
        if (await store.hit("ip:1", rate, 100.0)).allowed:
            passed += 1

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)

    trio.run(main)
    assert passed == min(count, n)
