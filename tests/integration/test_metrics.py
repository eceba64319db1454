"""/metrics after scripted traffic: one process (in-process Hypercorn) and two workers
(`python -m quartproxy --workers 2`). Metrics are process-wide, so in-process tests compare
a scrape before and after their traffic."""

from __future__ import annotations

import httpx
import trio

from tests.ops_support import delta, scrape, server_env, server_process, value
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    OTHER_ORIGIN,
    FakeN8n,
    Proxy,
    free_port,
    sse_turn,
)

TURNS = "quartproxy_chat_turns_total"
REJECTIONS = "quartproxy_rejections_total"


async def test_turn_outcomes_latencies_and_n8n_errors_are_counted(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    before = await scrape(proxy.client)
    s = await proxy.session()
    for message in ("hello", "json:whole", "status:500", "status:401", "error-mid", "cut"):
        await sse_turn(proxy, s, message)
    wild = await proxy.session(origin="https://blog.example.org")  # allowed by a wildcard
    await sse_turn(proxy, wild, "hi", origin="https://blog.example.org")
    after = await scrape(proxy.client)

    assert delta(before, after, TURNS, outcome="ok", origin=ORIGIN) == 2
    assert delta(before, after, TURNS, outcome="upstream_error", origin=ORIGIN) == 4
    assert delta(before, after, TURNS, outcome="ok", origin="other") == 1
    # deltas arrived in 5 turns (hello, json, error-mid, cut, hi); each has one first token
    ttft = "quartproxy_chat_time_to_first_token_seconds_count"
    assert delta(before, after, ttft) == 5
    duration = "quartproxy_chat_turn_duration_seconds_count"
    assert delta(before, after, duration, outcome="ok") == 3
    assert delta(before, after, duration, outcome="upstream_error") == 4
    n8n = "quartproxy_n8n_errors_total"
    assert delta(before, after, n8n, kind="http_5xx") == 1
    assert delta(before, after, n8n, kind="http_auth") == 1
    assert delta(before, after, n8n, kind="error_chunk") == 1
    assert delta(before, after, n8n, kind="cut") == 1
    latency = "quartproxy_n8n_response_seconds_count"
    assert delta(before, after, latency, action="sendMessage") == 7
    assert value(after, "quartproxy_chat_turns_in_flight") == value(
        before, "quartproxy_chat_turns_in_flight"
    )


async def test_refused_connection_and_timeout_are_n8n_error_kinds(make_proxy, fake_n8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(n8n_url=f"http://127.0.0.1:{free_port()}/webhook/x") as p:
        before = await scrape(p.client)
        s = await p.session()
        events = await sse_turn(p, s, "hi")
        assert events[-1].data["code"] == "upstream_unavailable"
        after = await scrape(p.client)
    assert delta(before, after, "quartproxy_n8n_errors_total", kind="refused") == 1
    assert delta(before, after, TURNS, outcome="upstream_unavailable", origin=ORIGIN) == 1

    async with make_proxy(N8N_TIMEOUT_SECONDS="0.2") as p:
        before = await scrape(p.client)
        s = await p.session()
        events = await sse_turn(p, s, "stall")
        fake_n8n.gates["stall"].set()
        assert events[-1].data["code"] == "upstream_timeout"
        after = await scrape(p.client)
    assert delta(before, after, "quartproxy_n8n_errors_total", kind="timeout") == 1


async def test_rejections_by_reason_and_tier(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION_CREATE="2/minute", RATE_LIMIT_SESSION="2/minute") as p:
        before = await scrape(p.client)
        c = p.client
        # origin
        r = await c.post("/api/v1/session/create", headers={"Origin": OTHER_ORIGIN})
        assert r.status_code == 403
        r = await c.post("/api/v1/session/create")
        assert r.status_code == 403
        s = await p.session()
        # auth
        r = await c.get(
            "/api/v1/session/validate", headers={"Origin": ORIGIN, "Authorization": "Bearer no"}
        )
        assert r.status_code == 401
        wrong_fp = p.auth(s, fingerprint="another-browser")
        r = await c.post("/api/v1/chat/message", json={"message": "x"}, headers=wrong_fp)
        assert r.status_code == 401
        # bad input (also charged to the session's rate limit: 1 of 2)
        r = await c.post("/api/v1/chat/message", json={"message": ""}, headers=p.auth(s))
        assert r.status_code == 400
        r = await c.post(
            "/api/v1/chat/message",
            content=b"message=x",
            headers={**p.auth(s), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415
        # rate limit, session tier (2/minute is used up)
        r = await c.post("/api/v1/chat/message", json={"message": "x"}, headers=p.auth(s))
        assert r.status_code == 429
        assert r.headers["X-RateLimit-Tier"] == "session"
        # rate limit, session_create tier (2/minute: the second session uses it up)
        await p.session()
        r = await c.post("/api/v1/session/create", headers={"Origin": ORIGIN})
        assert r.status_code == 429
        after = await scrape(p.client)

    def rejected(reason: str, origin: str = ORIGIN, tier: str = "") -> float:
        return delta(before, after, REJECTIONS, reason=reason, tier=tier, origin=origin)

    assert rejected("origin", origin="other") == 1
    assert rejected("origin", origin="none") == 1
    assert rejected("auth") == 2
    assert rejected("bad_input") == 2
    assert rejected("rate_limit", tier="session") == 1
    assert rejected("rate_limit", tier="session_create") == 1
    errors = "quartproxy_http_errors_total"
    assert delta(before, after, errors, code="rate_limited") == 2
    assert delta(before, after, errors, code="origin_not_allowed") == 2


async def test_busy_open_streams_and_resumes(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    before = await scrape(proxy.client)
    s = await proxy.session()
    headers = proxy.auth(s)
    async with proxy.client.stream(
        "POST", "/api/v1/chat/message", json={"message": "gate:m"}, headers=headers
    ) as first:
        chunks = first.aiter_text()
        seen = ""
        async for text in chunks:
            seen += text
            if "before" in text:
                break
        during = await scrape(proxy.client)
        r = await proxy.client.post("/api/v1/chat/message", json={"message": "x"}, headers=headers)
        assert r.status_code == 409
        fake_n8n.gates["m"].set()
        seen += "".join([t async for t in chunks])
    mid = seen.split("id: ", 1)[1].split(":", 1)[0]
    r = await proxy.client.get(
        f"/api/v1/chat/message/{mid}", headers={**headers, "Last-Event-ID": f"{mid}:1"}
    )
    assert r.status_code == 200 and "event: end" in r.text
    r = await proxy.client.get(
        "/api/v1/chat/message/00000000-0000-4000-8000-000000000000",
        headers={**headers, "Last-Event-ID": "00000000-0000-4000-8000-000000000000:1"},
    )
    assert r.status_code == 404
    after = await scrape(proxy.client)

    assert delta(before, during, "quartproxy_open_streams", channel="sse") == 1
    assert delta(before, during, "quartproxy_chat_turns_in_flight") == 1
    assert delta(before, after, "quartproxy_open_streams", channel="sse") == 0
    assert delta(before, after, "quartproxy_chat_turns_in_flight") == 0
    assert delta(before, after, REJECTIONS, reason="busy", tier="", origin=ORIGIN) == 1
    assert delta(before, after, "quartproxy_resumes_total", result="ok") == 1
    assert delta(before, after, "quartproxy_resumes_total", result="expired") == 1


async def test_metrics_token(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(METRICS_TOKEN="metrics-secret-token") as p:
        r = await p.client.get("/metrics")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        r = await p.client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        m = await scrape(p.client, Authorization="Bearer metrics-secret-token")
        assert ("quartproxy_workers", frozenset()) in m


async def test_two_workers_sum_their_metrics(fake_n8n: FakeN8n, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every client is its own connection, so turns land on either worker; whichever worker
    answers /metrics reports the sum."""
    env = server_env(fake_n8n.url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    (tmp_path / "prom").mkdir()
    stale = tmp_path / "prom" / "counter_99999.db"
    stale.write_bytes(b"left over by a previous run")  # would break /metrics if it were read
    clients = 6
    async with server_process(env, workers=2) as server:

        async def one_client() -> None:
            async with httpx.AsyncClient(
                base_url=server.url, timeout=30, headers=BROWSER_HEADERS
            ) as c:
                r = await c.post(
                    "/api/v1/session/create",
                    json={"fingerprint": FINGERPRINT},
                    headers={"Origin": ORIGIN},
                )
                assert r.status_code == 201, r.text
                h = {
                    "Origin": ORIGIN,
                    "Authorization": f"Bearer {r.json()['token']}",
                    "X-Chat-Fingerprint": FINGERPRINT,
                }
                for message in ("hello", "status:500"):
                    r = await c.post("/api/v1/chat/message", json={"message": message}, headers=h)
                    assert r.status_code == 200
                r = await c.post("/api/v1/session/create", headers={"Origin": OTHER_ORIGIN})
                assert r.status_code == 403

        await server.wait_log(lambda line: "Running on" in str(line.get("msg", "")), count=2)
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(one_client)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=BROWSER_HEADERS) as c:
            m = await scrape(c)
        # each worker keeps its own files in the directory the CLI was given (and emptied)
        assert not stale.exists()
        assert len(list((tmp_path / "prom").glob("gauge_livesum_*.db"))) == 2
    assert value(m, "quartproxy_workers") == 2
    assert value(m, TURNS, outcome="ok", origin=ORIGIN) == clients
    assert value(m, TURNS, outcome="upstream_error", origin=ORIGIN) == clients
    assert value(m, "quartproxy_n8n_errors_total", kind="http_5xx") == clients
    assert value(m, REJECTIONS, reason="origin", tier="", origin="other") == clients
    assert value(m, "quartproxy_chat_time_to_first_token_seconds_count") == clients
    assert value(m, "quartproxy_open_streams", channel="sse") == 0
    assert value(m, "quartproxy_chat_turns_in_flight") == 0


async def test_bot_and_spam_refusals_are_told_apart(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(SPAM_BLOCK_PATTERNS="buy cheap pills") as p:
        before = await scrape(p.client)
        r = await p.client.post(
            "/api/v1/session/create",
            headers={"Origin": ORIGIN, "User-Agent": "python-requests/2.31", "Accept-Language": ""},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
        s = await p.session()
        r = await p.client.post(
            "/api/v1/chat/message",
            json={"message": "Buy cheap pills now"},
            headers=p.auth(s),
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
        after = await scrape(p.client)
    assert delta(before, after, REJECTIONS, reason="bot", tier="", origin=ORIGIN) == 1
    assert delta(before, after, REJECTIONS, reason="spam", tier="", origin=ORIGIN) == 1
    screened = [
        name
        for (name, labels), v in after.items()
        if name == "quartproxy_blocked_requests_total" and v > before.get((name, labels), 0)
    ]
    assert len(screened) == 2  # the screens' own counter is exported too
