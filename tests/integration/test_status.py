"""/status and /status/data over HTTP: the access rule of /metrics (with METRICS_TOKEN: the
bearer, or the token as Basic-auth password for browsers), a nonce CSP that allows nothing
else, and the figures after traffic. The page in a real browser: tests/browser/test_status.py;
the figures summed over two workers: tests/integration/test_prometheus.py."""

from __future__ import annotations

import base64
import re

from tests.support import Proxy, sse_turn

TOKEN = "metrics-token-for-status-0123456789"


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_status_page_is_one_self_contained_document_under_a_nonce_csp(proxy: Proxy) -> None:
    r = await proxy.client.get("/status")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce, csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    # every script and style carries this response's nonce; nothing is loaded from elsewhere
    assert r.text.count(f'nonce="{nonce.group(1)}"') == 2
    assert not re.search(r"<(script|link|img)[^>]*\b(src|href)=", r.text)
    assert not re.search(r"\son[a-z]+=", r.text)  # no inline handlers
    again = await proxy.client.get("/status")
    assert again.headers["content-security-policy"] != csp  # a fresh nonce per response


async def test_status_data_counts_the_traffic(proxy: Proxy) -> None:
    before = (await proxy.client.get("/status/data")).json()["now"]
    s = await proxy.session()
    await sse_turn(proxy, s, "hello")
    await sse_turn(proxy, s, "status:500")
    r = await proxy.client.get("/status/data")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    now = r.json()["now"]
    assert now["turns_total"] == before["turns_total"] + 2
    assert now["workers"] >= 1
    assert now["memory_bytes"] > 0 and now["open_fds"] > 0
    assert set(r.json()["series"]) >= {"turns_per_s", "ttft_p95", "in_flight", "open_streams"}


async def test_with_metrics_token_status_needs_it_as_bearer_or_basic_password(
    make_proxy,  # type: ignore[no-untyped-def]
) -> None:
    async with make_proxy(METRICS_TOKEN=TOKEN) as p:
        for path in ("/status", "/status/data"):
            r = await p.client.get(path)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith('Basic realm="quartproxy status"')
            for wrong in (
                basic("ops", TOKEN + "x"),
                basic(TOKEN, ""),  # the token as user name is not the password
                {"Authorization": "Basic !!!"},
                {"Authorization": f"Bearer {TOKEN}x"},
            ):
                assert (await p.client.get(path, headers=wrong)).status_code == 401
            for right in (
                basic("ops", TOKEN),
                basic("", TOKEN),
                {"Authorization": f"Bearer {TOKEN}"},
            ):
                assert (await p.client.get(path, headers=right)).status_code == 200
        # /metrics keeps its own rule: the bearer only, and no Basic challenge
        r = await p.client.get("/metrics", headers=basic("ops", TOKEN))
        assert r.status_code == 401 and "www-authenticate" not in r.headers
