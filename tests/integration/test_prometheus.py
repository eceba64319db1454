"""A real Prometheus scrapes a real gateway (`python -m quartproxy --workers 2`, SQLite store)
while traffic with errors and rejections goes through it; every PromQL expression of the
alert rules and the dashboard (tests/observability.py) must then return series from
Prometheus's HTTP API, and every rule must evaluate without error.

A few metrics appear only after an event this test does not cause (EVENT_ONLY, with the test
that causes it): their expressions must still be valid PromQL (Prometheus parses and runs
them) and name metrics the app exports (tests/unit/test_observability.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from tests.observability import RULES, Query, queries
from tests.ops_support import server_env, server_process
from tests.prometheus_server import POLL, prometheus
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    OTHER_ORIGIN,
    FakeN8n,
    parse_sse,
)

pytestmark = pytest.mark.prometheus

EVENT_ONLY = {
    "quartproxy_orphaned_turns_total": "a worker dies mid-answer (test_turn_leases.py)",
    "quartproxy_store_errors_total": "a store outage (the fault suite)",
    "quartproxy_n8n_resends_total": "n8n closing a reused connection (the fault suite)",
}
DEADLINE = 90.0  # seconds for every expression to have series (1 s scrapes and evaluations)


async def drive_traffic(url: str, fake: FakeN8n) -> None:
    """Turns that end ok, with n8n errors (5xx, 401, an error chunk) and with a timeout;
    rejections for a bot, origin, bad input, auth and rate limit; a resume."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=BROWSER_HEADERS) as c:
        r = await c.post(
            "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
        )
        assert r.status_code == 201, r.text
        async with httpx.AsyncClient(base_url=url, timeout=30) as bot:  # an HTTP library's UA
            r_bot = await bot.post("/api/v1/session/create", json={}, headers={"Origin": ORIGIN})
            assert r_bot.status_code == 403, r_bot.text
        auth = {
            "Origin": ORIGIN,
            "Authorization": f"Bearer {r.json()['token']}",
            "X-Chat-Fingerprint": FINGERPRINT,
        }
        mid = ""
        for message in ("hello", "status:500", "status:401", "error-mid", "stall", "hello again"):
            r = await c.post("/api/v1/chat/message", json={"message": message}, headers=auth)
            assert r.status_code == 200, r.text
            if message == "hello":
                mid = parse_sse(r.text)[0].data["message_id"]
        fake.gates["stall"].set()
        r = await c.get(
            f"/api/v1/chat/message/{mid}", headers={**auth, "Last-Event-ID": f"{mid}:0"}
        )
        assert r.status_code == 200, r.text
        refused = [
            await c.post("/api/v1/session/create", json={}, headers={"Origin": OTHER_ORIGIN}),
            await c.post(
                "/api/v1/chat/message",
                content=b"{not json",
                headers={**auth, "Content-Type": "application/json"},
            ),
            await c.post(
                "/api/v1/chat/message",
                json={"message": "hi"},
                headers={**auth, "Authorization": "Bearer not-a-token"},
            ),
        ]
        assert [r.status_code for r in refused] == [403, 400, 401]
        statuses = [
            (
                await c.post(
                    "/api/v1/session/create",
                    json={"fingerprint": FINGERPRINT},
                    headers={"Origin": ORIGIN},
                )
            ).status_code
            for _ in range(3)
        ]
        assert 429 in statuses, statuses


def needs_series(q: Query) -> bool:
    return not (q.metrics & EVENT_ONLY.keys())


async def test_every_shipped_expression_returns_series_from_a_real_prometheus(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    (tmp_path / "prom-mp").mkdir()
    env = server_env(
        fake_n8n.url,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom-mp"),
        DEPLOYMENT_MODE="sqlite",
        SQLITE_PATH=str(tmp_path / "quartproxy.db"),
        N8N_TIMEOUT_SECONDS="0.5",
        RATE_LIMIT_SESSION_CREATE="2/minute",
    )
    async with server_process(env, workers=2) as server:
        await server.wait_log(lambda line: "Running on" in str(line.get("msg", "")), count=2)
        target = server.url.removeprefix("http://")
        async with prometheus(tmp_path, target, rule_files=[RULES]) as prom:
            await drive_traffic(server.url, fake_n8n)
            todo = queries()
            empty: list[Query] = []
            with trio.move_on_after(DEADLINE):
                while True:
                    empty = [q for q in todo if needs_series(q) and not await prom.query(q.expr)]
                    if not empty:
                        break
                    await trio.sleep(POLL)
            assert not empty, "no series:\n" + "\n".join(f"{q.where}: {q.expr}" for q in empty)
            for q in todo:  # the event-only ones too: valid PromQL, run without error
                await prom.query(q.expr)

            # two workers are summed, and the traffic above is what Prometheus saw
            assert (await prom.query("sum(quartproxy_workers)"))[0]["value"][1] == "2"
            outcomes = {
                s["metric"]["outcome"]
                for s in await prom.query("sum by (outcome) (quartproxy_chat_turns_total)")
            }
            assert {"ok", "upstream_error", "upstream_timeout"} <= outcomes
            reasons = {
                s["metric"]["reason"]
                for s in await prom.query("sum by (reason) (quartproxy_rejections_total)")
            }
            assert {"origin", "bad_input", "auth", "rate_limit"} <= reasons

            # /status reads the same sum over the workers as /metrics
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
                now = (await c.get("/status/data")).json()["now"]
            assert now["workers"] == 2
            assert now["turns_total"] >= 6
            assert now["memory_bytes"] > 0

            with trio.fail_after(30):  # every rule evaluated at least once, without error
                while True:
                    rules = await prom.rules()
                    evaluated = [r.get("lastEvaluation", "0001").startswith("2") for r in rules]
                    if rules and all(evaluated):
                        break
                    await trio.sleep(POLL)
            bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
            assert not bad
            assert len(rules) == len([q for q in todo if q.where.endswith("#1")])
