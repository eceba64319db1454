"""The fault-injection suite's harness: the real gateway (a `hypercorn -k trio` subprocess,
tests/proxy_process.py), a fake n8n served by Hypercorn in the test process (tests/support.py,
plus the faults below) and, where it matters, a real redis-server (tests/redis_server.py).

Each case asserts what the visitor sees (the contract's codes), that no text is lost or
doubled, that no answer ran twice (requests counted on the fake n8n), and what the operator
sees (metrics, one log line, no traceback). Everything is on loopback and bounded in time.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from tests.proxy_process import ProxyProcess, proxy_process
from tests.support import BROWSER_HEADERS, FINGERPRINT, ORIGIN, FakeN8n, chunk, parse_sse, served

BOUND = 60  # seconds: a bound on each step, never a timing assertion


class FaultyN8n(FakeN8n):
    """FakeN8n plus faults chosen by the message (see tests/support.py for the others):

    die-mid      begin, one item, then the connection is dropped (n8n crashed mid-stream)
    garbage-all  200 with an HTML body: no JSON anywhere
    """

    async def _answer(self, send: Any, message: str, claims: dict[str, Any]) -> None:
        if message == "die-mid":
            await self._start(send)
            for part in (chunk("begin"), chunk("item", "partial ")):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            raise RuntimeError("n8n died mid-stream (fault injected)")  # Hypercorn drops it
        if message == "garbage-all":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/html")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b"<html>Bad gateway</html>"})
            return
        await super()._answer(send, message, claims)

    def runs(self, message: str) -> int:
        """How many times the workflow was asked to answer `message`."""
        return sum(1 for r in self.requests if r["body"].get("chatInput") == message)


@asynccontextmanager
async def fake_n8n(**hypercorn: Any) -> AsyncIterator[FaultyN8n]:
    fake = FaultyN8n()
    async with served(fake, **hypercorn) as url:
        fake.url = f"{url}/webhook/chat"
        yield fake


def client(url: str, **kw: Any) -> httpx.AsyncClient:
    # keep-alive expiry below Hypercorn's 5 s: the visitor's side of the race the gateway
    # avoids towards n8n (a browser re-sends on a reused connection that closed unanswered)
    limits = httpx.Limits(max_connections=500, keepalive_expiry=2.0)
    return httpx.AsyncClient(
        base_url=url, timeout=BOUND, headers=BROWSER_HEADERS, limits=limits, **kw
    )


def auth(session: dict[str, str]) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Authorization": f"Bearer {session['token']}",
        "X-Chat-Fingerprint": FINGERPRINT,
    }


@dataclass
class Turn:
    """What the visitor saw: the status, and the SSE events or the JSON error."""

    status: int
    events: list[dict[str, Any]]
    error: str | None = None
    retry_after: str | None = None

    @property
    def text(self) -> str:
        return "".join(e["data"]["text"] for e in self.events if e["event"] == "delta")

    @property
    def final(self) -> dict[str, Any]:
        return self.events[-1]


@dataclass
class Gateway:
    proc: ProxyProcess
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.proc.url

    def log(self) -> str:
        return self.proc.output.decode(errors="replace")

    async def session(self) -> dict[str, str]:
        r = await self.http.post(
            "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def turn(self, session: dict[str, str], message: str) -> Turn:
        r = await self.http.post(
            "/api/v1/chat/message", json={"message": message}, headers=auth(session)
        )
        return as_turn(r)

    async def metrics(self) -> str:
        return (await self.http.get("/metrics")).text

    async def metric(self, name: str, **labels: str) -> float:
        return metric_value(await self.metrics(), name, **labels)


def as_turn(r: httpx.Response) -> Turn:
    if r.status_code != 200:
        body = r.json()
        return Turn(r.status_code, [], body["error"]["code"], r.headers.get("Retry-After"))
    events = [{"id": e.id, "event": e.event, "data": e.data} for e in parse_sse(r.text)]
    return Turn(200, events)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


@asynccontextmanager
async def gateway(n8n_url: str, workers: int = 1, **env: str) -> AsyncIterator[Gateway]:
    env.setdefault("RATE_LIMIT_IP", "100000/minute")
    env.setdefault("RATE_LIMIT_SESSION", "100000/minute")
    env.setdefault("RATE_LIMIT_ORIGIN", "100000/minute")
    env.setdefault("RATE_LIMIT_SESSION_CREATE", "100000/minute")
    with tempfile.TemporaryDirectory(prefix="qp-faults-metrics-") as metrics_dir:
        if workers > 1:  # as `python -m quartproxy` does: /metrics sums every worker
            env.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        async with (
            proxy_process(n8n_url, workers=workers, **env) as proc,
            client(proc.url) as http,
        ):
            yield Gateway(proc, http)


def tracebacks(log: str) -> int:
    return log.count("Traceback (most recent call last)")


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def wait_for(predicate: Any, what: str, bound: float = BOUND) -> None:
    """Poll a condition (a function returning bool, or an awaitable factory) with a bound."""
    with trio.fail_after(bound):
        while True:
            got = predicate()
            if hasattr(got, "__await__"):
                got = await got
            if got:
                return
            await trio.sleep(0.05)
