"""Prometheus metrics: every metric object of the gateway, and one-line functions to record them.

Correct with several Hypercorn workers: `python -m quartproxy` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before it spawns workers; prometheus-client
then keeps each process's values in memory-mapped files there, and `/metrics` (served by any
worker) sums them. The environment variable must be set before this module is imported, which
is why the CLI sets it before it spawns the workers.

Cheap on the hot path: label children used per turn are looked up once per turn; nothing is
recorded per delta except the first one (time to first token) and, in `sqlite` mode, the group
commits of streamed events (two label-free counters per group, so per delta only when idle).

Cardinality is bounded: `origin` labels are the configured exact origins (canonical form),
`other` for wildcard-matched or unknown origins and `none` without an Origin; every other label
comes from a fixed set (metric_labels.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from .metric_labels import (
    ERROR_CODES,
    N8N_ERROR_KINDS,
    OUTCOMES,
    QUOTA_PERIODS,
    REASONS,
    REJECTION_REASONS,
    TIERS,
    bounded,
)

# the exposition (registry, /metrics text, multiprocess files); imported from here by the app
from .metrics_export import (  # noqa: F401 (re-exported)
    CONTENT_TYPE,
    MULTIPROCESS_DIR,
    REGISTRY,
    RESTARTS,
    RestartsCollector,
    check_multiprocess_dir,
    mark_process_dead,
    render,
)

if TYPE_CHECKING:
    from .core.events import TurnEvent
    from .errors import ApiError

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0, 120.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

TURNS = Counter(
    "quartproxy_chat_turns",
    "Chat turns by how they ended (ok, or the error code of their final event).",
    ["outcome", "origin"],
    registry=REGISTRY,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "quartproxy_chat_time_to_first_token_seconds",
    "From the start of a turn to its first delta.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TURN_DURATION = Histogram(
    "quartproxy_chat_turn_duration_seconds",
    "From the start of a turn to its final event, by outcome.",
    ["outcome"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
TURNS_IN_FLIGHT = Gauge(
    "quartproxy_chat_turns_in_flight",
    "Answers being produced right now (summed over live workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
N8N_LATENCY = Histogram(
    "quartproxy_n8n_response_seconds",
    "From sending a request to n8n until its response headers arrive.",
    ["action"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
N8N_ERRORS = Counter(
    "quartproxy_n8n_errors",
    "Failed n8n calls by kind.",
    ["kind"],
    registry=REGISTRY,
)
OPEN_STREAMS = Gauge(
    "quartproxy_open_streams",
    "Open answer streams by channel (sse, ndjson, ws, compat).",
    ["channel"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "quartproxy_rejections",
    "Requests refused before any answer, by reason (and rate-limit tier).",
    ["reason", "tier", "origin"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "quartproxy_http_errors",
    "Error answers by contract error code.",
    ["code"],
    registry=REGISTRY,
)
RESUMES = Counter(
    "quartproxy_resumes",
    "Resume requests (Last-Event-ID) by result: ok, or expired.",
    ["result"],
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "quartproxy_store_errors",
    "Store failures by where they surfaced: request (answered 503 store_unavailable), "
    "fail_open (let through by RATE_LIMIT_FAIL_MODE=open), retention.",
    ["where"],
    registry=REGISTRY,
)
N8N_RESENDS = Counter(
    "quartproxy_n8n_resends",
    "Requests whose reused n8n connection closed before any answer byte: resent (never sent,"
    " or idempotent), or refused (a POST that may have run: the visitor gets upstream_error).",
    ["action"],
    registry=REGISTRY,
)
WORKERS = Gauge(
    "quartproxy_workers",
    "Worker processes serving (summed over live workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DRAINING = Gauge(
    "quartproxy_draining_workers",
    "Workers that refuse new turns because they are shutting down.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

SCREENED = Counter(
    "quartproxy_blocked_requests_total",
    "Requests refused (or, in log-only mode, that would have been) by the bot and spam checks.",
    ["check", "reason", "action"],
    registry=REGISTRY,
)
ORPHANS = Counter(
    "quartproxy_orphaned_turns",
    "Turns of dead workers (lapsed lease) finished by the orphan sweep: ended (a final error "
    "event was written) or released (it already had its final event).",
    ["result"],
    registry=REGISTRY,
)
SITE_TURNS = Counter(
    "quartproxy_site_turns",
    "Chat turns per site (SITES_FILE's ids; `default` without a file) by how they ended.",
    ["site", "outcome"],
    registry=REGISTRY,
)
QUOTA_REFUSED = Counter(
    "quartproxy_site_quota_refused",
    "Chat turns refused because their site's daily or monthly quota was used up.",
    ["site", "period"],
    registry=REGISTRY,
)
STORE_FAILOVER_RETRIES = Counter(
    "quartproxy_store_failover_retries",
    "Redis writes sent again because the primary of their keys was gone (Redis Cluster or "
    "Sentinel failover under way); a rise followed by silence is a failover survived.",
    registry=REGISTRY,
)
STORE_BUFFER_COMMITS = Counter(
    "quartproxy_store_buffer_commits",
    "SQLite transactions that stored streamed answer events (group commits: each holds the "
    "upstream reads of every answer that arrived during the previous one).",
    registry=REGISTRY,
)
STORE_BUFFER_APPENDS = Counter(
    "quartproxy_store_buffer_appends",
    "Upstream reads stored by those transactions (appends / commits: the mean group size).",
    registry=REGISTRY,
)

# Per process, not per app: the registry and its label values are per process (prometheus-client
# keeps one value store per process), and a process serves one app (tests build several in turn;
# each configures its own origins when it is created).
_origins: frozenset[str] = frozenset()
_sites: frozenset[str] = frozenset({"default"})


def configure(exact_origins: Iterable[str], sites: Iterable[str] = ("default",)) -> None:
    """The origins that get their own label (canonical exact origins of ALLOWED_ORIGINS, or
    of every site), and the site ids (the registry's: a bounded set; others are `other`)."""
    global _origins, _sites
    _origins = frozenset(exact_origins)
    _sites = _sites | frozenset(sites)  # a reload adds ids; a label once used stays valid


def site_label(site: str | None) -> str:
    return site if site in _sites else "other"


def quota_refused(site: str, period: str) -> None:
    QUOTA_REFUSED.labels(site_label(site), bounded(period, QUOTA_PERIODS)).inc()


def origin_label(origin: str | None) -> str:
    if not origin:
        return "none"
    if origin in _origins:
        return origin
    from .core.origins import normalise_origin

    norm = normalise_origin(origin)
    return norm if norm in _origins else "other"


# --- turns -------------------------------------------------------------------------------------


class TurnTimer:
    """Times one turn: create at its start, `first_token()` on each delta (only the first counts),
    `finish(outcome)` exactly once at its end."""

    __slots__ = ("origin", "site", "started", "ttft")

    def __init__(self, origin: str | None, site: str = "default") -> None:
        self.origin = origin
        self.site = site
        self.started = time.perf_counter()
        self.ttft: float | None = None
        TURNS_IN_FLIGHT.inc()

    def first_token(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.started
            TIME_TO_FIRST_TOKEN.observe(self.ttft)

    def finish(self, outcome: str) -> None:
        turn_finished(outcome, self.ttft, time.perf_counter() - self.started, self.origin)
        SITE_TURNS.labels(site_label(self.site), bounded(outcome, OUTCOMES)).inc()
        TURNS_IN_FLIGHT.dec()


def turn_finished(outcome: str, ttft: float | None, duration: float, origin: str | None) -> None:
    """Count a finished turn (ttft is observed by TurnTimer.first_token; here for callers that
    time turns themselves, when given and TurnTimer was not used)."""
    outcome = bounded(outcome, OUTCOMES)
    TURNS.labels(outcome, origin_label(origin)).inc()
    TURN_DURATION.labels(outcome).observe(duration)


def outcome_of(final: TurnEvent | None, *, deleted: bool = False) -> str:
    """The outcome label of a turn from its final event."""
    if deleted:
        return "deleted"
    if final is None:
        return "internal"
    if final.name == "end":
        return "ok"
    return str(getattr(final, "code", "internal"))


# --- n8n ---------------------------------------------------------------------------------------


def n8n_response(action: str, seconds: float) -> None:
    N8N_LATENCY.labels(action).observe(seconds)


def n8n_error(kind: str) -> None:
    N8N_ERRORS.labels(bounded(kind, N8N_ERROR_KINDS)).inc()


def n8n_status_kind(status: int) -> str:
    if status in (401, 403):
        return "http_auth"
    if status == 404:
        return "http_not_found"
    if status >= 500:
        return "http_5xx"
    return "http_other"


def n8n_parse_error(message: str) -> None:
    """Count an error the answer parser reported (told apart by its message)."""
    from .core import n8n_parse

    kinds = {
        n8n_parse.WORKFLOW_FAILED: "error_chunk",
        n8n_parse.STREAM_CUT: "cut",
        n8n_parse.EMPTY_ANSWER: "empty",
        n8n_parse.UNREADABLE: "unreadable",
    }
    n8n_error(kinds.get(message, "other"))


# --- channels ----------------------------------------------------------------------------------


class StreamGauge:
    """`with metrics.stream_open("sse"):` around the life of one answer stream."""

    __slots__ = ("_child",)

    def __init__(self, channel: str) -> None:
        self._child = OPEN_STREAMS.labels(channel)

    def __enter__(self) -> None:
        self._child.inc()

    def __exit__(self, *exc: object) -> None:
        self._child.dec()


def stream_open(channel: str) -> StreamGauge:
    return StreamGauge(channel)


def store_error(where: str) -> None:
    STORE_ERRORS.labels(where if where in ("retention", "fail_open") else "request").inc()


def n8n_resend(resent: bool) -> None:
    N8N_RESENDS.labels("resent" if resent else "refused").inc()


def resumed(result: str) -> None:
    RESUMES.labels("ok" if result == "ok" else "expired").inc()


def rejected(err: ApiError, origin: str | None) -> None:
    """Count an error answer; those that refuse a request also count as a rejection with
    its reason (and the rate-limit tier from the `X-RateLimit-Tier` header the limiter sets)."""
    ERRORS.labels(bounded(err.code, ERROR_CODES)).inc()
    reason = REJECTION_REASONS.get(err.code)
    if reason is None:
        return
    if reason == "blocked":
        reason = bounded(getattr(err, "reason", None) or "blocked", REASONS)
    tier = ""
    if reason == "rate_limit":
        tier = bounded(err.headers.get("X-RateLimit-Tier", ""), TIERS)
    REJECTIONS.labels(reason, tier, origin_label(origin)).inc()


def screened(check: str, reason: str, enforced: bool) -> None:
    """A bot or spam verdict against a request (`reason` is the screen's own fixed name)."""
    SCREENED.labels(check, reason, "blocked" if enforced else "logged").inc()


# --- process -----------------------------------------------------------------------------------


def orphan_finished(result: str) -> None:
    """One orphaned turn finished by this worker's sweep. A plain Counter: in multiprocess mode
    each worker writes its own file and /metrics sums them, dead workers' counts included."""
    ORPHANS.labels(bounded(result, frozenset({"ended", "released"}))).inc()


def store_failover_retry() -> None:
    STORE_FAILOVER_RETRIES.inc()


def store_group_commit(appends: int) -> None:
    """One SQLite group commit of `appends` buffer appends (recorded per group, not per delta)."""
    STORE_BUFFER_COMMITS.inc()
    STORE_BUFFER_APPENDS.inc(appends)


def worker_started() -> None:
    WORKERS.inc()


def worker_stopped() -> None:
    WORKERS.dec()


def draining(on: bool) -> None:
    DRAINING.set(1 if on else 0)


# Registered after every metric above, so /metrics lists the restarts last, as it always has.
if MULTIPROCESS_DIR is None:
    REGISTRY.register(RESTARTS)
