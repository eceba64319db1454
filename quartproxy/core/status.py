"""The figures of the status page, from samples of the metrics (pure: no IO, no clock).

A `Point` is what one reading of the (aggregated) metrics says at time `t`: cumulative counters,
gauges, and the cumulative buckets of the time-to-first-token histogram. `view` turns the last
points into what the page shows: the current figures, rates over the last minute, quantiles
over the last five, and one short series per chart (one value per pair of neighbouring points).

Counters can only go down when the process restarted; a negative difference then counts as 0,
as Prometheus's rate() does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Sample = tuple[str, Mapping[str, str], float]

TURNS = "quartproxy_chat_turns_total"
REJECTIONS = "quartproxy_rejections_total"
N8N_ERRORS = "quartproxy_n8n_errors_total"
N8N_CALLS = "quartproxy_n8n_response_seconds_count"
TTFT_BUCKET = "quartproxy_chat_time_to_first_token_seconds_bucket"
GAUGES = {
    "quartproxy_workers": "workers",
    "quartproxy_draining_workers": "draining",
    "quartproxy_chat_turns_in_flight": "in_flight",
    "quartproxy_process_resident_memory_bytes": "memory_bytes",
    "quartproxy_process_open_fds": "open_fds",
}
RATE_WINDOW = 60.0
QUANTILE_WINDOW = 300.0


@dataclass(frozen=True)
class Point:
    t: float
    values: Mapping[str, float] = field(default_factory=dict)
    streams: Mapping[str, float] = field(default_factory=dict)
    ttft: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count), ascending


def point(t: float, samples: Iterable[Sample]) -> Point:
    values: dict[str, float] = dict.fromkeys(
        ("turns", "failed", "rejections", "n8n_errors", "n8n_calls", *GAUGES.values()), 0.0
    )
    streams: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for name, labels, value in samples:
        if name == TURNS:
            values["turns"] += value
            if labels.get("outcome") != "ok":
                values["failed"] += value
        elif name == REJECTIONS:
            values["rejections"] += value
        elif name == N8N_ERRORS:
            values["n8n_errors"] += value
        elif name == N8N_CALLS:
            values["n8n_calls"] += value
        elif name == TTFT_BUCKET:
            le = float(labels.get("le", "+Inf"))
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == "quartproxy_open_streams":
            channel = labels.get("channel", "other")
            streams[channel] = streams.get(channel, 0.0) + value
        elif name in GAUGES:
            values[GAUGES[name]] += value
    return Point(t, values, streams, tuple(sorted(buckets.items())))


def increase(old: float, new: float) -> float:
    return new - old if new >= old else new  # a restart reset the counter


def quantile(
    q: float, old: Sequence[tuple[float, float]], new: Sequence[tuple[float, float]]
) -> float | None:
    """Prometheus's histogram_quantile over the observations between two bucket readings
    (linear interpolation inside the bucket; the highest finite bound if it falls in +Inf)."""
    before = dict(old)
    counts = [(le, increase(before.get(le, 0.0), c)) for le, c in new]
    if not counts or counts[-1][1] <= 0:
        return None
    rank = q * counts[-1][1]
    lower, below = 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= rank:
            if math.isinf(le):
                return lower
            if cumulative == below:
                return le
            return lower + (le - lower) * (rank - below) / (cumulative - below)
        lower, below = le, cumulative
    return lower


def _since(points: Sequence[Point], seconds: float) -> Point:
    """The oldest point within `seconds` of the last one (the last one itself if alone)."""
    last = points[-1]
    for p in points:
        if last.t - p.t <= seconds:
            return p
    return last


def _rate(old: Point, new: Point, key: str) -> float:
    dt = new.t - old.t
    if dt <= 0:
        return 0.0
    return increase(old.values.get(key, 0.0), new.values.get(key, 0.0)) / dt


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def view(points: Sequence[Point], started: float, latest: Point | None = None) -> dict[str, object]:
    """What the status page shows, JSON-ready. `points` are the evenly spaced readings of the
    charts; `latest`, a reading taken just now (between two of them), only moves the current
    figures (in a chart it would be one short, noisy interval). `started`: when sampling began."""
    history = [*points, latest] if latest is not None else list(points)
    if not history:
        return {"now": {}, "series": {}, "t": [], "uptime": 0.0}
    last = history[-1]
    minute = _since(history, RATE_WINDOW)
    five = _since(history, QUANTILE_WINDOW)
    now: dict[str, object] = {
        key: last.values.get(key, 0.0) for key in GAUGES.values() if key in last.values
    }
    now["streams"] = dict(sorted(last.streams.items()))
    now["open_streams"] = sum(last.streams.values())
    for key in ("turns", "failed", "rejections", "n8n_errors"):
        now[f"{key}_per_s"] = _round(_rate(minute, last, key))
    calls = increase(minute.values.get("n8n_calls", 0.0), last.values.get("n8n_calls", 0.0))
    errors = increase(minute.values.get("n8n_errors", 0.0), last.values.get("n8n_errors", 0.0))
    now["n8n_error_ratio"] = _round(errors / calls) if calls > 0 else None
    now["ttft_p50"] = _round(quantile(0.5, five.ttft, last.ttft))
    now["ttft_p95"] = _round(quantile(0.95, five.ttft, last.ttft))
    now["turns_total"] = last.values.get("turns", 0.0)
    series: dict[str, list[float | None]] = {
        "turns_per_s": [],
        "failed_per_s": [],
        "rejections_per_s": [],
        "ttft_p95": [],
        "in_flight": [],
        "open_streams": [],
    }
    times: list[float] = []
    for old, new in itertools.pairwise(points):
        times.append(round(new.t - last.t, 1))  # seconds before the latest reading (<= 0)
        series["turns_per_s"].append(_round(_rate(old, new, "turns")))
        series["failed_per_s"].append(_round(_rate(old, new, "failed")))
        series["rejections_per_s"].append(_round(_rate(old, new, "rejections")))
        series["ttft_p95"].append(_round(quantile(0.95, old.ttft, new.ttft)))
        series["in_flight"].append(new.values.get("in_flight", 0.0))
        series["open_streams"].append(sum(new.streams.values()))
    return {"now": now, "series": series, "t": times, "uptime": round(last.t - started, 1)}
