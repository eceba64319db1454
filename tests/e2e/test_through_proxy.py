"""Chat turns through the proxy (real Hypercorn on a loopback port) to a real n8n 1.123.

Each test points a proxy's N8N_WEBHOOK_URL at one of the workflows in tests/e2e/workflows and
talks to the proxy as a widget does. The proxy and n8n share the SESSION_SECRET_KEY through n8n's
JWT Auth credential, so every answer here also proves n8n accepted the proxy's token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.e2e import harness
from tests.e2e.conftest import FakeModel
from tests.e2e.fake_openai import split_tokens
from tests.support import (
    ORIGIN,
    Proxy,
    SseEvent,
    parse_sse,
    running_proxy,
    settings_for,
    sse_turn,
)

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def proxy_to(url: str, **env: str) -> AsyncIterator[Proxy]:
    """A stateless proxy whose upstream is `url`, sharing the test secret with n8n."""
    env.setdefault("SESSION_SECRET_KEY", harness.SESSION_SECRET)
    async with running_proxy(settings_for(url, **env)) as proxy:
        yield proxy


async def ndjson_turn(proxy: Proxy, session: dict[str, str], message: str) -> list[dict[str, Any]]:
    r = await proxy.client.post(
        "/api/v1/chat/stream", json={"message": message}, headers=proxy.auth(session)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def kinds(events: list[SseEvent]) -> list[str]:
    return [e.event for e in events]


def deltas(events: list[SseEvent]) -> list[str]:
    return [e.data["text"] for e in events if e.event == "delta"]


# --- SSE and NDJSON turns ------------------------------------------------------------------------


async def test_sse_streamed_answer(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("stream")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "hello")
    assert kinds(events) == ["start", "delta", "delta", "delta", "end"]
    assert deltas(events) == ["Streaming answer to: hello.", " Second chunk.", " Third chunk."]
    mid = events[0].data["message_id"]
    assert events[0].data == {"message_id": mid, "session_id": session["session_id"]}
    assert [e.id for e in events] == [f"{mid}:{i}" for i in range(len(events))]
    assert events[-1].data == {
        "message_id": mid,
        "text": "Streaming answer to: hello. Second chunk. Third chunk.",
    }


async def test_ndjson_streamed_answer(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("stream")) as proxy:
        session = await proxy.session()
        chunks = await ndjson_turn(proxy, session, "hello")
    assert chunks[0]["type"] == "begin"
    assert chunks[-1]["type"] == "end"
    assert {c["type"] for c in chunks[1:-1]} == {"item"}
    text = "".join(c["content"] for c in chunks if c["type"] == "item")
    assert text == "Streaming answer to: hello. Second chunk. Third chunk."


async def test_single_json_answer_is_one_delta(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("json")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "what is up")
        chunks = await ndjson_turn(proxy, session, "and now")
    assert kinds(events) == ["start", "delta", "end"]
    assert events[-1].data["text"] == "JSON answer to: what is up"
    assert "".join(c.get("content", "") for c in chunks) == "JSON answer to: and now"


async def test_answer_with_a_wait_between_chunks(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("slow")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "take your time")
    assert kinds(events) == ["start", "delta", "delta", "end"]
    assert deltas(events) == ["First half,", " second half after a pause."]


async def test_agent_tokens_arrive_as_deltas(n8n: harness.N8n) -> None:
    message = f"tokens please {uuid.uuid4().hex[:6]}"
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    async with proxy_to(n8n.webhook_url("agent")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, message)
        chunks = await ndjson_turn(proxy, session, message)
    assert deltas(events) == expected
    assert events[-1].event == "end"
    assert events[-1].data["text"] == "".join(expected)
    assert [c["content"] for c in chunks if c["type"] == "item"] == expected


# --- Errors --------------------------------------------------------------------------------------


async def test_failure_after_first_chunk_keeps_the_chunk_then_errors(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("error")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "break")
        chunks = await ndjson_turn(proxy, session, "break again")
    assert kinds(events) == ["start", "delta", "error"]
    assert deltas(events) == ["Partial answer before the failure."]
    assert events[-1].data["code"] == "upstream_error"
    assert events[-1].data["message"]
    assert chunks[-1]["type"] == "error"
    assert "Partial answer before the failure." in [c.get("content") for c in chunks]


async def test_wrong_secret_is_refused_by_n8n(n8n: harness.N8n) -> None:
    wrong = "a-different-session-secret-than-n8n-knows"
    async with proxy_to(n8n.webhook_url("json"), SESSION_SECRET_KEY=wrong) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "let me in")
    assert events[-1].event == "error"
    assert events[-1].data["code"] == "upstream_error"
    assert "JSON answer" not in json.dumps([e.data for e in events])


async def test_expired_proxy_token_is_refused_by_n8n(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("json")) as proxy:
        session = await proxy.session()
        # The proxy's clock for upstream tokens, two minutes behind: its 30-s tokens are expired.
        proxy.services.upstream._clock = lambda: time.time() - 120
        events = await sse_turn(proxy, session, "too late")
        proxy.services.upstream._clock = time.time
        fresh = await sse_turn(proxy, session, "in time")
    assert events[-1].event == "error"
    assert events[-1].data["code"] == "upstream_error"
    assert fresh[-1].data["text"] == "JSON answer to: in time"


async def test_unknown_webhook_is_upstream_error_without_n8n_internals(n8n: harness.N8n) -> None:
    async with proxy_to(f"{n8n.base_url}/webhook/qp-not-registered") as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "anyone there?")
    assert events[-1].event == "error"
    assert events[-1].data["code"] == "upstream_error"
    seen = json.dumps([e.data for e in events])
    for leak in ("stacktrace", "webhook", "qp-not-registered", "127.0.0.1", "node_modules"):
        assert leak not in seen


async def test_no_first_byte_in_time_is_upstream_timeout(n8n: harness.N8n) -> None:
    # qp-slow-json sends nothing for 3 s (a Wait before its JSON answer).
    async with proxy_to(n8n.webhook_url("slow-json"), N8N_TIMEOUT_SECONDS="1") as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "hurry")
    assert kinds(events) == ["start", "error"]
    assert events[-1].data["code"] == "upstream_timeout"


# --- What n8n receives ---------------------------------------------------------------------------


async def test_claims_n8n_receives(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("claims")) as proxy:
        session = await proxy.session()
        first = await sse_turn(proxy, session, "who am I?")
        second = await sse_turn(proxy, session, "and now?")
    echoes = [json.loads(turn[-1].data["text"]) for turn in (first, second)]
    for turn, echo in zip((first, second), echoes, strict=True):
        claims = echo["claims"]
        assert claims["exp"] - claims["iat"] == 30
        assert claims["sid"] == session["session_id"]
        assert claims["origin"] == ORIGIN
        assert claims["mid"] == turn[0].data["message_id"]
        assert echo["body"]["action"] == "sendMessage"
        assert echo["body"]["sessionId"] == session["session_id"]
    assert echoes[0]["body"]["chatInput"] == "who am I?"
    assert echoes[1]["body"]["chatInput"] == "and now?"
    assert echoes[0]["claims"]["jti"] != echoes[1]["claims"]["jti"]


# --- History in the stateless mode ---------------------------------------------------------------


async def test_stateless_history_comes_from_n8n(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.webhook_url("history")) as proxy:
        session = await proxy.session()
        sid = session["session_id"]
        r = await proxy.client.get(f"/api/v1/chat/history/{sid}", headers=proxy.auth(session))
    assert r.status_code == 200
    body = r.json()
    assert body["session_id"] == sid
    assert [(m["role"], m["text"]) for m in body["messages"]] == [
        ("user", f"Hello from session {sid}"),
        ("assistant", f"Stored answer for session {sid}"),
    ]


async def test_history_of_turns_kept_in_n8n_memory(n8n: harness.N8n) -> None:
    # Upstream is a Chat Trigger with an agent and window memory: the history the proxy shows is
    # what n8n's memory kept of the turns that went through the proxy.
    async with proxy_to(n8n.chat_url("chat-trigger")) as proxy:
        session = await proxy.session()
        one = await sse_turn(proxy, session, "first question")
        two = await sse_turn(proxy, session, "second question")
        sid = session["session_id"]
        r = await proxy.client.get(f"/api/v1/chat/history/{sid}", headers=proxy.auth(session))
    assert one[-1].data["text"] == "Fake model heard: first question (turn 1)"
    assert two[-1].data["text"] == "Fake model heard: second question (turn 2)"
    assert r.status_code == 200
    assert [(m["role"], m["text"]) for m in r.json()["messages"]] == [
        ("user", "first question"),
        ("assistant", "Fake model heard: first question (turn 1)"),
        ("user", "second question"),
        ("assistant", "Fake model heard: second question (turn 2)"),
    ]


async def test_streaming_chat_trigger_through_the_proxy(n8n: harness.N8n) -> None:
    async with proxy_to(n8n.chat_url("chat-stream")) as proxy:
        session = await proxy.session()
        events = await sse_turn(proxy, session, "stream it")
    expected = split_tokens("Fake model heard: stream it (turn 1)")
    assert deltas(events) == expected
    assert events[-1].data["text"] == "".join(expected)


# --- Live streaming and resume (the fake model holds its answer after the first token) ----------


async def test_first_token_reaches_the_browser_before_the_model_finishes(
    n8n: harness.N8n, fake_model: FakeModel
) -> None:
    gate = uuid.uuid4().hex[:8]
    message = f"live please [gate:{gate}]"
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    async with proxy_to(n8n.webhook_url("agent")) as proxy:
        session = await proxy.session()
        body = ""
        opened = False
        with trio.fail_after(60):
            async with proxy.client.stream(
                "POST",
                "/api/v1/chat/message",
                json={"message": message},
                headers=proxy.auth(session),
            ) as r:
                async for text in r.aiter_text():
                    body += text
                    so_far = parse_sse(body)
                    if not opened and deltas(so_far):
                        # Every later token is still held by the model.
                        assert kinds(so_far) == ["start", "delta"]
                        assert deltas(so_far) == expected[:1]
                        await fake_model.open_gate(gate)
                        opened = True
    events = parse_sse(body)
    assert deltas(events) == expected
    assert events[-1].data["text"] == "".join(expected)


async def test_answer_survives_the_client_leaving_and_resumes(
    n8n: harness.N8n, fake_model: FakeModel
) -> None:
    gate = uuid.uuid4().hex[:8]
    message = f"I will be back [gate:{gate}]"
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    async with proxy_to(n8n.webhook_url("agent")) as proxy:
        session = await proxy.session()
        headers = proxy.auth(session)
        body = ""
        with trio.fail_after(60):
            async with proxy.client.stream(
                "POST", "/api/v1/chat/message", json={"message": message}, headers=headers
            ) as r:
                async for text in r.aiter_text():
                    body += text
                    if deltas(parse_sse(body)):
                        break  # the browser tab closes after the first token
            seen = parse_sse(body)
            mid = seen[0].data["message_id"]
            last = str(seen[-1].id)
            await fake_model.open_gate(gate)  # n8n and the model finish with nobody listening
            r = await proxy.client.get(
                f"/api/v1/chat/message/{mid}", headers={**headers, "Last-Event-ID": last}
            )
    assert r.status_code == 200
    rest = parse_sse(r.text)
    assert rest[-1].event == "end"
    assert deltas(seen) + deltas(rest) == expected
    assert rest[-1].data == {"message_id": mid, "text": "".join(expected)}


async def test_attached_files_reach_the_workflow_as_binary_data(n8n: harness.N8n) -> None:
    """A Webhook node with JWT Auth reads the multipart message: the fields as its body, each
    file as binary data (docs/attachments.md), bytes and hashes intact."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    pdf = b"%PDF-1.7\n" + b"\r\n--not-a-boundary\r\n" * 20 + b"%%EOF\n"
    async with proxy_to(n8n.webhook_url("files"), ATTACH_ENABLED="true") as proxy:
        session = await proxy.session()
        r = await proxy.client.post(
            "/api/v1/chat/message",
            data={"message": "read these", "metadata": json.dumps({"page": "/p"})},
            files=[
                ("files", ("cat.png", png, "image/png")),
                ("files", ("doc.pdf", pdf, "application/pdf")),
            ],
            headers=proxy.auth(session),
        )
        assert r.status_code == 200, r.text
        events = parse_sse(r.text)
    assert events[-1].event == "end", r.text
    echo = json.loads(events[-1].data["text"])
    assert echo["body"]["chatInput"] == "read these"
    assert echo["body"]["action"] == "sendMessage"
    got = {f["name"]: (f["mime"], base64.b64decode(f["data"])) for f in echo["files"]}
    assert got == {"cat.png": ("image/png", png), "doc.pdf": ("application/pdf", pdf)}
    assert echo["claims"]["files"] == [
        hashlib.sha256(png).hexdigest(),
        hashlib.sha256(pdf).hexdigest(),
    ]
