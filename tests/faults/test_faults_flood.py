"""A flood of 2,000 chat requests from one address against two workers with the default
limits: /health keeps answering throughout, every request gets a contract answer (an answer,
409 busy, or 429 rate_limited with Retry-After), no workflow runs twice, and the refusals are
counted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from tests.faults.harness import as_turn, auth, client, fake_n8n, gateway, tracebacks
from tests.support import BROWSER_HEADERS

pytestmark = pytest.mark.faults

FLOOD = 2000
CONCURRENCY = 100


async def test_a_flood_of_2000_requests_while_health_keeps_answering(tmp_path: Path) -> None:
    async with (
        fake_n8n() as n8n,
        gateway(
            n8n.url,
            workers=2,
            DEPLOYMENT_MODE="sqlite",
            SQLITE_PATH=str(tmp_path / "flood.db"),
            RATE_LIMIT_IP="30/minute",  # the defaults: the limiter is what holds the flood
            RATE_LIMIT_SESSION="20/minute",
        ) as gw,
    ):
        sessions = [await gw.session() for _ in range(20)]
        statuses: dict[int, int] = {}
        answered: list[str] = []
        health: list[int] = []
        flooding = trio.Event()
        done = trio.Event()
        limit = trio.CapacityLimiter(CONCURRENCY)

        async def one(http: httpx.AsyncClient, i: int) -> None:
            async with limit:
                message = f"flood {i}"
                r = await http.post(
                    "/api/v1/chat/message",
                    json={"message": message},
                    headers=auth(sessions[i % len(sessions)]),
                )
                flooding.set()
                turn = as_turn(r)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    assert turn.final["event"] == "end" and turn.text == f"echo: {message}"
                    answered.append(message)
                elif r.status_code == 409:  # the session's previous answer is still running
                    assert turn.error == "busy", r.text
                else:
                    assert (r.status_code, turn.error) == (429, "rate_limited"), r.text
                    assert int(turn.retry_after or 0) >= 1

        async def probe() -> None:
            await flooding.wait()
            async with client(gw.url) as own:  # its own connections, as a load balancer's
                while not done.is_set():
                    with trio.fail_after(30):  # a liveness bound, not a timing assertion
                        r = await own.get("/health")
                    health.append(r.status_code)

        with trio.fail_after(600):
            async with trio.open_nursery() as outer:
                outer.start_soon(probe)
                # a connection per request, as from many visitors (no client-side keep-alive)
                no_reuse = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
                async with (
                    httpx.AsyncClient(
                        base_url=gw.url, timeout=120, headers=BROWSER_HEADERS, limits=no_reuse
                    ) as http,
                    trio.open_nursery() as nursery,
                ):
                    for i in range(FLOOD):
                        nursery.start_soon(one, http, i)
                done.set()

        assert sum(statuses.values()) == FLOOD
        assert set(statuses) <= {200, 409, 429}, statuses
        assert 1 <= statuses.get(200, 0) <= 30  # the per-IP limit held across both workers
        assert health and set(health) == {200}, health
        assert len(n8n.requests) == len(answered)  # no workflow ran twice
        assert all(n8n.runs(m) == 1 for m in answered)
        rejections = await gw.metric("quartproxy_rejections_total", reason="rate_limit")
        assert rejections == statuses.get(429, 0)
        busy = await gw.metric("quartproxy_rejections_total", reason="busy")
        assert busy == statuses.get(409, 0)
        assert tracebacks(gw.log()) == 0
