"""What quartproxy relies on, proven against a real n8n 1.123 (no proxy in between).

Each request looks like the proxy's: JSON chat body, `Authorization: Bearer <HS256 JWT signed with
the text of SESSION_SECRET_KEY>`, `Accept: text/plain, application/json`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tests.e2e import harness
from tests.e2e.conftest import FakeModel
from tests.e2e.fake_openai import answer_tokens, split_tokens

pytestmark = pytest.mark.e2e

ACCEPT = "text/plain, application/json"
CHUNK_KEYS = {"type", "content", "metadata"}
METADATA_KEYS = {"nodeId", "nodeName", "itemIndex", "runIndex", "timestamp"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as c:
        yield c


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    token: str | None = None,
    authorization: str | None = None,
) -> httpx.Response:
    headers = {"Accept": ACCEPT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return await client.post(url, json=body, headers=headers)


def groups(chunks: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(nodeName, [chunk types]) per begin..end group, in order."""
    out: list[tuple[str, list[str]]] = []
    for chunk in chunks:
        if chunk["type"] == "begin":
            out.append((chunk["metadata"]["nodeName"], []))
        out[-1][1].append(chunk["type"])
    return out


def item_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["content"] for c in chunks if c["type"] == "item")


# --- JWT Auth on the Webhook node ---------------------------------------------------------------


async def test_valid_token_runs_the_workflow(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"), harness.sign())
    assert r.status_code == 200
    assert r.json() == {"output": "JSON answer to: ping"}


async def test_no_token_is_401(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"))
    assert r.status_code == 401
    assert r.text == "No token provided"


async def test_wrong_secret_is_403(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    token = harness.sign(secret="not-the-session-secret-key-of-this-proxy")
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"), token)
    assert r.status_code == 403
    assert r.text == "invalid signature"


async def test_expired_token_is_403(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    token = harness.sign(now=int(time.time()) - 120)  # iat 2 min ago, exp 30 s after that
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"), token)
    assert r.status_code == 403
    assert r.text == "jwt expired"


async def test_token_not_yet_valid_is_403(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    token = harness.sign({"nbf": int(time.time()) + 600})
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"), token)
    assert r.status_code == 403
    assert r.text == "jwt not active"


async def test_token_signed_with_hex_decoded_secret_is_403(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    # n8n uses the passphrase as UTF-8 text; signing with its bytes decoded any other way fails.
    token = harness.sign(secret=harness.SESSION_SECRET.encode().hex())
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("ping"), token)
    assert r.status_code == 403


async def test_scheme_word_is_not_checked(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(
        client,
        n8n.webhook_url("json"),
        harness.chat_body("ping"),
        authorization=f"Whatever {harness.sign()}",
    )
    assert r.status_code == 200


async def test_streaming_webhook_rejects_before_streaming(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    token = harness.sign(secret="not-the-session-secret-key-of-this-proxy")
    r = await post(client, n8n.webhook_url("stream"), harness.chat_body("ping"), token)
    assert r.status_code == 403
    assert r.text == "invalid signature"  # a plain status, no NDJSON chunk


async def test_unknown_webhook_is_404_json_with_internals(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    r = await post(client, f"{n8n.base_url}/webhook/qp-no-such-path", harness.chat_body("x"))
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == 404
    # n8n's 404 carries a stack trace with server paths: the proxy must never relay it.
    assert "stacktrace" in body


# --- Answers -------------------------------------------------------------------------------------


async def test_streamed_answer_is_ndjson_in_groups(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    r = await post(client, n8n.webhook_url("stream"), harness.chat_body("hello"), harness.sign())
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.text.endswith("\n")
    chunks = harness.parse_ndjson(r.text)
    for chunk in chunks:
        assert set(chunk) <= CHUNK_KEYS
        assert set(chunk["metadata"]) == METADATA_KEYS
        assert ("content" in chunk) == (chunk["type"] == "item")
    assert groups(chunks) == [
        ("Chunk 1", ["begin", "item", "end"]),
        ("Chunk 2", ["begin", "item", "end"]),
        ("Chunk 3", ["begin", "item", "end"]),
    ]
    assert [c["content"] for c in chunks if c["type"] == "item"] == [
        "Streaming answer to: hello.",
        " Second chunk.",
        " Third chunk.",
    ]
    # Each group is one node run; the proxy can tell groups apart by nodeId + runIndex.
    assert len({c["metadata"]["nodeId"] for c in chunks}) == 3
    assert {c["metadata"]["runIndex"] for c in chunks} == {0}


async def test_streamed_lines_arrive_one_by_one(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    # Read as the proxy does: line by line from the open response.
    lines: list[str] = []
    async with client.stream(
        "POST",
        n8n.webhook_url("slow"),
        json=harness.chat_body("take your time"),
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {harness.sign()}"},
    ) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line:
                lines.append(line)
    chunks = [json.loads(line) for line in lines]
    assert groups(chunks) == [
        ("Chunk 1", ["begin", "item", "end"]),
        ("Chunk 2", ["begin", "item", "end"]),
    ]
    assert item_text(chunks) == "First half, second half after a pause."


async def test_single_json_answer(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(client, n8n.webhook_url("json"), harness.chat_body("what is up"), harness.sign())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"output": "JSON answer to: what is up"}


async def test_json_answer_after_a_wait(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(client, n8n.webhook_url("slow-json"), harness.chat_body("later"), harness.sign())
    assert r.status_code == 200
    assert r.json() == {"output": "Late answer."}


async def test_failure_after_first_chunk_is_an_error_chunk(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    r = await post(client, n8n.webhook_url("error"), harness.chat_body("break"), harness.sign())
    assert r.status_code == 200  # the status was sent with the first chunk
    chunks = harness.parse_ndjson(r.text)
    assert [c["type"] for c in chunks] == ["begin", "item", "end", "error"]
    assert item_text(chunks) == "Partial answer before the failure."
    error = chunks[-1]
    assert error["type"] == "error"
    assert error["metadata"]["nodeName"] == "Fail"
    # n8n 1.123 sends no error text: the proxy has to word the message itself.
    assert "content" not in error


async def test_claims_reach_the_workflow(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    sid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    claims = {"sid": sid, "origin": "https://shop.example.com", "mid": mid}
    token = harness.sign(claims)
    body = {**harness.chat_body("show me", sid), "metadata": {"page": "/pricing"}}
    r = await post(client, n8n.webhook_url("claims"), body, token)
    assert r.status_code == 200
    echoed = json.loads(r.json()["output"])
    assert echoed["body"] == body
    got = echoed["claims"]
    assert {k: got[k] for k in claims} == claims
    assert got["exp"] - got["iat"] == 30
    assert len(got["jti"]) >= 16


async def test_load_previous_session_answer(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    sid = str(uuid.uuid4())
    body = harness.chat_body("", sid, action="loadPreviousSession")
    r = await post(client, n8n.webhook_url("history"), body, harness.sign({"sid": sid}))
    assert r.status_code == 200
    data = r.json()["data"]
    assert [m["id"] for m in data] == [
        ["langchain_core", "messages", "HumanMessage"],
        ["langchain_core", "messages", "AIMessage"],
    ]
    assert [m["kwargs"]["content"] for m in data] == [
        f"Hello from session {sid}",
        f"Stored answer for session {sid}",
    ]
    assert all(m["lc"] == 1 and m["type"] == "constructor" for m in data)


async def test_history_workflow_answers_messages_too(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    r = await post(client, n8n.webhook_url("history"), harness.chat_body("hi"), harness.sign())
    assert r.json() == {"output": "History workflow got: hi"}


# --- AI Agent and Chat Trigger -------------------------------------------------------------------


async def test_agent_streams_token_by_token(
    n8n: harness.N8n, fake_model: FakeModel, client: httpx.AsyncClient
) -> None:
    message = f"tell me about {uuid.uuid4().hex[:8]}"
    r = await post(client, n8n.webhook_url("agent"), harness.chat_body(message), harness.sign())
    assert r.status_code == 200
    chunks = harness.parse_ndjson(r.text)
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    assert [c["type"] for c in chunks] == ["begin"] + ["item"] * len(expected) + ["end"]
    assert [c["content"] for c in chunks if c["type"] == "item"] == expected  # one item per token
    assert {c["metadata"]["nodeName"] for c in chunks} == {"AI Agent"}
    sent = [q for q in fake_model.app.recorded() if answer_tokens(q["messages"]) == expected]
    assert len(sent) == 1
    assert sent[0]["stream"] is True
    assert sent[0]["model"] == "qp-fake-model"


async def test_chat_trigger_answers_and_remembers(
    n8n: harness.N8n, client: httpx.AsyncClient
) -> None:
    # The Chat Trigger takes no JWT: anyone who knows the URL can run it (why the proxy exists).
    sid = str(uuid.uuid4())
    url = n8n.chat_url("chat-trigger")
    first = await post(client, url, harness.chat_body("first question", sid))
    assert first.status_code == 200
    assert first.json() == {"output": "Fake model heard: first question (turn 1)"}
    second = await post(client, url, harness.chat_body("second question", sid))
    assert second.json() == {"output": "Fake model heard: second question (turn 2)"}

    history = await post(client, url, harness.chat_body("", sid, action="loadPreviousSession"))
    assert history.status_code == 200
    data = history.json()["data"]
    assert [(m["id"][-1], m["kwargs"]["content"]) for m in data] == [
        ("HumanMessage", "first question"),
        ("AIMessage", "Fake model heard: first question (turn 1)"),
        ("HumanMessage", "second question"),
        ("AIMessage", "Fake model heard: second question (turn 2)"),
    ]

    other = await post(client, url, harness.chat_body("", str(uuid.uuid4()), "loadPreviousSession"))
    assert other.json() == {"data": []}


async def test_chat_trigger_streaming(n8n: harness.N8n, client: httpx.AsyncClient) -> None:
    r = await post(client, n8n.chat_url("chat-stream"), harness.chat_body("stream it"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    chunks = harness.parse_ndjson(r.text)
    expected = split_tokens("Fake model heard: stream it (turn 1)")
    assert [c["type"] for c in chunks] == ["begin"] + ["item"] * len(expected) + ["end"]
    assert item_text(chunks) == "".join(expected)


async def test_agent_token_is_sent_before_the_model_finishes(
    n8n: harness.N8n, fake_model: FakeModel, client: httpx.AsyncClient
) -> None:
    gate = uuid.uuid4().hex[:8]
    message = f"hold on [gate:{gate}]"
    expected = split_tokens(f"Fake model heard: {message} (turn 1)")
    chunks: list[dict[str, Any]] = []
    with trio.fail_after(60):
        async with client.stream(
            "POST",
            n8n.webhook_url("agent"),
            json=harness.chat_body(message),
            headers={"Accept": ACCEPT, "Authorization": f"Bearer {harness.sign()}"},
        ) as r:
            async for line in r.aiter_lines():
                if not line:
                    continue
                chunks.append(json.loads(line))
                if chunks[-1]["type"] == "item" and len(chunks) == 2:
                    # The model is holding every later token back: this one came through live.
                    assert [c["type"] for c in chunks] == ["begin", "item"]
                    assert chunks[-1]["content"] == expected[0]
                    await fake_model.open_gate(gate)
    assert [c["content"] for c in chunks if c["type"] == "item"] == expected
    assert chunks[-1]["type"] == "end"
