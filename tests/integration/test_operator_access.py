"""Operator data (/metrics, the detail of /health) through a real Hypercorn: safe by default.

Without METRICS_TOKEN only this host and TRUSTED_PROXIES may read it, judged on the client
address as the rate limits resolve it; with the token, only its bearer. Remote clients are
simulated as X-Forwarded-For hops from 127.0.0.1 with TRUSTED_PROXIES=127.0.0.1 (the tests
may only use loopback sockets), exactly what a request relayed by nginx looks like."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from quartproxy.core.origins import is_local, parse_networks
from tests.integration.test_store_outage import production_proxy
from tests.ops_support import scrape
from tests.support import FakeN8n, Proxy, free_port

Factory = Callable[..., AbstractAsyncContextManager[Proxy]]
OUTSIDE = {"X-Forwarded-For": "203.0.113.50"}
TOKEN = "metrics-secret-token-0123456789"


def test_is_local() -> None:
    trusted = parse_networks("10.0.0.0/8")
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "10.1.2.3"):
        assert is_local(address, trusted), address
    for address in ("203.0.113.50", "2001:db8::1", "11.0.0.1", "unknown", "", "::"):
        assert not is_local(address, trusted), address
    assert not is_local("10.1.2.3", ())


async def test_metrics_without_token_serve_this_host_only(make_proxy: Factory) -> None:
    async with make_proxy(TRUSTED_PROXIES="127.0.0.1") as p:
        await scrape(p.client)  # loopback, no X-Forwarded-For: the local Prometheus
        await scrape(p.client, **{"X-Forwarded-For": "127.0.0.1"})  # via a local nginx
        for xff in ("203.0.113.50", "127.0.0.1, 203.0.113.50", "2001:db8::5"):
            r = await p.client.get("/metrics", headers={"X-Forwarded-For": xff})
            assert r.status_code == 403, xff
            assert r.json()["error"]["code"] == "forbidden"
            assert "quartproxy_" not in r.text
    # A forged X-Forwarded-For from an untrusted peer is not believed, either way round.
    async with make_proxy() as p:
        await scrape(p.client, **OUTSIDE)


async def test_metrics_with_token_need_the_token_from_everyone(make_proxy: Factory) -> None:
    async with make_proxy(TRUSTED_PROXIES="127.0.0.1", METRICS_TOKEN=TOKEN) as p:
        for headers in ({}, OUTSIDE, {"Authorization": "Bearer nope"}):
            r = await p.client.get("/metrics", headers=headers)
            assert r.status_code == 401
        await scrape(p.client, Authorization=f"Bearer {TOKEN}")
        await scrape(p.client, Authorization=f"Bearer {TOKEN}", **OUTSIDE)


async def test_health_detail_is_for_operators_and_the_log(
    make_proxy: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/webhook/chat"
    async with make_proxy(dead, TRUSTED_PROXIES="127.0.0.1") as p:
        with caplog.at_level(logging.WARNING, logger="quartproxy.ops"):
            anonymous = await p.client.get("/health", headers=OUTSIDE)
            await p.client.get("/health", headers=OUTSIDE)
            local = await p.client.get("/health")
    assert anonymous.status_code == local.status_code == 503
    assert anonymous.json() == {
        "status": "degraded",
        "checks": {"n8n": {"status": "fail"}, "store": {"status": "ok"}},
        "failing": ["n8n"],
    }
    assert local.json()["checks"]["n8n"]["detail"] == "connection refused"
    assert local.json()["checks"]["store"]["backend"] == "memory"
    lines = [r.getMessage() for r in caplog.records if r.name == "quartproxy.ops"]
    assert lines == ["health: n8n check failing: connection refused"]  # once, not per poll


@pytest.mark.redis
async def test_health_never_tells_anonymous_callers_the_redis_address(
    fake_n8n: FakeN8n, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with production_proxy(
        fake_n8n, tmp_path, TRUSTED_PROXIES="127.0.0.1", METRICS_TOKEN=TOKEN
    ) as (p, redis):
        port = redis.url.rsplit(":", 1)[1].split("/")[0]
        redis.stop()
        with caplog.at_level(logging.WARNING, logger="quartproxy.ops"):
            for headers in ({}, OUTSIDE):  # with a token set, local callers are anonymous too
                r = await p.client.get("/health", headers=headers)
                assert r.status_code == 503
                assert r.json()["checks"]["store"] == {"status": "fail"}
                assert port not in r.text and "redis" not in r.text.lower()
            r = await p.client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        detail = r.json()["checks"]["store"]["detail"]
        assert r.json()["checks"]["store"]["backend"] == "redis"
        assert detail.startswith("Redis:")
        assert any(detail in rec.getMessage() for rec in caplog.records)
        assert json.dumps(r.json()).count("detail") >= 1
