"""The shipped nginx setup with TLS and HTTP/2 at the edge (deploy/nginx.conf: `listen 443 ssl
http2;` + deploy/nginx/quartproxy-locations.conf), a trustme certificate: browsers' HTTP/2 in
front, HTTP/1.1 from nginx to the gateway, SSE deltas passed one by one, many answers at once
on one client connection."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from quartproxy.factory import create_app
from tests.h2_support import Seen, make_tls
from tests.integration.test_nginx import nginx_in_front
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    FakeN8n,
    parse_sse,
    served,
    settings_for,
)

pytestmark = pytest.mark.nginx
STREAMS = 20


async def test_nginx_serves_http2_to_clients_and_http11_to_the_gateway(
    fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    tls = make_tls(tmp_path)
    seen = Seen()
    settings = settings_for(
        fake_n8n.url,
        TRUSTED_PROXIES="127.0.0.1/32",
        RATE_LIMIT_IP="1000/minute",
        RATE_LIMIT_SESSION_CREATE="1000/minute",
    )
    edge_dir = tmp_path / "nginx"
    edge_dir.mkdir()
    async with (
        served(seen.wrap(create_app(settings))) as gateway,
        nginx_in_front(gateway, edge_dir, (tls.certfile, tls.keyfile)) as edge,
        httpx.AsyncClient(
            base_url=edge, http2=True, verify=tls.client_context(), timeout=30,
            headers=BROWSER_HEADERS, limits=httpx.Limits(max_connections=1),
        ) as client,
    ):  # fmt: skip
        assert edge.startswith("https://")
        sessions = []
        for _ in range(STREAMS):
            r = await client.post(
                "/api/v1/session/create", json={"fingerprint": FINGERPRINT},
                headers={"Origin": ORIGIN},
            )  # fmt: skip
            assert (r.status_code, r.http_version) == (201, "HTTP/2"), r.text
            sessions.append(r.json())
        held = trio.Event()
        started: set[int] = set()
        answers: dict[int, list[str]] = {}

        async def turn(i: int) -> None:
            headers = {
                "Origin": ORIGIN,
                "Authorization": f"Bearer {sessions[i]['token']}",
                "X-Chat-Fingerprint": FINGERPRINT,
            }
            async with client.stream(
                "POST", "/api/v1/chat/message", json={"message": f"gate:edge {i}"},
                headers=headers,
            ) as response:  # fmt: skip
                assert response.http_version == "HTTP/2"
                seen_text = ""
                async for text in response.aiter_text():
                    seen_text += text
                    if "before" in seen_text and i not in started:
                        started.add(i)  # nginx passed the first delta on at once
                        if len(started) == STREAMS:
                            held.set()
            events = parse_sse(seen_text)
            answers[i] = [e.event for e in events] + [events[-1].data["text"]]

        with trio.fail_after(60):  # a buffering nginx would hang here: fail instead
            async with trio.open_nursery() as nursery:
                for i in range(STREAMS):
                    nursery.start_soon(turn, i)
                await held.wait()  # every answer is streaming at once, none finished upstream
                assert not any(f"gate:edge {i}" in fake_n8n.finished for i in range(STREAMS))
                for i in range(STREAMS):
                    fake_n8n.gates[f"edge {i}"].set()

    assert answers == {
        i: ["start", "delta", "delta", "end", "before after"] for i in range(STREAMS)
    }
    # nginx spoke HTTP/1.1 to the gateway, never HTTP/2 (the gateway would refuse h2c anyway).
    assert {(version, scheme) for _, version, scheme in seen.requests} == {("1.1", "http")}
