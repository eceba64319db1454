"""Operations surface: /health, request ids (client, logs, n8n), OpenAPI and docs, keep-alive
behaviour under shutdown, DEBUG errors."""

from __future__ import annotations

import functools
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from quartproxy.factory import create_app
from quartproxy.logs import JsonFormatter, RequestIdFilter
from tests.support import FakeN8n, Proxy, free_port, served, settings_for, sse_turn


async def test_health_ok_then_degraded_when_n8n_is_down(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy() as p:
        r = await p.client.get("/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok"
        assert body["checks"]["n8n"]["status"] == "ok"
        assert body["checks"]["store"]["status"] == "ok"
    async with make_proxy(n8n_url=f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        r = await p.client.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "degraded"
        assert body["failing"] == ["n8n"]
        assert body["checks"]["n8n"]["status"] == "fail"
        assert "127.0.0.1" not in json.dumps(body)  # no upstream address in the answer


async def test_health_polled_every_second_probes_n8n_once_per_cache_period(
    make_proxy,
    fake_n8n: FakeN8n,  # type: ignore[no-untyped-def]
) -> None:
    probes: list[str] = []

    async def counting(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            probes.append(scope["path"])
        await fake_n8n(scope, receive, send)

    async with served(counting) as url, make_proxy(n8n_url=f"{url}/webhook/chat") as p:
        for _ in range(20):
            r = await p.client.get("/health")
            assert r.status_code == 200
    assert probes == ["/healthz"]  # HEALTH_CACHE_SECONDS (5 s) outlasts these 20 polls


@contextmanager
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("quartproxy")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


async def test_request_id_reaches_client_n8n_and_every_log_line(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    s = await proxy.session()
    with json_log() as out:
        r = await proxy.client.post(
            "/api/v1/chat/message", json={"message": "status:500"}, headers=proxy.auth(s)
        )
    rid = r.headers["X-Request-ID"]
    assert len(rid) >= 16
    assert fake_n8n.requests[-1]["headers"]["x-request-id"] == rid
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    # the warning is logged by the upstream call, in the turn's own task
    warning = [line for line in lines if "n8n answered HTTP 500" in line["msg"]]
    assert warning and warning[0]["request_id"] == rid
    assert all(line.get("request_id") == rid for line in lines)


async def test_a_well_formed_incoming_request_id_is_kept(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    given = "edge-3f2a9c0d-77"
    r = await proxy.client.post(
        "/api/v1/chat/message",
        json={"message": "hi"},
        headers={**proxy.auth(s), "X-Request-ID": given},
    )
    assert r.headers["X-Request-ID"] == given
    assert fake_n8n.requests[-1]["headers"]["x-request-id"] == given
    r = await proxy.client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["X-Request-ID"] != "bad id\twith spaces"
    events = await sse_turn(proxy, s, "again")
    assert events[-1].event == "end"


async def test_every_http_route_is_in_openapi(proxy: Proxy) -> None:
    r = await proxy.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    documented = {
        (path, method) for path, ops in spec["paths"].items() for method in ops if method != "$ref"
    }
    missing = []
    for rule in proxy.app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <path:f> -> {f}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (path, method.lower()) not in documented:
                missing.append(f"{method} {path}")
    assert missing == []
    # every $ref resolves
    text = json.dumps(spec)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in spec["components"]["schemas"], name


async def test_docs_page_runs_no_script(proxy: Proxy) -> None:
    r = await proxy.client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text.lower()
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere
    assert "/api/v1/chat/message" in r.text
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


async def test_idle_keep_alive_connections_are_closed_on_shutdown(fake_n8n: FakeN8n) -> None:
    """With quart-trio, Hypercorn lost track of idle keep-alive connections; shutdown then
    waited the whole graceful_timeout (here 600 s) for them. The guard below only turns a hang
    into a failure."""
    app = create_app(settings_for(fake_n8n.url))
    cfg = Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.accesslog = None
    cfg.graceful_timeout = 600
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(serve, app, cfg, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
            )
            port = int(binds[0].rsplit(":", 1)[1])
            conn = await trio.open_tcp_stream("127.0.0.1", port)
            await conn.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                data += await conn.receive_some()
            assert data.startswith(b"HTTP/1.1 200")
            stop.set()
            assert await conn.receive_some() == b""  # the server closed it
            await conn.aclose()


async def test_idle_keep_alive_connections_time_out(fake_n8n: FakeN8n) -> None:
    app = create_app(settings_for(fake_n8n.url))
    cfg = Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.accesslog = None
    cfg.keep_alive_timeout = 0.2
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(serve, app, cfg, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
            )
            port = int(binds[0].rsplit(":", 1)[1])
            conn = await trio.open_tcp_stream("127.0.0.1", port)
            await conn.send_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                part = await conn.receive_some()
                if not part:
                    break  # closed by the server after keep_alive_timeout
                data += part
            assert data.startswith(b"HTTP/1.1 200")
            await conn.aclose()
            stop.set()


async def test_debug_shows_readable_errors_production_does_not(fake_n8n: FakeN8n) -> None:
    async def boom() -> str:
        raise RuntimeError("kaboom in a view")

    for debug in (True, False):
        app = create_app(settings_for(fake_n8n.url, DEBUG="true" if debug else "false"))
        app.add_url_rule("/boom", "boom", boom)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            r = await client.get("/boom")
            assert r.status_code == 500
            body = await r.get_json()
            assert body["error"]["code"] == "internal"
            if debug:
                assert "kaboom in a view" in body["debug"]["exception"]
                assert any("raise RuntimeError" in line for line in body["debug"]["traceback"])
            else:
                assert "debug" not in body
                assert "kaboom" not in json.dumps(body)


async def test_container_healthcheck_is_alive_unless_nothing_answers(make_proxy) -> None:  # type: ignore[no-untyped-def]
    from quartproxy.healthcheck import check

    async with make_proxy() as p:
        assert await trio.to_thread.run_sync(check, f"{p.url}/health") == 0
    async with make_proxy(n8n_url=f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        r = await p.client.get("/health")
        assert r.status_code == 503  # degraded, but alive
        assert await trio.to_thread.run_sync(check, f"{p.url}/health") == 0
    assert await trio.to_thread.run_sync(check, f"http://127.0.0.1:{free_port()}/health") == 1
