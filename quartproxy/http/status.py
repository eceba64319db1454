"""`/status`: a live status page for operators who run no Prometheus, and `/status/data`, the
JSON it polls. Same access rule as /metrics (`ops.operator_access`); with METRICS_TOKEN set, a
browser may also give the token as the password of HTTP Basic auth (it cannot send a bearer
header on a page load), and a 401 asks for it.

A task of each worker reads the metrics every SAMPLE_SECONDS — the text /metrics renders, so in
multiprocess mode the sum over all workers — into a ring buffer of the last minutes; the page's
charts come from it, its current figures from a fresh reading (core.status turns the readings
into figures). The same task records this worker's memory and open file descriptors as gauges
summed over live workers (`process_*` exists in single-process mode only).

The page is one HTML file with its style and script inline under a per-response nonce (the
CSP allows nothing else: no external assets, no inline handlers, `connect-src 'self'`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import trio
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families
from quart import Blueprint, Response, current_app, jsonify, request
from quart_trio import QuartTrio

from .. import metrics
from ..core import status as figures
from ..errors import ApiError
from .common import services
from .ops import operator_access

bp = Blueprint("status", __name__)

SAMPLE_SECONDS = 5.0
KEEP_SECONDS = 600.0  # ten minutes of charts: 120 readings
PAGE = (Path(__file__).with_name("status.html")).read_text(encoding="utf-8")

MEMORY = Gauge(
    "quartproxy_process_resident_memory_bytes",
    "Resident memory of the worker processes (summed over live workers).",
    multiprocess_mode="livesum",
    registry=metrics.REGISTRY,
)
OPEN_FDS = Gauge(
    "quartproxy_process_open_fds",
    "Open file descriptors of the worker processes (summed over live workers).",
    multiprocess_mode="livesum",
    registry=metrics.REGISTRY,
)


def record_process() -> None:
    """This worker's resident memory and open fds (Linux /proc; elsewhere left at 0)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            MEMORY.set(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
        OPEN_FDS.set(len(os.listdir("/proc/self/fd")))
    except (OSError, ValueError, IndexError):
        pass


def _samples(text: str) -> Iterator[figures.Sample]:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            yield s.name, s.labels, s.value


def read() -> figures.Point:
    """One reading of the metrics /metrics serves (reads files: call it from a thread)."""
    record_process()
    return figures.point(time.time(), _samples(metrics.render().decode()))


class Sampler:
    """The ring buffer of readings and the task that fills it."""

    def __init__(self) -> None:
        self.points: deque[figures.Point] = deque(maxlen=int(KEEP_SECONDS / SAMPLE_SECONDS) + 1)
        self.started = time.time()
        self.stop = trio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            self.points.append(await trio.to_thread.run_sync(read))
            with trio.move_on_after(SAMPLE_SECONDS):
                await self.stop.wait()

    async def current(self) -> dict[str, object]:
        fresh = await trio.to_thread.run_sync(read)
        if not self.points or fresh.t - self.points[-1].t >= SAMPLE_SECONDS:
            self.points.append(fresh)
            return figures.view(self.points, self.started)
        # figures of now; the charts keep their even spacing
        return figures.view(self.points, self.started, fresh)


def _sampler() -> Sampler:
    return cast(Sampler, current_app.extensions["quartproxy.status"])


@bp.before_app_serving
async def start_sampling() -> None:
    sampler = Sampler()
    current_app.extensions["quartproxy.status"] = sampler
    cast(QuartTrio, current_app).nursery.start_soon(sampler.run)


@bp.after_app_serving
async def stop_sampling() -> None:
    _sampler().stop.set()


def basic_password(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def allow() -> None:
    """The /metrics rule, plus the token as a Basic-auth password for browsers."""
    svc = services()
    token = svc.settings.metrics_token
    given = basic_password(request.headers.get("Authorization")) if token else None
    if token and given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return
    try:
        operator_access(svc, required=True)
    except ApiError as err:
        if token and err.status == 401:
            err.headers["WWW-Authenticate"] = 'Basic realm="quartproxy status", charset="UTF-8"'
        raise


def page_csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


@bp.get("/status")
async def status_page() -> Response:
    allow()
    data = await _sampler().current()
    nonce = secrets.token_urlsafe(18)
    # The first figures travel in the page (readable before the script runs); `<` escaped so
    # the JSON cannot end its script element.
    initial = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    body = PAGE.replace("{{nonce}}", nonce).replace("{{initial}}", initial)
    response = Response(body, status=200, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = page_csp(nonce)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/status/data")
async def status_data() -> Response:
    allow()
    response = jsonify(await _sampler().current())
    response.headers["Cache-Control"] = "no-store"
    return response
