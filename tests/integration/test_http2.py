"""The HTTP/2 deployment (docs/http2.md): Hypercorn terminating TLS itself with a trustme
certificate, ALPN h2, every route used over HTTP/2 by a real client; many chat streams sharing
one connection; a stream whose reader stopped does not stall the others; cleartext HTTP/2 (h2c)
refused unless ALLOW_H2C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from tests.h2_support import Seen, Tls, make_tls, raw_h2, running_tls_proxy
from tests.ops_support import ROOT
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    FakeN8n,
    free_port,
    parse_sse,
    running_proxy,
    settings_for,
)

H2 = "HTTP/2"
METRICS_TOKEN = "metrics-token-for-the-h2-test-0123456789"
MANY = {
    "RATE_LIMIT_IP": "1000/minute",
    "RATE_LIMIT_SESSION_CREATE": "1000/minute",
    "RATE_LIMIT_ORIGIN": "5000/minute",
}


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


def one_h2_connection(seen: Seen) -> None:
    """Every request the server saw came over HTTP/2 with TLS, all from one client socket."""
    assert seen.requests
    assert {(version, scheme) for _, version, scheme in seen.requests} == {("2", "https")}
    assert len({client for client, _, _ in seen.requests}) == 1


async def test_every_route_answers_over_http2(tls: Tls, fake_n8n: FakeN8n) -> None:
    seen = Seen()
    settings = settings_for(fake_n8n.url, METRICS_TOKEN=METRICS_TOKEN)
    async with running_tls_proxy(settings, tls, seen=seen) as proxy:
        responses: list[httpx.Response] = []

        async def call(method: str, path: str, **kw: object) -> httpx.Response:
            r = await proxy.client.request(method, path, **kw)  # type: ignore[arg-type]
            responses.append(r)
            return r

        created = await call(
            "POST", "/api/v1/session/create", json={"fingerprint": FINGERPRINT},
            headers={"Origin": ORIGIN},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        session = created.json()
        auth = proxy.auth(session)
        valid = await call("GET", "/api/v1/session/validate", headers=auth)
        assert valid.json()["valid"] is True

        sse = await call("POST", "/api/v1/chat/message", json={"message": "one two"}, headers=auth)
        assert sse.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(sse.text)
        assert [e.event for e in events] == ["start", "delta", "delta", "delta", "end"]
        assert events[-1].data["text"] == "echo: one two"
        mid = events[0].data["message_id"]
        resumed = await call(
            "GET", f"/api/v1/chat/message/{mid}", headers={**auth, "Last-Event-ID": f"{mid}:2"}
        )
        assert [e.id for e in parse_sse(resumed.text)] == [f"{mid}:3", f"{mid}:4"]

        ndjson = await call("POST", "/api/v1/chat/stream", json={"message": "hey"}, headers=auth)
        chunks = [json.loads(line) for line in ndjson.text.splitlines() if line]
        assert "".join(c.get("content", "") for c in chunks if c["type"] == "item") == "echo: hey"

        widget = await call(
            "POST", "/api/v1/n8n/chat",
            content=json.dumps({"action": "sendMessage", "sessionId": "w1", "chatInput": "yo"}),
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )  # fmt: skip
        assert widget.json() == {"output": "echo: yo"}

        script = await call("GET", "/static/widget.js")
        assert script.status_code == 200 and b"data-proxy" in script.content
        health = await call("GET", "/health")
        assert health.json()["status"] == "ok"
        denied = await call("GET", "/metrics")
        assert denied.status_code == 401
        metrics = await call(
            "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert "quartproxy_" in metrics.text

        gone = await call("DELETE", "/api/v1/session", headers=auth)
        assert gone.status_code == 204
        after = await call("GET", "/api/v1/session/validate", headers=auth)
        assert after.status_code == 401

    assert {r.http_version for r in responses} == {H2}
    one_h2_connection(seen)


async def test_fifty_sse_turns_share_one_connection_and_all_complete(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    seen = Seen()
    settings = settings_for(fake_n8n.url, **MANY)
    async with running_tls_proxy(settings, tls, seen=seen) as proxy:
        sessions = [await proxy.session() for _ in range(50)]
        held = trio.Event()  # every answer is held by n8n until all 50 streams are open
        results: dict[int, tuple[str, list[str], str]] = {}

        async def turn(i: int) -> None:
            message = f"gate:all {i}"
            async with proxy.client.stream(
                "POST", "/api/v1/chat/message", json={"message": message},
                headers=proxy.auth(sessions[i]),
            ) as r:  # fmt: skip
                body = ""
                async for text in r.aiter_text():
                    body += text
                    if "before" in body and i not in opened:
                        opened.add(i)
                        if len(opened) == 50:
                            held.set()
                events = parse_sse(body)
                results[i] = (r.http_version, [e.event for e in events], events[-1].data["text"])

        opened: set[int] = set()
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(turn, i)
                await held.wait()  # 50 answers are streaming at once on one connection
                for i in range(50):
                    fake_n8n.gates[f"all {i}"].set()

    assert len(results) == 50
    for _i, (version, kinds, text) in results.items():
        assert version == H2
        assert kinds == ["start", "delta", "delta", "end"]
        assert text == "before after"
    one_h2_connection(seen)


async def test_a_reader_that_stops_reading_does_not_stall_the_other_streams(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    """Stream 1's window is never reopened (its reader stopped after 200 bytes); the other
    streams of the same connection still get their whole answers, and the server holds only a
    bounded part of stream 1's answer in memory (overrides/hypercorn_h2.py: without it, Hypercorn
    buffered the whole answer). When stream 1 reads again, its answer arrives complete: flow
    control paused it, nothing was lost."""
    seen = Seen()
    settings = settings_for(fake_n8n.url, **MANY)
    async with running_tls_proxy(settings, tls, seen=seen) as proxy:
        sessions = [await proxy.session() for _ in range(6)]

        def post(i: int, message: str) -> tuple[str, str, dict[str, str], bytes]:
            headers = {**proxy.auth(sessions[i]), **BROWSER_HEADERS}
            headers = {k.lower(): v for k, v in headers.items()}
            headers["content-type"] = "application/json"
            if i == 0:
                headers["x-test-count"] = "1"
            body = json.dumps({"message": message}).encode()
            return "POST", "/api/v1/chat/message", headers, body

        syllables = [c + v for c in "bcdfghjklmnp" for v in "aeiou"]
        words = [syllables[i % len(syllables)] for i in range(1330)]
        long_message = " ".join(words)  # ~1330 delta events, ~110 KB of SSE
        with trio.fail_after(30):
            async with raw_h2(proxy.url, tls, window=200) as h2c:
                slow = await h2c.request(*post(0, long_message))
                h2c.stalled.add(slow)
                fast = [await h2c.request(*post(i, f"quick {i}")) for i in range(1, 6)]
                for i, sid in enumerate(fast, start=1):
                    await h2c.streams[sid].ended.wait()
                    events = parse_sse(h2c.streams[sid].text)
                    assert events[-1].event == "end"
                    assert events[-1].data["text"] == f"echo: quick {i}"
                stuck = h2c.streams[slow]
                assert stuck.status == 200, stuck.text
                await fake_n8n.done[long_message].wait()  # the whole answer is in the proxy
                await trio.testing.wait_all_tasks_blocked(0.2)  # and it has pushed what it can
                assert len(stuck.data) <= 200 and not stuck.ended.is_set()
                assert seen.counted < 64 * 1024, "the stalled stream's answer piled up in memory"

                await h2c.open_window(slow)
                await stuck.ended.wait()
                events = parse_sse(stuck.text)
                assert len(stuck.data) > 100_000
                assert events[-1].event == "end"
                assert events[-1].data["text"] == "echo: " + long_message


async def test_a_waiting_stream_gets_heartbeats_over_http2(tls: Tls, fake_n8n: FakeN8n) -> None:
    settings = settings_for(fake_n8n.url, HEARTBEAT_SECONDS="0.1")
    async with running_tls_proxy(settings, tls) as proxy:
        s = await proxy.session()
        with trio.fail_after(30):
            async with proxy.client.stream(
                "POST", "/api/v1/chat/message", json={"message": "gate:hb"},
                headers=proxy.auth(s),
            ) as r:  # fmt: skip
                assert r.http_version == H2
                body = ""
                async for text in r.aiter_text():
                    body += text
                    if body.count(": ping") >= 2:
                        fake_n8n.gates["hb"].set()
        assert parse_sse(body)[-1].data["text"] == "before after"


async def h2c_health(url: str) -> tuple[int, str]:
    with trio.fail_after(15):
        async with raw_h2(url, None) as client:
            sid = await client.request("GET", "/health", {"user-agent": "lb"})
            await client.streams[sid].ended.wait()
            return client.streams[sid].status, client.streams[sid].text


async def test_cleartext_http2_is_refused_unless_allowed(fake_n8n: FakeN8n) -> None:
    """Prior-knowledge h2c to a plain-HTTP bind: 403 forbidden, unless ALLOW_H2C=true.
    HTTP/1.1 on the same bind is unaffected."""
    async with running_proxy(settings_for(fake_n8n.url)) as proxy:
        status, body = await h2c_health(proxy.url)
        assert status == 403
        assert json.loads(body)["error"]["code"] == "forbidden"
        plain = await proxy.client.get("/health")
        assert plain.status_code == 200 and plain.http_version == "HTTP/1.1"
    async with running_proxy(settings_for(fake_n8n.url, ALLOW_H2C="true")) as proxy:
        status, body = await h2c_health(proxy.url)
        assert status == 200
        assert json.loads(body)["status"] == "ok"


async def test_tls_http2_is_allowed_with_h2c_refused(tls: Tls, fake_n8n: FakeN8n) -> None:
    async with running_tls_proxy(settings_for(fake_n8n.url), tls) as proxy:
        assert not proxy.settings.allow_h2c
        r = await proxy.client.get("/health")
        assert (r.status_code, r.http_version) == (200, H2)


async def test_http11_clients_still_negotiate_http11_over_tls(tls: Tls, fake_n8n: FakeN8n) -> None:
    async with (
        running_tls_proxy(settings_for(fake_n8n.url), tls) as proxy,
        httpx.AsyncClient(base_url=proxy.url, verify=tls.client_context(["http/1.1"])) as old,
    ):
        r = await old.get("/health")
        assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


async def test_the_websocket_channel_runs_over_http2_extended_connect(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    """RFC 8441: Hypercorn advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, so a browser that
    supports it (Chromium does) carries the WebSocket inside the h2 connection."""
    from wsproto.frame_protocol import FrameProtocol, Opcode

    async with running_tls_proxy(settings_for(fake_n8n.url), tls) as proxy:
        s = await proxy.session()
        with trio.fail_after(30):
            async with raw_h2(proxy.url, tls) as conn:
                headers = {k.lower(): v for k, v in BROWSER_HEADERS.items()}
                headers.update({"origin": ORIGIN, "sec-websocket-version": "13"})
                sid = await conn.connect("websocket", "/api/v1/chat/ws", headers)
                ws = FrameProtocol(client=True, extensions=[])
                messages: list[dict[str, object]] = []
                fed = 0

                async def until(kind: str) -> dict[str, object]:
                    nonlocal fed
                    stream = conn.streams[sid]
                    while True:
                        ws.receive_bytes(bytes(stream.data[fed:]))
                        fed = len(stream.data)
                        for frame in ws.received_frames():
                            if frame.opcode is Opcode.TEXT:
                                messages.append(json.loads(str(frame.payload)))
                        for m in messages:
                            if m["type"] == kind:
                                return m
                        assert not stream.ended.is_set(), (stream.headers, messages)
                        await stream.changed.wait()

                def frame(obj: dict[str, str]) -> bytes:
                    return ws.send_data(json.dumps(obj), fin=True)

                auth = {"type": "auth", "token": s["token"], "fingerprint": FINGERPRINT}
                await conn.send(sid, frame(auth))
                ready = await until("ready")
                assert conn.streams[sid].status == 200
                assert conn.conn.remote_settings.enable_connect_protocol == 1
                assert ready["session_id"] == s["session_id"]
                await conn.send(sid, frame({"type": "message", "message": "over h2"}))
                end = await until("end")
                assert end["text"] == "echo: over h2"


def _sigint_ignored() -> None:
    """As under `nohup ... &` or a CI job: SIGINT inherited ignored (Python then sets no
    handler of its own for it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
async def test_the_demo_serves_http2_with_a_labelled_throwaway_certificate(
    stop: signal.Signals,
) -> None:
    """`python -m quartproxy demo --tls`: HTTPS and HTTP/2 in one command, the certificate made
    at start, said to be throwaway, and deleted at exit — on SIGINT (Ctrl-C, also when it came
    ignored from the parent) and on SIGTERM. (The client skips verification on purpose:
    nothing trusts a throwaway self-signed certificate.) The demo's output is read to its end,
    so a full pipe can never hold its exit, and shown when it does not exit."""
    port = free_port()
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "quartproxy", "demo", "--tls", "--bind", f"127.0.0.1:{port}"],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_sigint_ignored,
    )  # fmt: skip
    output = bytearray()
    running = trio.Event()

    async def read_all() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.receive_some():
            output.extend(chunk)
            if b"Running on https://" in output:
                running.set()
        running.set()  # ended before it ran: the assertions below say so

    exited = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        try:
            with trio.fail_after(60):
                await running.wait()
                text = output.decode()
                assert "Running on https://" in text, text
                assert "THROWAWAY self-signed certificate" in text
                (certfile,) = re.findall(r"Certificate: (\S+)", text)
                assert await trio.Path(certfile).is_file()
                async with httpx.AsyncClient(
                    base_url=f"https://127.0.0.1:{port}", http2=True, verify=False
                ) as client:
                    health = await client.get("/health")
                    page = await client.get("/")
                assert (health.status_code, health.http_version) == (200, H2)
                assert page.status_code == 200 and "widget.js" in page.text
        finally:
            proc.send_signal(stop)
            with trio.move_on_after(45):  # past graceful_timeout (30 s): a drain ends by then
                await proc.wait()
            if proc.returncode is None:
                exited = False
                proc.kill()
                await proc.wait()
    assert exited, f"the demo did not exit on {stop.name}; its output:\n{output.decode()[-3000:]}"
    assert not await trio.Path(certfile).exists()  # deleted at exit
