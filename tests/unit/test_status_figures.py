"""core.status: the status page's figures from readings of the metrics."""

from __future__ import annotations

import math

import pytest

from quartproxy.core.status import Point, point, quantile, view

INF = math.inf


def reading(t: float, turns_ok: float, turns_failed: float = 0, **extra: float) -> Point:
    samples = [
        ("quartproxy_chat_turns_total", {"outcome": "ok", "origin": "a"}, turns_ok),
        ("quartproxy_chat_turns_total", {"outcome": "upstream_error", "origin": "a"}, turns_failed),
        ("quartproxy_chat_turns_created", {"outcome": "ok", "origin": "a"}, 1e9),
        ("quartproxy_open_streams", {"channel": "sse"}, extra.get("sse", 0)),
        ("quartproxy_open_streams", {"channel": "ws"}, extra.get("ws", 0)),
        ("quartproxy_chat_turns_in_flight", {}, extra.get("in_flight", 0)),
        ("quartproxy_workers", {}, 2),
        ("quartproxy_rejections_total", {"reason": "origin", "tier": "", "origin": "x"}, 0),
    ]
    for le, count in extra.get("buckets", ()):  # type: ignore[attr-defined]
        samples.append(("quartproxy_chat_time_to_first_token_seconds_bucket", {"le": le}, count))
    return point(t, samples)


def test_point_sums_labels_and_separates_failed_turns() -> None:
    p = reading(10, 5, 2, sse=3, ws=1, in_flight=4)
    assert p.values["turns"] == 7
    assert p.values["failed"] == 2
    assert p.values["workers"] == 2
    assert p.values["in_flight"] == 4
    assert p.streams == {"sse": 3, "ws": 1}


def test_rates_are_over_the_last_minute_and_series_per_interval() -> None:
    points = [reading(t, t) for t in (0, 30, 60, 90)]  # one ok turn per second
    out = view(points, started=0)
    assert out["now"]["turns_per_s"] == 1.0  # type: ignore[index]
    assert out["series"]["turns_per_s"] == [1.0, 1.0, 1.0]  # type: ignore[index]
    assert out["t"] == [-60.0, -30.0, 0.0]
    assert out["uptime"] == 90


def test_a_counter_reset_counts_from_zero_not_negative() -> None:
    out = view([reading(0, 100), reading(10, 5)], started=0)
    assert out["series"]["turns_per_s"] == [0.5]  # type: ignore[index]


def test_quantile_interpolates_like_histogram_quantile() -> None:
    old = ((0.1, 0.0), (1.0, 0.0), (INF, 0.0))
    new = ((0.1, 50.0), (1.0, 100.0), (INF, 100.0))
    assert quantile(0.5, old, new) == pytest.approx(0.1)
    assert quantile(0.75, old, new) == pytest.approx(0.55)
    assert quantile(0.5, new, new) is None  # nothing observed in between
    assert quantile(0.99, (), ((0.1, 0.0), (INF, 10.0))) == 0.1  # in +Inf: the top bound


def test_ttft_quantiles_and_chart_come_from_bucket_differences() -> None:
    b0 = (("0.5", 0.0), ("1.0", 0.0), ("+Inf", 0.0))
    b1 = (("0.5", 10.0), ("1.0", 10.0), ("+Inf", 10.0))
    out = view([reading(0, 0, buckets=b0), reading(5, 10, buckets=b1)], started=0)  # type: ignore[arg-type]
    assert out["now"]["ttft_p50"] == 0.25  # type: ignore[index]
    assert out["series"]["ttft_p95"] == [0.475]  # type: ignore[index]


def test_no_readings_no_figures() -> None:
    assert view([], started=0)["now"] == {}


def test_a_reading_between_samples_moves_the_figures_not_the_charts() -> None:
    ring = [reading(0, 0), reading(5, 5)]
    out = view(ring, started=0, latest=reading(6, 50))
    assert out["now"]["turns_total"] == 50  # type: ignore[index]
    assert out["series"]["turns_per_s"] == [1.0]  # type: ignore[index]  (no 1-s spike)
    assert out["t"] == [-1.0]
