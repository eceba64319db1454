"""The WebSocket channel and the @n8n/chat drop-in endpoint, through the proxy to a real n8n.

WebSocket turns against the JWT-protected Webhook workflows; `POST /api/v1/n8n/chat` (the
official widget's protocol) against the Chat Trigger workflows and a JWT webhook.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.e2e import harness
from tests.e2e.fake_openai import split_tokens
from tests.support import FINGERPRINT, ORIGIN, Proxy, running_proxy, settings_for

pytestmark = pytest.mark.e2e

WIDGET_PATH = "/api/v1/n8n/chat"


@asynccontextmanager
async def proxy_to(url: str, **env: str) -> AsyncIterator[Proxy]:
    env.setdefault("SESSION_SECRET_KEY", harness.SESSION_SECRET)
    async with running_proxy(settings_for(url, **env)) as proxy:
        yield proxy


@asynccontextmanager
async def chat_socket(proxy: Proxy, session: dict[str, str]) -> AsyncIterator[WebSocketConnection]:
    url = proxy.url.replace("http://", "ws://") + "/api/v1/chat/ws"
    async with open_websocket_url(url, extra_headers=[(b"Origin", ORIGIN.encode())]) as ws:
        auth = {"type": "auth", "token": session["token"], "fingerprint": FINGERPRINT}
        await ws.send_message(json.dumps(auth))
        yield ws


async def ws_turn(ws: WebSocketConnection, message: str) -> list[dict[str, Any]]:
    """Frames of one turn, from `start` to `end`/`error` (pings and the auth answer skipped)."""
    await ws.send_message(json.dumps({"type": "message", "message": message}))
    frames: list[dict[str, Any]] = []
    with trio.fail_after(60):
        while True:
            frame = json.loads(await ws.get_message())
            if frame["type"] in ("ping", "ready"):
                continue
            frames.append(frame)
            if frame["type"] in ("end", "error"):
                return frames


def ws_deltas(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f["type"] == "delta"]


async def widget_post(
    proxy: Proxy, body: dict[str, Any], *, streaming: bool = False
) -> httpx.Response:
    """What the official widget's fetch() sends (JSON mode: Accept */*; streaming: text/plain)."""
    headers = {
        "Origin": ORIGIN,
        "Content-Type": "application/json",
        "Accept": "text/plain" if streaming else "*/*",
    }
    return await proxy.client.post(WIDGET_PATH, content=json.dumps(body), headers=headers)


def widget_lines(text: str) -> list[dict[str, Any]]:
    """Split and parse a streamed body the way @n8n/chat does (a non-JSON line is an item)."""
    out: list[dict[str, Any]] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"type": "item", "content": line})
    return out


# --- WebSocket -----------------------------------------------------------------------------------


async def test_ws_streamed_answer(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("stream")) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            frames = await ws_turn(ws, "hello")
            again = await ws_turn(ws, "again")
    assert [f["type"] for f in frames] == ["start", "delta", "delta", "delta", "end"]
    assert ws_deltas(frames) == ["Streaming answer to: hello.", " Second chunk.", " Third chunk."]
    assert frames[0]["session_id"] == session["session_id"]
    assert frames[-1]["message_id"] == frames[0]["message_id"]
    assert frames[-1]["text"] == "Streaming answer to: hello. Second chunk. Third chunk."
    assert again[-1]["text"] == "Streaming answer to: again. Second chunk. Third chunk."


async def test_ws_agent_tokens(n8n: harness.N8n) -> None:
    message = f"socket tokens {uuid.uuid4().hex[:6]}"
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    async with proxy_to(n8n.webhook_url("agent")) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            frames = await ws_turn(ws, message)
    assert ws_deltas(frames) == expected
    assert frames[-1]["type"] == "end"


async def test_ws_json_answer(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("json")) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            frames = await ws_turn(ws, "over the socket")
    assert [f["type"] for f in frames] == ["start", "delta", "end"]
    assert frames[-1]["text"] == "JSON answer to: over the socket"


async def test_ws_failure_after_first_chunk(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("error")) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            frames = await ws_turn(ws, "break")
    assert [f["type"] for f in frames] == ["start", "delta", "error"]
    assert ws_deltas(frames) == ["Partial answer before the failure."]
    assert frames[-1]["code"] == "upstream_error"


async def test_ws_wrong_secret_is_refused_by_n8n(n8n: harness.N8n) -> None:
    wrong = "a-different-session-secret-than-n8n-knows"
    async with proxy_to(n8n.webhook_url("json"), SESSION_SECRET_KEY=wrong) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            frames = await ws_turn(ws, "let me in")
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "upstream_error"


async def test_ws_claims_n8n_receives(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("claims")) as proxy:
        session = await proxy.session()
        async with chat_socket(proxy, session) as ws:
            turns = [await ws_turn(ws, "first"), await ws_turn(ws, "second")]
    echoes = [json.loads(t[-1]["text"]) for t in turns]
    for frames, echo in zip(turns, echoes, strict=True):
        assert echo["claims"]["exp"] - echo["claims"]["iat"] == 30
        assert echo["claims"]["sid"] == session["session_id"]
        assert echo["claims"]["origin"] == ORIGIN
        assert echo["claims"]["mid"] == frames[0]["message_id"]
    assert echoes[0]["claims"]["jti"] != echoes[1]["claims"]["jti"]
    assert [e["body"]["chatInput"] for e in echoes] == ["first", "second"]


# --- POST /api/v1/n8n/chat (the official @n8n/chat widget) --------------------------------------


async def test_widget_json_mode_against_the_chat_trigger_with_memory(n8n: harness.N8n) -> None:
    visitor = str(uuid.uuid4())
    async with proxy_to(n8n.chat_url("chat-trigger")) as proxy:
        before = await widget_post(proxy, harness.chat_body("", visitor, "loadPreviousSession"))
        one = await widget_post(proxy, harness.chat_body("first question", visitor))
        two = await widget_post(proxy, harness.chat_body("second question", visitor))
        after = await widget_post(proxy, harness.chat_body("", visitor, "loadPreviousSession"))
        stranger = await widget_post(
            proxy, harness.chat_body("", str(uuid.uuid4()), "loadPreviousSession")
        )
    assert before.status_code == 200
    assert before.json() == {"data": []}
    assert one.json() == {"output": "Fake model heard: first question (turn 1)"}
    assert two.json() == {"output": "Fake model heard: second question (turn 2)"}
    # Read as the widget reads it: HumanMessage in `id` is the user, kwargs.content the text.
    shown = [
        ("user" if "HumanMessage" in m["id"] else "bot", m["kwargs"]["content"])
        for m in after.json()["data"]
    ]
    assert shown == [
        ("user", "first question"),
        ("bot", "Fake model heard: first question (turn 1)"),
        ("user", "second question"),
        ("bot", "Fake model heard: second question (turn 2)"),
    ]
    assert stranger.json() == {"data": []}


async def test_widget_streaming_mode_against_the_streaming_chat_trigger(n8n: harness.N8n) -> None:
    expected = split_tokens("Fake model heard: stream it (turn 1)")
    async with proxy_to(n8n.chat_url("chat-stream")) as proxy:
        r = await widget_post(proxy, harness.chat_body("stream it"), streaming=True)
    assert r.status_code == 200
    chunks = widget_lines(r.text)
    assert [c["content"] for c in chunks if c["type"] == "item"] == expected
    assert chunks[-1]["type"] == "end"


async def test_widget_against_a_jwt_webhook(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("stream")) as proxy:
        whole = await widget_post(proxy, harness.chat_body("hello"))
        streamed = await widget_post(proxy, harness.chat_body("hello"), streaming=True)
    assert whole.status_code == 200
    assert whole.json() == {"output": "Streaming answer to: hello. Second chunk. Third chunk."}
    chunks = widget_lines(streamed.text)
    text = "".join(c["content"] for c in chunks if c["type"] == "item")
    assert text == "Streaming answer to: hello. Second chunk. Third chunk."


async def test_widget_sees_an_error_after_the_first_chunk(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("error")) as proxy:
        streamed = await widget_post(proxy, harness.chat_body("break"), streaming=True)
        whole = await widget_post(proxy, harness.chat_body("break"))
    chunks = widget_lines(streamed.text)
    assert [c["type"] for c in chunks][-1] == "error"
    assert chunks[-1]["content"]  # the widget shows "Error: <content>"
    assert "Partial answer before the failure." in [c.get("content") for c in chunks]
    assert whole.status_code == 502
    assert whole.json()["error"]["code"] == "upstream_error"
