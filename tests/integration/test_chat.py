"""Chat turns through a real Hypercorn, against the fake n8n."""

from __future__ import annotations

import gc
import json
import time

import jwt
import trio

from tests.support import (
    ORIGIN,
    SESSION_SECRET,
    FakeN8n,
    Proxy,
    free_port,
    parse_sse,
    sse_turn,
)


async def test_sse_turn_streams_deltas_and_ends_with_whole_text(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "hello world")
    assert [e.event for e in events] == ["start", "delta", "delta", "delta", "end"]
    mid = events[0].data["message_id"]
    assert events[0].data["session_id"] == s["session_id"]
    assert [e.id for e in events] == [f"{mid}:{i}" for i in range(5)]
    assert "".join(e.data["text"] for e in events[1:-1]) == "echo: hello world"
    assert events[-1].data == {"message_id": mid, "text": "echo: hello world"}


async def test_ndjson_turn_uses_n8n_chunk_format(proxy: Proxy) -> None:
    s = await proxy.session()
    r = await proxy.client.post(
        "/api/v1/chat/stream", json={"message": "hi"}, headers=proxy.auth(s)
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [c["type"] for c in lines] == ["begin", "item", "item", "end"]
    assert lines[0]["metadata"]["session_id"] == s["session_id"]
    assert "".join(c["content"] for c in lines if c["type"] == "item") == "echo: hi"


async def test_single_json_answer_becomes_one_delta(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "json:Bonjour à tous")
    assert [e.event for e in events] == ["start", "delta", "end"]
    assert events[1].data["text"] == "Bonjour à tous"
    events = await sse_turn(proxy, s, "text:via text key")
    assert events[-1].data["text"] == "via text key"


async def test_two_node_groups_form_one_answer(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "groups")
    assert events[-1].event == "end"
    assert events[-1].data["text"] == "one two"


async def test_garbage_lines_are_skipped(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "garbage")
    assert events[-1].data["text"] == "ok"
    assert "html" not in json.dumps([e.data for e in events])


async def test_error_chunk_mid_stream_keeps_partial_text_then_error(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "error-mid")
    assert [e.event for e in events] == ["start", "delta", "error"]
    assert events[1].data["text"] == "partial"
    assert events[-1].data["code"] == "upstream_error"
    assert "boom" not in events[-1].data["message"]


async def test_stream_without_end_is_an_error(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "cut")
    assert events[-1].event == "error"
    assert events[-1].data["code"] == "upstream_error"


async def test_empty_streaming_answer_is_an_error(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "empty")
    assert events[-1].event == "error"
    assert events[-1].data["code"] == "upstream_error"


async def test_upstream_http_errors_map_to_upstream_error(proxy: Proxy) -> None:
    s = await proxy.session()
    for status in (401, 403, 404, 500):
        events = await sse_turn(proxy, s, f"status:{status}")
        assert events[-1].event == "error", status
        assert events[-1].data["code"] == "upstream_error"
        assert "webhook" not in events[-1].data["message"].lower()


async def test_wrong_upstream_secret_is_refused_by_n8n(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    fake_n8n.secret = "another-secret-another-secret-another-secret"
    s = await proxy.session()
    events = await sse_turn(proxy, s, "hello")
    assert events[-1].data["code"] == "upstream_error"
    assert fake_n8n.requests == []


async def test_refused_connection_is_upstream_unavailable(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        s = await p.session()
        events = await sse_turn(p, s, "hello")
        assert events[-1].event == "error"
        assert events[-1].data["code"] == "upstream_unavailable"
        assert "127.0.0.1" not in json.dumps(events[-1].data)


async def test_no_first_byte_in_time_is_upstream_timeout(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(N8N_TIMEOUT_SECONDS="0.3") as p:
        s = await p.session()
        events = await sse_turn(p, s, "stall")
        assert events[-1].data["code"] == "upstream_timeout"
        events = await sse_turn(p, s, "stall-body")
        assert events[-1].data["code"] == "upstream_timeout"
        fake_n8n.gates["stall"].set()


async def test_upstream_jwt_claims(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "claims")
    mid = events[0].data["message_id"]
    await sse_turn(proxy, s, "claims")
    first, second = (r for r in fake_n8n.requests)
    token = first["headers"]["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 30
    assert claims["sid"] == s["session_id"]
    assert claims["origin"] == ORIGIN
    assert claims["mid"] == mid
    assert first["claims"]["jti"] != second["claims"]["jti"]
    assert first["body"] == {
        "action": "sendMessage",
        "sessionId": s["session_id"],
        "chatInput": "claims",
        "metadata": {},
    }
    assert first["headers"]["x-request-id"]
    assert abs(claims["iat"] - time.time()) < 60


async def test_client_disconnect_keeps_the_answer(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    """The client leaves after the first delta; n8n finishes later; the whole answer is kept
    and can be resumed."""
    s = await proxy.session()
    headers = proxy.auth(s)
    async with proxy.client.stream(
        "POST", "/api/v1/chat/message", json={"message": "gate:g1"}, headers=headers
    ) as r:
        seen = ""
        async for text in r.aiter_text():
            seen += text
            if "before" in seen:
                break
    # the client is gone; now let n8n finish its answer
    fake_n8n.gates["g1"].set()
    mid = parse_sse(seen)[0].data["message_id"]
    with trio.fail_after(10):
        await fake_n8n.done["gate:g1"].wait()
    r = await proxy.client.get(
        f"/api/v1/chat/message/{mid}", headers={**headers, "Last-Event-ID": f"{mid}:0"}
    )
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert [e.event for e in events] == ["delta", "delta", "end"]
    assert events[-1].data["text"] == "before after"


async def test_resume_replays_after_last_event_id(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "one two three")
    mid = events[0].data["message_id"]
    r = await proxy.client.get(
        f"/api/v1/chat/message/{mid}", headers={**proxy.auth(s), "Last-Event-ID": f"{mid}:2"}
    )
    replay = parse_sse(r.text)
    assert [e.id for e in replay] == [f"{mid}:{i}" for i in range(3, len(events))]
    assert replay[-1].event == "end"


async def test_resume_of_unknown_or_foreign_answer_is_404(proxy: Proxy) -> None:
    a, b = await proxy.session(), await proxy.session()
    events = await sse_turn(proxy, a, "mine")
    mid = events[0].data["message_id"]
    r = await proxy.client.get(f"/api/v1/chat/message/{mid}", headers=proxy.auth(b))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await proxy.client.get(
        "/api/v1/chat/message/00000000-0000-4000-8000-000000000000", headers=proxy.auth(a)
    )
    assert r.status_code == 404


async def test_busy_while_an_answer_is_in_flight(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    headers = proxy.auth(s)
    async with proxy.client.stream(
        "POST", "/api/v1/chat/message", json={"message": "gate:busy"}, headers=headers
    ) as first:
        chunks = first.aiter_text()
        async for text in chunks:
            if "before" in text:
                break
        r = await proxy.client.post("/api/v1/chat/message", json={"message": "x"}, headers=headers)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "busy"
        fake_n8n.gates["busy"].set()
        rest = "".join([t async for t in chunks])
    assert "event: end" in rest
    events = await sse_turn(proxy, s, "again")
    assert events[-1].event == "end"


async def test_history_in_stateless_mode_comes_from_n8n(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    fake_n8n.memory[s["session_id"]] = [("user", "hi"), ("assistant", "hello!")]
    r = await proxy.client.get(f"/api/v1/chat/history/{s['session_id']}", headers=proxy.auth(s))
    assert r.status_code == 200
    body = r.json()
    assert body["session_id"] == s["session_id"]
    assert [(m["role"], m["text"]) for m in body["messages"]] == [
        ("user", "hi"),
        ("assistant", "hello!"),
    ]
    assert fake_n8n.requests[-1]["body"]["action"] == "loadPreviousSession"


async def test_history_when_n8n_fails_is_empty(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        s = await p.session()
        r = await p.client.get(f"/api/v1/chat/history/{s['session_id']}", headers=p.auth(s))
        assert r.status_code == 200
        assert r.json()["messages"] == []


async def test_history_of_another_session_is_forbidden(proxy: Proxy) -> None:
    a, b = await proxy.session(), await proxy.session()
    r = await proxy.client.get(f"/api/v1/chat/history/{b['session_id']}", headers=proxy.auth(a))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


async def test_heartbeat_comments_while_waiting(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(HEARTBEAT_SECONDS="0.05") as p:
        s = await p.session()
        async with p.client.stream(
            "POST", "/api/v1/chat/message", json={"message": "gate:hb"}, headers=p.auth(s)
        ) as r:
            body = ""
            async for text in r.aiter_text():
                body += text
                if body.count(": ping") >= 2:
                    fake_n8n.gates["hb"].set()
            assert "event: end" in body


async def test_upstream_is_asked_for_uncompressed_bytes(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    # Real n8n gzips a streamed answer when the client accepts gzip (found by tests/e2e).
    s = await proxy.session()
    await sse_turn(proxy, s, "hello")
    assert fake_n8n.requests[-1]["headers"]["accept-encoding"] == "identity"


async def test_compressed_upstream_answer_is_decoded(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "gzip:squeezed answer")
    assert [e.event for e in events] == ["start", "delta", "end"]
    assert events[-1].data["text"] == "squeezed answer"


async def test_the_startup_heap_is_kept_out_of_the_garbage_collectors_passes(proxy: Proxy) -> None:
    """A full collection stalls every stream of the worker for as long as it traverses; what
    start-up built lives as long as the process, so it is frozen (factory.freeze_startup_heap):
    the app is no longer among the objects a collection traverses."""
    assert not any(obj is proxy.app for obj in gc.get_objects())
    s = await proxy.session()
    assert [e.event for e in await sse_turn(proxy, s, "hi")][-1] == "end"
