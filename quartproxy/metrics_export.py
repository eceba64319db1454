"""The exposition of the gateway's metrics: where prometheus-client keeps their values (in
memory, or memory-mapped files shared by the workers), the registry, the supervisor's restart
counts, and the text `/metrics` serves. The metric objects themselves are in metrics.py, which
re-exports every name here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# Read at import on purpose, not when an app is created: prometheus-client chooses where every
# metric value lives (in memory, or memory-mapped files in this directory) when *it* is imported
# (prometheus_client.values.ValueClass), and the metric objects below are made at import with
# that choice. Reading the variable later could only disagree with it; check_multiprocess_dir()
# (called by the app factory) refuses that disagreement instead of serving per-worker figures.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
CONTENT_TYPE = CONTENT_TYPE_LATEST

# In single-process mode this registry is what /metrics renders; in multiprocess mode the values
# live in files and /metrics renders a fresh registry fed by MultiProcessCollector.
REGISTRY = CollectorRegistry()
if MULTIPROCESS_DIR is None:
    ProcessCollector(registry=REGISTRY)


class RestartsCollector(Collector):
    """`quartproxy_worker_restarts_total{reason}`: the supervisor's own count, read from the
    memory it shares with its workers (supervision.py), not summed over worker files: the
    supervisor keeps no metric files. Absent when no supervisor runs the process."""

    def collect(self) -> Iterator[Metric]:
        from . import supervision

        counts = supervision.restarts()
        if counts is None:
            return
        family = CounterMetricFamily(
            "quartproxy_worker_restarts",
            "Workers the supervisor replaced, by reason: died (a signal or a non-zero exit), "
            "recycled (exited on its own after max_requests), reload (DEBUG file change).",
            labels=["reason"],
        )
        for reason, n in counts.items():
            family.add_metric([reason], n)
        yield family


RESTARTS = RestartsCollector()


def render() -> bytes:
    """The exposition text, summed over every worker in multiprocess mode. Reads files:
    call it from a thread."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(RESTARTS)
    return generate_latest(registry)


def check_multiprocess_dir() -> None:
    """RuntimeError if PROMETHEUS_MULTIPROC_DIR changed since this module was imported (set by
    code that ran too late): /metrics would then show one worker's figures as the total."""
    now = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    if now != MULTIPROCESS_DIR:
        raise RuntimeError(
            f"PROMETHEUS_MULTIPROC_DIR is {now!r} but was {MULTIPROCESS_DIR!r} when the metrics "
            "were created: set it before quartproxy is imported (python -m quartproxy does)"
        )


def mark_process_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (called by the supervisor that saw it exit)."""
    if MULTIPROCESS_DIR is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
