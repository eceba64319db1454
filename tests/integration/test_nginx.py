"""A real nginx (Debian package, `.ci/setup-nginx.sh`) in front of the proxy, configured with
the shipped snippet deploy/nginx/quartproxy-locations.conf.

nginx gets a listening socket bound by the test (nginx adopts sockets named in the `NGINX`
environment variable, as in its binary upgrade), so clients connect at once and nothing polls
for readiness. Clients come from other loopback addresses (127.0.0.2, 127.0.0.3) so that
"the client" and "the trusted proxy" (127.0.0.1) differ."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.ops_support import ROOT, listening_socket
from tests.raw_http import connect, h2c_attempt, read_head, read_until_closed, status_of
from tests.support import BROWSER_HEADERS, FINGERPRINT, ORIGIN, FakeN8n, Proxy, parse_sse

pytestmark = pytest.mark.nginx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SNIPPET = ROOT / "deploy" / "nginx" / "quartproxy-locations.conf"
WS = "/api/v1/chat/ws"
WS_HEADERS = [
    (k.encode(), v.encode()) for k, v in {**BROWSER_HEADERS, "Sec-Fetch-Mode": "websocket"}.items()
]


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


# -- upgrades: only WebSocket is ever relayed (issue 13, finding 1) ---------------------------


@asynccontextmanager
async def upgrading_backend() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A backend that switches protocols for ANY Upgrade header it receives (as Hypercorn does
    for h2c), recording each request head: what nginx relays, on its own."""
    heads: list[bytes] = []

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            buf = bytearray()
            try:
                head = await read_head(stream, buf)
            except EOFError:
                return
            heads.append(head)
            upgrade = [
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"upgrade:")
            ]
            if upgrade:
                await stream.send_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                    b"Upgrade: " + upgrade[0] + b"\r\n\r\n"
                )
            else:
                await stream.send_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", heads
        nursery.cancel_scope.cancel()


def ws_upgrade_request(path: str, upgrade: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: chat.example.com\r\nConnection: Upgrade\r\n"
        f"Upgrade: {upgrade}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()


async def answer_status(base_url: str, request: bytes) -> int:
    stream = await connect(base_url)
    async with stream:
        await stream.send_all(request)
        return status_of(await read_head(stream, bytearray()))


async def test_nginx_relays_websocket_upgrades_only(tmp_path: Path) -> None:
    """The shipped snippet alone, in front of a backend that would switch to anything."""
    async with upgrading_backend() as (backend, heads), nginx_in_front(backend, tmp_path) as edge:
        for path in ("/api/v1/chat/ws", "/api/v1/session/create", "/health", "/metrics"):
            outcome = await h2c_attempt(edge, path, [("GET", "/metrics", [])])
            assert outcome.status in (400, 403, 200), (path, outcome)
        for upgrade in ("h2c", "websocket, h2c", "h2c, websocket", "WebSocket2", "tls/1.0"):
            assert await answer_status(edge, ws_upgrade_request(WS, upgrade)) == 400, upgrade
        # the backend never saw an Upgrade other than websocket
        for head in heads:
            for line in head.lower().split(b"\r\n")[1:]:
                if line.startswith(b"upgrade:"):
                    assert line == b"upgrade: websocket", head
        seen = len(heads)
        for upgrade in ("websocket", "WebSocket"):  # tokens are case-insensitive
            assert await answer_status(edge, ws_upgrade_request(WS, upgrade)) == 101
        assert [h.split(b"\r\n")[0] for h in heads[seen:]] == [f"GET {WS} HTTP/1.1".encode()] * 2


async def test_h2c_smuggling_through_nginx_is_refused(
    make_proxy,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The review's attack, end to end: an h2c upgrade through nginx, then HTTP/2 requests with
    a spoofed X-Forwarded-For (to escape the per-IP limit) and for /metrics (denied by nginx).
    Nothing is switched, so none of them is even sent; the limits and deny rules hold."""
    browser = [(k.lower(), v) for k, v in BROWSER_HEADERS.items()]
    creates = [
        ("POST", "/api/v1/session/create", [*browser, ("origin", ORIGIN), ("x-forwarded-for", ip)])
        for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3")
    ]
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32", RATE_LIMIT_SESSION_CREATE="1/minute") as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as client,
    ):
        for path in ("/api/v1/chat/ws", "/api/v1/session/create", "/health"):
            outcome = await h2c_attempt(
                edge, path, [*creates, ("GET", "/metrics", [])], local="127.0.0.2"
            )
            assert outcome.status != 101, outcome
            assert outcome.tunnelled == []
        headers = {"Origin": ORIGIN, "X-Forwarded-For": "203.0.113.50"}
        assert (await client.post("/api/v1/session/create", headers=headers)).status_code == 201
        headers["X-Forwarded-For"] = "203.0.113.51"
        assert (await client.post("/api/v1/session/create", headers=headers)).status_code == 429
        assert (await client.get("/metrics")).status_code == 403


# -- the other locations: deny rules and the WebSocket channel ----------------------------------


async def test_metrics_are_denied_through_nginx_whatever_the_spelling(
    make_proxy,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32") as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as outsider,
        client_from("127.0.0.1", edge) as local,
    ):
        assert (await local.get("/metrics")).status_code == 200  # the allowed address
        for target in (
            "/metrics",
            "//metrics",
            "/%6detrics",
            "/./metrics",
            "/x/../metrics",
            "/metrics?x=1",
            "/metrics/",
            "/METRICS",
            "/metrics;x",
            "/metrics%00",
        ):
            stream = await connect(edge, "127.0.0.2")
            async with stream:
                await stream.send_all(
                    f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                answer = await read_until_closed(stream)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert status_of(head) in (400, 403, 404), (target, head)
            assert b"quartproxy_" not in body and b"# TYPE" not in body, target
        assert (await outsider.get("/metrics")).status_code == 403


async def test_websocket_channel_through_nginx(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
    tmp_path: Path,
) -> None:
    """A turn over the WebSocket location, and its message bound: a frame over MAX_BODY_BYTES
    is closed with 1009 by the proxy, and nginx relays the close."""
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32") as p,
        nginx_in_front(p.url, tmp_path) as edge,
    ):
        session = await p.session()
        url = edge.replace("http://", "ws://") + WS
        extra = [(b"Origin", ORIGIN.encode()), *WS_HEADERS]
        async with open_websocket_url(url, extra_headers=extra) as ws:
            await ws.send_message(
                json.dumps({"type": "auth", "token": session["token"], "fingerprint": FINGERPRINT})
            )
            with trio.fail_after(10):
                assert json.loads(await ws.get_message())["type"] == "ready"
                await ws.send_message(json.dumps({"type": "message", "message": "via nginx"}))
                frames = []
                while not frames or frames[-1]["type"] not in ("end", "error"):
                    frame = json.loads(await ws.get_message())
                    if frame["type"] != "ping":
                        frames.append(frame)
            assert frames[-1]["text"] == "echo: via nginx"
            await ws.send_message("x" * (p.settings.max_body_bytes + 1))
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1009


async def test_nginx_hands_the_proxy_clean_framing_only(tmp_path: Path) -> None:
    """What Hypercorn (h11) accepts but a stricter front might read differently — Content-Length
    with Transfer-Encoding, obs-fold, bare LF — never reaches the proxy as sent: nginx refuses
    it or re-frames the request itself (docs/threat-model.md, docs/upstream/)."""
    async with upgrading_backend() as (backend, heads), nginx_in_front(backend, tmp_path) as edge:
        requests = {
            "cl+te": b"POST /api/v1/session/create HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "obs-fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n"
            b"Connection: close\r\n\r\n",
            "bare-lf": b"GET /health HTTP/1.1\nHost: x\nX-Bare: lf\nConnection: close\n\n",
        }
        answers = {}
        for name, raw in requests.items():
            stream = await connect(edge)
            async with stream:
                await stream.send_all(raw)
                answers[name] = await read_until_closed(stream)
        assert status_of(answers["cl+te"]) == 400
        assert status_of(answers["obs-fold"]) == 400
        assert status_of(answers["bare-lf"]) == 200
        # only the bare-LF request got through, and nginx wrote it out with CRLF
        assert len(heads) == 1
        assert b"\r\nX-Bare: lf" in heads[0]
        assert b"\n" not in heads[0].replace(b"\r\n", b"")
        assert b"/metrics" not in heads[0]


async def test_files_pass_nginx_on_the_chat_locations_only(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
    tmp_path: Path,
) -> None:
    """The snippet's body limit is 16m on the three chat POST locations (attachments) and
    stays 64k everywhere else."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(2_000_000)
    async with (
        make_proxy(TRUSTED_PROXIES="127.0.0.1/32", ATTACH_ENABLED="true") as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as client,
    ):
        r = await client.post(
            "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
        )
        assert r.status_code == 201, r.text
        headers = Proxy.auth(p, r.json())
        r = await client.post(
            "/api/v1/chat/message",
            data={"message": "see"},
            files=[("files", ("big.png", png, "image/png"))],
            headers=headers,
        )
        assert r.status_code == 200, r.text
        assert parse_sse(r.text)[-1].event == "end"
        assert fake_n8n.requests[-1]["body"]["files"][0]["data"] == png
        r = await client.post(
            "/api/v1/session/create",
            content=b"{" + b" " * 100_000 + b"}",
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )
        assert r.status_code == 413  # nginx's own refusal, before the proxy
