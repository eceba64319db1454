"""Per-IP budgets through a real Hypercorn: two addresses of one IPv6 /64 are one client on
every channel (session create, HTTP chat, history reads, the @n8n/chat endpoint, the
WebSocket). The clients' addresses arrive as X-Forwarded-For from 127.0.0.1, a trusted proxy
(the tests may only use loopback sockets)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from tests.integration.test_compat import post, send_message
from tests.integration.test_ws import WS_BROWSER_HEADERS, authed, receive, send, socket
from tests.support import ORIGIN, Proxy

HOME = ["2001:db8:77:1::1", "2001:db8:77:1:aaaa::2", "2001:db8:77:1:ffff:ffff:ffff:fffe"]
NEIGHBOUR = "2001:db8:77:2::1"  # the next /64: another subscriber

Factory = Callable[..., AbstractAsyncContextManager[Proxy]]


def proxy_behind_loopback(make_proxy: Factory, **env: str) -> AbstractAsyncContextManager[Proxy]:
    return make_proxy(TRUSTED_PROXIES="127.0.0.1", **env)


def from_(address: str) -> dict[str, str]:
    return {"Origin": ORIGIN, "X-Forwarded-For": address}


async def test_session_creates_of_one_64_share_the_budget(make_proxy: Factory) -> None:
    async with proxy_behind_loopback(make_proxy, RATE_LIMIT_SESSION_CREATE="2/minute") as p:
        codes = [
            (await p.client.post("/api/v1/session/create", json={}, headers=from_(a))).status_code
            for a in HOME
        ]
        assert codes == [201, 201, 429]
        r = await p.client.post("/api/v1/session/create", json={}, headers=from_(NEIGHBOUR))
        assert r.status_code == 201
        # the IPv4-mapped form of an address is that address
        codes = []
        for address in ("::ffff:198.51.100.4", "::ffff:c633:6404", "198.51.100.4"):
            r = await p.client.post("/api/v1/session/create", json={}, headers=from_(address))
            codes.append(r.status_code)
        assert codes == [201, 201, 429]


async def test_chat_and_reads_of_one_64_share_the_budgets(make_proxy: Factory) -> None:
    async with proxy_behind_loopback(make_proxy, RATE_LIMIT_IP="2/minute") as p:
        codes = []
        for address in HOME:
            s = await p.session()  # from 127.0.0.1 itself: its own budget
            headers = {**p.auth(s), "X-Forwarded-For": address}
            r = await p.client.post("/api/v1/chat/message", json={"message": "hi"}, headers=headers)
            codes.append(r.status_code)
        assert codes == [200, 200, 429]
        reads = []
        for address in HOME:
            headers = {**p.auth(s), "X-Forwarded-For": address}
            r = await p.client.get(f"/api/v1/chat/history/{s['session_id']}", headers=headers)
            reads.append(r.status_code)
        assert reads == [200, 200, 429]
        headers = {**p.auth(s), "X-Forwarded-For": NEIGHBOUR}
        r = await p.client.post("/api/v1/chat/message", json={"message": "hi"}, headers=headers)
        assert r.status_code == 200


async def test_widget_endpoint_of_one_64_shares_the_budget(make_proxy: Factory) -> None:
    async with proxy_behind_loopback(make_proxy, RATE_LIMIT_IP="2/minute") as p:
        codes = []
        for address in HOME:
            r = await p.client.post(
                "/api/v1/n8n/chat",
                content=send_message(str(uuid.uuid4()), "hi"),
                headers={
                    "Origin": ORIGIN,
                    "Content-Type": "application/json",
                    "X-Forwarded-For": address,
                },
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 429]
        assert (await post(p, send_message(str(uuid.uuid4()), "hi"))).status_code == 200


async def test_websockets_of_one_64_share_the_budget(make_proxy: Factory) -> None:
    async with proxy_behind_loopback(make_proxy, RATE_LIMIT_IP="2/minute") as p:
        s = await p.session()
        frames: list[dict[str, Any]] = []
        for address in HOME:
            async with socket(p, headers={**WS_BROWSER_HEADERS, "X-Forwarded-For": address}) as ws:
                await authed(ws, s)
                await send(ws, {"type": "message", "message": "hi"})
                frame = await receive(ws)
                while frame["type"] not in ("end", "error"):
                    frame = await receive(ws)
                frames.append(frame)
        assert [f["type"] for f in frames] == ["end", "end", "error"]
        assert frames[-1]["code"] == "rate_limited"
