"""Graceful shutdown over HTTP/2 of a real `python -m quartproxy --certfile/--keyfile` process:
on SIGTERM the streams of one h2 connection drain (or end with `shutting_down` at the
deadline), a new stream on it is refused with 503 `shutting_down`, and the connection ends with
GOAWAY (NO_ERROR) - what tells a browser the close was deliberate and which requests it may
safely retry - and the widget's answer resumes after a restart."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.h2_support import Tls, make_tls, raw_h2
from tests.ops_support import server_env, server_process
from tests.support import BROWSER_HEADERS, FINGERPRINT, ORIGIN, FakeN8n, parse_sse


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


def event(name: str) -> Any:
    return lambda line: line.get("event") == name


def turn(session: dict[str, str], message: str) -> tuple[str, str, dict[str, str], bytes]:
    headers = {k.lower(): v for k, v in BROWSER_HEADERS.items()}
    headers.update(
        {
            "origin": ORIGIN,
            "authorization": f"Bearer {session['token']}",
            "x-chat-fingerprint": FINGERPRINT,
            "content-type": "application/json",
        }
    )
    body = json.dumps({"message": message}).encode()
    return "POST", "/api/v1/chat/message", headers, body


async def test_sigterm_over_http2_drains_the_streams_then_sends_goaway(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    args = ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
    with trio.fail_after(60):
        async with server_process(server_env(fake_n8n.url), graceful=3, args=args) as server:
            async with httpx.AsyncClient(
                base_url=server.url, http2=True, verify=tls.client_context(),
                headers=BROWSER_HEADERS,
            ) as client:  # fmt: skip
                sessions = []
                for _ in range(3):
                    r = await client.post(
                        "/api/v1/session/create", json={"fingerprint": FINGERPRINT},
                        headers={"Origin": ORIGIN},
                    )  # fmt: skip
                    assert (r.status_code, r.http_version) == (201, "HTTP/2")
                    sessions.append(r.json())

            async with raw_h2(server.url, tls) as conn:
                finishing = await conn.request(*turn(sessions[0], "gate:finish"))
                cut = await conn.request(*turn(sessions[1], "gate:never"))
                await conn.wait_for(finishing, "before")
                await conn.wait_for(cut, "before")

                server.signal(signal.SIGTERM)
                (started,) = await server.wait_log(event("drain_started"))
                assert started["running"] == 2

                late = await conn.request(*turn(sessions[2], "too late"))
                await conn.streams[late].ended.wait()
                assert conn.streams[late].status == 503
                assert json.loads(conn.streams[late].text)["error"]["code"] == "shutting_down"

                fake_n8n.gates["finish"].set()
                await conn.streams[finishing].ended.wait()
                done = parse_sse(conn.streams[finishing].text)
                assert [e.event for e in done][-1] == "end"
                assert done[-1].data["text"] == "before after"

                await conn.streams[cut].ended.wait()  # at the drain deadline
                stopped = parse_sse(conn.streams[cut].text)
                assert stopped[-1].event == "error"
                assert stopped[-1].data["code"] == "shutting_down"
                mid = stopped[0].data["message_id"]
                assert stopped[-1].id == f"{mid}:2"

                await conn.closed.wait()
                assert conn.goaway is not None, "the connection was closed without GOAWAY"
                assert conn.goaway.error_code == 0  # NO_ERROR: a deliberate, graceful close
                assert conn.goaway.last_stream_id == late
            assert await server.proc.wait() == 0


async def test_a_stream_stalled_by_a_client_that_left_does_not_hold_up_shutdown(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    """A client opens no window for its answer (HTTP/2 flow control), lets the answer finish,
    and disconnects. The final write of that answer must end with the connection: before
    overrides/hypercorn_h2.py it waited for ever (shielded), leaking the task, and SIGTERM never
    finished."""
    args = ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
    async with server_process(server_env(fake_n8n.url), graceful=2, args=args) as server:
        with trio.fail_after(30):
            async with httpx.AsyncClient(
                base_url=server.url, http2=True, verify=tls.client_context(),
                headers=BROWSER_HEADERS,
            ) as client:  # fmt: skip
                r = await client.post(
                    "/api/v1/session/create", json={"fingerprint": FINGERPRINT},
                    headers={"Origin": ORIGIN},
                )  # fmt: skip
                session = r.json()
            async with raw_h2(server.url, tls, window=0) as conn:
                sid = await conn.request(*turn(session, "never read"))
                conn.stalled.add(sid)
                await fake_n8n.done["never read"].wait()
                while conn.streams[sid].status == 0:  # headers are not flow-controlled
                    await conn.streams[sid].changed.wait()
                assert conn.streams[sid].status == 200 and not conn.streams[sid].data
            # the client has gone; the answer's last write can never happen
        server.signal(signal.SIGTERM)
        with trio.move_on_after(30):
            await server.proc.wait()
        assert server.proc.returncode == 0, "the worker never finished shutting down"
