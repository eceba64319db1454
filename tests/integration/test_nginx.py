"""A real nginx (Debian package, `.ci/setup-nginx.sh`) in front of the proxy, configured with
the shipped snippet deploy/nginx/quartproxy-locations.conf.

nginx gets a listening socket bound by the test (nginx adopts sockets named in the `NGINX`
environment variable, as in its binary upgrade), so clients connect at once and nothing polls
for readiness. Clients come from other loopback addresses (127.0.0.2, 127.0.0.3) so that
"the client" and "the trusted proxy" (127.0.0.1) differ."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from tests.ops_support import ROOT, listening_socket
from tests.support import BROWSER_HEADERS, FINGERPRINT, ORIGIN, FakeN8n, Proxy, parse_sse

pytestmark = pytest.mark.nginx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SNIPPET = ROOT / "deploy" / "nginx" / "quartproxy-locations.conf"


def shipped_tls_listen_flags() -> str:
    """The flags of deploy/nginx.conf's TLS listen line ("ssl http2"): the test edge uses
    exactly what ships."""
    found = re.search(
        r"^\s*listen 443 ([^;]+);", (ROOT / "deploy" / "nginx.conf").read_text(), re.M
    )
    assert found, "deploy/nginx.conf has no `listen 443 ...;` line"
    return found.group(1)


def nginx_conf(
    tmp: Path, listen_port: int, upstream: str, tls: tuple[str, str] | None = None
) -> str:
    """`tls` (certfile, keyfile): the edge serves HTTPS with HTTP/2, as deploy/nginx.conf."""
    listen = f"listen 127.0.0.1:{listen_port};"
    if tls:
        listen = (
            f"listen 127.0.0.1:{listen_port} {shipped_tls_listen_flags()};\n"
            f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};"
        )
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {tmp / name};" for name in ("client_body", "proxy", "fastcgi")
    )
    return f"""{user}worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} info;
events {{ worker_connections 128; }}
http {{
    access_log {tmp / "access.log"};
{temp}
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};
    upstream quartproxy {{
        server {upstream};
        keepalive 8;
    }}
    server {{
        {listen}
        include {SNIPPET};
    }}
}}
"""


def prepare(tmp: Path, port: int, upstream: str, tls: tuple[str, str] | None = None) -> list[str]:
    """Write the config, check it with `nginx -t`; the command line to run it."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: run .ci/setup-nginx.sh")
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port, upstream, tls))
    argv = [NGINX, "-p", str(tmp), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]
    test = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert test.returncode == 0, test.stderr
    return argv


@asynccontextmanager
async def nginx_in_front(
    proxy_url: str, tmp: Path, tls: tuple[str, str] | None = None
) -> AsyncIterator[str]:
    sock = listening_socket()
    argv = prepare(tmp, sock.getsockname()[1], proxy_url.removeprefix("http://"), tls)
    port = sock.getsockname()[1]
    env = {**os.environ, "NGINX": f"{sock.fileno()};"}
    proc = await trio.lowlevel.open_process(
        argv, env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL
    )
    sock.close()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with trio.CancelScope(shield=True):
            await proc.wait()


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(
        base_url=base_url, transport=transport, timeout=30, headers=BROWSER_HEADERS
    )


async def test_sse_deltas_pass_nginx_one_by_one(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
    tmp_path: Path,
) -> None:
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32") as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as client,
    ):
        r = await client.post(
            "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
        )
        assert r.status_code == 201, r.text
        headers = Proxy.auth(p, r.json())
        with trio.fail_after(20):  # a buffering nginx would hang here: fail instead
            async with client.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:edge"}, headers=headers
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["x-request-id"]  # nginx's id, passed on by the proxy
                chunks = response.aiter_text()
                seen = ""
                async for text in chunks:
                    seen += text
                    if "before" in seen:
                        break
                # The first delta is here while n8n is still holding the rest of the answer.
                assert "gate:edge" not in fake_n8n.finished
                assert [e.event for e in parse_sse(seen)] == ["start", "delta"]
                fake_n8n.gates["edge"].set()
                seen += "".join([t async for t in chunks])
        events = parse_sse(seen)
        assert [e.event for e in events] == ["start", "delta", "delta", "end"]
        assert events[-1].data["text"] == "before after"
    # the request id nginx generated is the one n8n received
    assert fake_n8n.requests[-1]["headers"]["x-request-id"] == response.headers["x-request-id"]


async def test_client_ip_comes_from_the_trusted_hop_only(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
    tmp_path: Path,
) -> None:
    """One session per client IP and minute. A client that spoofs X-Forwarded-For does not get
    a new IP; a different real client (as seen by nginx) does."""
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32", RATE_LIMIT_SESSION_CREATE="1/minute") as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as two,
        client_from("127.0.0.3", edge) as three,
    ):

        async def create(client: httpx.AsyncClient, spoof: str | None) -> int:
            h = {"Origin": ORIGIN}
            if spoof:
                h["X-Forwarded-For"] = spoof
            r = await client.post("/api/v1/session/create", headers=h)
            return r.status_code

        assert await create(two, "203.0.113.7") == 201
        assert await create(two, "198.51.100.9") == 429  # same real client, new spoofed IP
        assert await create(two, None) == 429
        assert await create(three, "203.0.113.7") == 201  # nginx's hop is believed
        assert await create(three, None) == 429

        # Straight to the proxy (not through the trusted hop), X-Forwarded-For means nothing.
        async with client_from("127.0.0.4", p.url) as direct:
            assert await create(direct, "127.0.0.9") == 201
            assert await create(direct, "127.0.0.10") == 429
