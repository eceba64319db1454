"""The WebSocket channel through a real Hypercorn, with trio-websocket as the client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from quartproxy.factory import create_app
from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    ORIGIN,
    OTHER_ORIGIN,
    FakeN8n,
    Proxy,
    parse_sse,
    served,
    settings_for,
    sse_turn,
)

WS_PATH = "/api/v1/chat/ws"


def ws_url(proxy: Proxy) -> str:
    return proxy.url.replace("http://", "ws://") + WS_PATH


# What Chromium sends on a WebSocket handshake (the bot check reads these, as over HTTP).
WS_BROWSER_HEADERS = {**BROWSER_HEADERS, "Sec-Fetch-Mode": "websocket"}


@asynccontextmanager
async def socket(
    proxy: Proxy, origin: str | None = ORIGIN, headers: dict[str, str] | None = None
) -> AsyncIterator[WebSocketConnection]:
    sent = WS_BROWSER_HEADERS if headers is None else headers
    extra = [(k.encode(), v.encode()) for k, v in sent.items()]
    if origin is not None:
        extra.append((b"Origin", origin.encode()))
    async with open_websocket_url(ws_url(proxy), extra_headers=extra) as ws:
        yield ws


async def send(ws: WebSocketConnection, obj: Any) -> None:
    await ws.send_message(json.dumps(obj))


async def receive(ws: WebSocketConnection, *, skip_pings: bool = True) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            frame = json.loads(await ws.get_message())
            if not (skip_pings and frame["type"] == "ping"):
                return dict(frame)


async def closed_with(ws: WebSocketConnection) -> tuple[int, list[dict[str, Any]]]:
    """Frames received until the server closes, and its close code."""
    frames: list[dict[str, Any]] = []
    with trio.fail_after(10):
        try:
            while True:
                frames.append(json.loads(await ws.get_message()))
        except ConnectionClosed as closed:
            return closed.reason.code, frames


async def authed(ws: WebSocketConnection, session: dict[str, str]) -> dict[str, Any]:
    await send(ws, {"type": "auth", "token": session["token"], "fingerprint": FINGERPRINT})
    ready = await receive(ws)
    assert ready == {"type": "ready", "session_id": session["session_id"]}
    return ready


async def turn(ws: WebSocketConnection, message: str) -> list[dict[str, Any]]:
    """Send one message; the frames up to its end/error."""
    await send(ws, {"type": "message", "message": message})
    frames = []
    while True:
        frame = await receive(ws)
        frames.append(frame)
        if frame["type"] in ("end", "error"):
            return frames


# -- handshake and auth -------------------------------------------------------------------------


async def test_disallowed_origin_is_refused_at_the_handshake(proxy: Proxy) -> None:
    for origin in (OTHER_ORIGIN, None, "null"):
        with pytest.raises(ConnectionRejected) as refused:
            async with socket(proxy, origin):
                pass
        assert refused.value.status_code == 403
        assert json.loads(refused.value.body or b"")["error"]["code"] == "origin_not_allowed"


async def test_no_auth_frame_in_time_closes_4401(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(WS_AUTH_SECONDS="0.2") as p, socket(p) as ws:
        code, frames = await closed_with(ws)
    assert code == 4401
    assert frames == [{"type": "error", "code": "unauthorized", "message": frames[0]["message"]}]
    assert "0.2 seconds" in frames[0]["message"]


@pytest.mark.parametrize(
    "first",
    [
        "not json",
        json.dumps({"type": "message", "message": "hi"}),
        json.dumps({"type": "auth"}),
        json.dumps({"type": "auth", "token": "not-a-jwt"}),
        json.dumps(["auth"]),
    ],
)
async def test_bad_first_frame_closes_4401(proxy: Proxy, first: str) -> None:
    async with socket(proxy) as ws:
        await ws.send_message(first)
        code, frames = await closed_with(ws)
    assert code == 4401
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["code"] == "unauthorized"


async def test_token_is_bound_to_its_origin_and_fingerprint(proxy: Proxy) -> None:
    s = await proxy.session()
    async with socket(proxy, "https://blog.example.org") as ws:  # allowed, but not its origin
        await send(ws, {"type": "auth", "token": s["token"], "fingerprint": FINGERPRINT})
        code, frames = await closed_with(ws)
    assert (code, frames[0]["code"]) == (4401, "session_mismatch")
    async with socket(proxy) as ws:
        await send(ws, {"type": "auth", "token": s["token"], "fingerprint": "another-browser"})
        code, frames = await closed_with(ws)
    assert (code, frames[0]["code"]) == (4401, "session_mismatch")


async def test_binary_first_frame_closes_4401(proxy: Proxy) -> None:
    async with socket(proxy) as ws:
        await ws.send_message(b"\x00\x01")
        code, _ = await closed_with(ws)
    assert code == 4401


# -- turns ----------------------------------------------------------------------------------------


async def test_turns_on_one_socket_match_the_sse_events(proxy: Proxy) -> None:
    s = await proxy.session()
    sse = await sse_turn(proxy, s, "hello world")
    async with socket(proxy) as ws:
        await authed(ws, s)
        first = await turn(ws, "hello world")
        second = await turn(ws, "json:Bonjour à tous")
    assert [f["type"] for f in first] == [e.event for e in sse]
    mid = first[0]["message_id"]
    assert mid != sse[0].data["message_id"]
    for frame, event in zip(first, sse, strict=True):
        # same fields and values as the SSE event, apart from the answer's own id
        data = {k: v for k, v in frame.items() if k not in ("type", "id")}
        expected = {k: (mid if k == "message_id" else v) for k, v in event.data.items()}
        assert data == expected
    assert [f["id"] for f in first] == [f"{mid}:{i}" for i in range(len(first))]
    assert first[0]["session_id"] == s["session_id"]
    assert first[-1]["text"] == "echo: hello world"
    assert [f["type"] for f in second] == ["start", "delta", "end"]
    assert second[-1]["text"] == "Bonjour à tous"


async def test_turn_errors_are_error_frames_and_the_socket_stays(proxy: Proxy) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        frames = await turn(ws, "error-mid")
        assert [f["type"] for f in frames] == ["start", "delta", "error"]
        assert frames[-1]["code"] == "upstream_error"
        assert frames[-1]["id"].endswith(":2")
        again = await turn(ws, "still here")
        assert again[-1]["text"] == "echo: still here"


async def test_ping_is_answered_and_server_sends_heartbeats(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
) -> None:
    async with make_proxy(HEARTBEAT_SECONDS="0.05") as p, socket(p) as ws:
        s = await p.session()
        await authed(ws, s)
        await send(ws, {"type": "ping"})
        seen = []
        while not seen or seen[-1] != "pong":
            seen.append((await receive(ws, skip_pings=False))["type"])
        await send(ws, {"type": "message", "message": "gate:hb"})
        pings = 0
        types = []
        while "end" not in types:
            frame = await receive(ws, skip_pings=False)
            types.append(frame["type"])
            if frame["type"] == "ping":
                pings += 1
                if pings == 2:
                    fake_n8n.gates["hb"].set()
        assert [t for t in types if t != "ping"] == ["start", "delta", "delta", "end"]


# -- admission: the HTTP limits, busy, bad frames ---------------------------------------------


async def test_rate_limits_are_shared_with_http(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION="3/minute") as p:
        s = await p.session()
        await sse_turn(p, s, "over http")
        async with socket(p) as ws:
            await authed(ws, s)
            assert (await turn(ws, "one"))[-1]["type"] == "end"
            assert (await turn(ws, "two"))[-1]["type"] == "end"
            await send(ws, {"type": "message", "message": "three"})
            refused = await receive(ws)
            assert refused["type"] == "error"
            assert refused["code"] == "rate_limited"
            assert refused["retry_after"] >= 1
            # the socket is still open and still limited
            await send(ws, {"type": "ping"})
            assert (await receive(ws))["type"] == "pong"
        r = await p.client.post("/api/v1/chat/message", json={"message": "four"}, headers=p.auth(s))
        assert r.status_code == 429


async def test_ip_tier_applies_to_websocket_messages(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_IP="2/minute") as p:
        a, b = await p.session(), await p.session()
        async with socket(p) as wa, socket(p) as wb:
            await authed(wa, a)
            await authed(wb, b)
            assert (await turn(wa, "one"))[-1]["type"] == "end"
            assert (await turn(wb, "two"))[-1]["type"] == "end"
            await send(wb, {"type": "message", "message": "three"})
            assert (await receive(wb))["code"] == "rate_limited"


async def test_second_message_while_answering_is_busy(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        await send(ws, {"type": "message", "message": "gate:busy"})
        assert (await receive(ws))["type"] == "start"
        assert (await receive(ws))["text"] == "before "
        await send(ws, {"type": "message", "message": "too soon"})
        busy = await receive(ws)
        assert (busy["type"], busy["code"]) == ("error", "busy")
        fake_n8n.gates["busy"].set()
        rest = [await receive(ws), await receive(ws)]
        assert rest[-1]["type"] == "end"
        assert rest[-1]["text"] == "before after"
    assert "too soon" not in fake_n8n.finished


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{oops", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('"text"', "bad_request"),
        (json.dumps({"no": "type"}), "bad_request"),
        (json.dumps({"type": "dance"}), "bad_request"),
        (json.dumps({"type": "auth", "token": "again"}), "bad_request"),
        (json.dumps({"type": "message"}), "bad_request"),
        (json.dumps({"type": "message", "message": "   "}), "bad_request"),
        (json.dumps({"type": "message", "message": 42}), "bad_request"),
        (json.dumps({"type": "message", "message": "x" * 4001}), "bad_request"),
        (json.dumps({"type": "message", "message": "hi", "metadata": [1]}), "bad_request"),
        # more bytes than MAX_BODY_BYTES in fewer characters: read whole by Hypercorn (which
        # counts characters), refused by the app; more characters close with 1009
        # (test_edge_protocols.py)
        (
            json.dumps({"type": "message", "message": "é" * 33_000}, ensure_ascii=False),
            "payload_too_large",
        ),
        (b"\x00binary", "bad_request"),
    ],
)
async def test_malformed_frames_get_an_error_frame_not_a_dropped_socket(
    proxy: Proxy, fake_n8n: FakeN8n, frame: str | bytes, code: str
) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        await ws.send_message(frame)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert "id" not in error
        frames = await turn(ws, "after the bad frame")
        assert frames[-1]["text"] == "echo: after the bad frame"
    assert len(fake_n8n.requests) == 1


async def test_deleted_session_stops_the_socket(proxy: Proxy) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        r = await proxy.client.delete("/api/v1/session", headers=proxy.auth(s))
        assert r.status_code == 204
        await send(ws, {"type": "message", "message": "still there?"})
        code, frames = await closed_with(ws)
    assert code == 4401
    assert frames[0]["code"] == "unauthorized"


async def test_bot_and_spam_checks_apply_to_websocket_messages(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
) -> None:
    async with make_proxy(SPAM_BLOCK_PATTERNS="casino") as p:
        s = await p.session()
        # a script that sends no browser headers at all
        async with socket(p, headers={"User-Agent": "python-websockets/12"}) as ws:
            await authed(ws, s)
            frames = await turn(ws, "hello")
            assert [(f["type"], f["code"]) for f in frames] == [("error", "blocked")]
            assert frames[0]["reason"] == "automated"
        async with socket(p) as ws:
            await authed(ws, s)
            frames = await turn(ws, "best casino bonus")
            assert [(f["type"], f["code"]) for f in frames] == [("error", "blocked")]
            assert frames[0]["reason"] == "pattern"  # as the HTTP body's error.reason
            await send(ws, {"type": "message", "message": "real question", "honeypot": "x"})
            assert (await receive(ws))["code"] == "blocked"
            assert (await turn(ws, "a real question"))[-1]["type"] == "end"
    assert fake_n8n.finished == ["a real question"]


# -- the answer survives the socket; shutdown ------------------------------------------------


async def test_disconnect_mid_answer_keeps_the_answer(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    async with socket(proxy) as ws:
        await authed(ws, s)
        await send(ws, {"type": "message", "message": "gate:leave"})
        start = await receive(ws)
        first = await receive(ws)
        assert first["text"] == "before "
    # the socket is closed; n8n finishes its answer afterwards
    fake_n8n.gates["leave"].set()
    with trio.fail_after(10):
        await fake_n8n.done["gate:leave"].wait()
    mid = start["message_id"]
    r = await proxy.client.get(
        f"/api/v1/chat/message/{mid}", headers={**proxy.auth(s), "Last-Event-ID": first["id"]}
    )
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert [e.event for e in events] == ["delta", "end"]
    assert events[-1].data["text"] == "before after"


async def test_server_shutdown_closes_sockets_with_1001(fake_n8n: FakeN8n) -> None:
    settings = settings_for(fake_n8n.url)
    app = create_app(settings)
    stop = trio.Event()

    async def serve(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with served(app, graceful_timeout=0.5) as url:
            task_status.started(url)
            await stop.wait()  # leaving `served` shuts Hypercorn down

    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve)
        async with httpx.AsyncClient(base_url=url, headers=BROWSER_HEADERS) as client:
            p = Proxy(url, app, settings, client)
            s = await p.session()
            async with socket(p) as ws:
                await authed(ws, s)
                stop.set()
                code, _ = await closed_with(ws)
    assert code == 1001
