"""POST /api/v1/n8n/chat with the exact requests the official @n8n/chat 1.37 widget sends
(read from its bundle: src/api/message.ts and src/api/generic.ts)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import trio

from quartproxy.guard import widget_session_key
from quartproxy.store.base import HistoryEntry
from tests.support import ORIGIN, OTHER_ORIGIN, FakeN8n, Proxy, free_port

PATH = "/api/v1/n8n/chat"
WIDGET_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def widget_headers(*, streaming: bool = False, origin: str = ORIGIN) -> dict[str, str]:
    """What fetch() sends for the widget: JSON mode sets only Content-Type (the browser adds
    Accept: */*); streaming mode adds Accept: text/plain."""
    headers = {
        "Origin": origin,
        "Content-Type": "application/json",
        "Accept": "text/plain" if streaming else "*/*",
        "User-Agent": WIDGET_UA,
    }
    return headers


def send_message(session_id: str, text: str, metadata: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"action": "sendMessage", "sessionId": session_id, "chatInput": text}
    if metadata:
        body["metadata"] = metadata
    return json.dumps(body)


def load_previous(session_id: str) -> str:
    return json.dumps({"action": "loadPreviousSession", "sessionId": session_id})


async def post(proxy: Proxy, body: str, **kw: Any) -> httpx.Response:
    return await proxy.client.post(PATH, content=body, headers=widget_headers(**kw))


def widget_stream(text: str) -> list[dict[str, Any]]:
    """Parse a streamed body the way the widget does: split on newlines, skip blank lines,
    JSON.parse each (a non-JSON line would become an item)."""
    out = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"type": "item", "content": line})
    return out


def widget_text(body: Any) -> str:
    """The text the widget shows for a JSON answer: output ?? text ?? message ?? JSON dump."""
    value = body.get("output", body.get("text", body.get("message")))
    return value if isinstance(value, str) else json.dumps(body)


# -- sendMessage --------------------------------------------------------------------------------


async def test_send_message_json_mode_answers_output(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    sid = str(uuid.uuid4())
    r = await post(proxy, send_message(sid, "hello there", {"page": "/pricing"}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.json() == {"output": "echo: hello there"}
    sent = fake_n8n.requests[-1]["body"]
    assert sent == {
        "action": "sendMessage",
        "sessionId": widget_session_key(ORIGIN, sid),
        "chatInput": "hello there",
        "metadata": {"page": "/pricing"},
    }
    assert sent["sessionId"] != sid


async def test_send_message_json_mode_with_a_single_json_answer(proxy: Proxy) -> None:
    r = await post(proxy, send_message(str(uuid.uuid4()), "json:Grüß Gott"))
    assert r.json() == {"output": "Grüß Gott"}


async def test_streaming_mode_answers_ndjson_the_widget_renders(proxy: Proxy) -> None:
    r = await post(proxy, send_message(str(uuid.uuid4()), "stream me please"), streaming=True)
    assert r.status_code == 200
    chunks = widget_stream(r.text)
    assert [c["type"] for c in chunks] == ["begin", "item", "item", "item", "item", "end"]
    assert "".join(c["content"] for c in chunks if c["type"] == "item") == (
        "echo: stream me please"
    )
    # one bubble: every chunk belongs to the same node run (nodeId/runIndex) as the widget sees it
    runs = {
        (c["metadata"].get("nodeId") or "unknown", c["metadata"].get("runIndex")) for c in chunks
    }
    assert len(runs) == 1


async def test_streaming_answer_arrives_as_it_is_produced(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    sid = str(uuid.uuid4())
    async with proxy.client.stream(
        "POST", PATH, content=send_message(sid, "gate:live"), headers=widget_headers(streaming=True)
    ) as r:
        seen = ""
        lines = r.aiter_text()
        async for text in lines:
            seen += text
            if "before" in seen:
                break
        fake_n8n.gates["live"].set()  # n8n only finishes after the client saw the first part
        seen += "".join([t async for t in lines])
    chunks = widget_stream(seen)
    assert "".join(c.get("content", "") for c in chunks if c["type"] == "item") == "before after"
    assert chunks[-1]["type"] == "end"


async def test_upstream_failure_json_mode_is_an_error_the_widget_can_show(proxy: Proxy) -> None:
    r = await post(proxy, send_message(str(uuid.uuid4()), "status:500"))
    assert r.status_code == 502
    body = r.json()
    assert body["error"]["code"] == "upstream_error"
    assert widget_text(body) == body["error"]["message"]
    assert "webhook" not in r.text.lower()


async def test_upstream_unavailable_json_mode(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        r = await post(p, send_message(str(uuid.uuid4()), "hi"))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "upstream_unavailable"
        assert "127.0.0.1" not in r.text


async def test_upstream_failure_mid_stream_is_an_error_chunk(proxy: Proxy) -> None:
    r = await post(proxy, send_message(str(uuid.uuid4()), "error-mid"), streaming=True)
    assert r.status_code == 200
    chunks = widget_stream(r.text)
    assert [c["type"] for c in chunks] == ["begin", "item", "error"]
    assert chunks[1]["content"] == "partial"
    assert chunks[-1]["content"]  # the widget shows "Error: <content>"
    assert "boom" not in r.text


# -- loadPreviousSession ------------------------------------------------------------------------


async def test_load_previous_session_returns_langchain_messages(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    sid = str(uuid.uuid4())
    fake_n8n.memory[widget_session_key(ORIGIN, sid)] = [("user", "hi"), ("assistant", "hello!")]
    r = await post(proxy, load_previous(sid))
    assert r.status_code == 200
    data = r.json()["data"]
    # read exactly as the widget reads it: kwargs.content, id includes "HumanMessage"
    shown = [("user" if "HumanMessage" in m["id"] else "bot", m["kwargs"]["content"]) for m in data]
    assert shown == [("user", "hi"), ("bot", "hello!")]
    assert data[0] == {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain_core", "messages", "HumanMessage"],
        "kwargs": {"content": "hi", "additional_kwargs": {}, "response_metadata": {}},
    }
    assert fake_n8n.requests[-1]["body"] == {
        "action": "loadPreviousSession",
        "sessionId": widget_session_key(ORIGIN, sid),
    }


async def test_load_previous_session_of_a_new_visitor_is_empty(proxy: Proxy) -> None:
    r = await post(proxy, load_previous(str(uuid.uuid4())))
    assert r.status_code == 200
    assert r.json() == {"data": []}


async def test_load_previous_session_when_n8n_is_down_is_empty(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        r = await post(p, load_previous(str(uuid.uuid4())))
        assert r.status_code == 200
        assert r.json() == {"data": []}


async def test_history_from_the_store_when_it_keeps_history(proxy: Proxy) -> None:
    """In the modes with a history store, the widget's history comes from the store (keyed
    by the derived key), not from n8n."""
    store = proxy.services.store
    store.keeps_history = True  # the memory store can keep history; sqlite/redis do
    sid = str(uuid.uuid4())
    assert (await post(proxy, send_message(sid, "remember me"))).status_code == 200
    r = await post(proxy, load_previous(sid))
    contents = [(m["id"][-1], m["kwargs"]["content"]) for m in r.json()["data"]]
    assert contents == [("HumanMessage", "remember me"), ("AIMessage", "echo: remember me")]
    other = await post(proxy, load_previous(str(uuid.uuid4())))
    assert other.json() == {"data": []}
    await store.append_history(sid, [HistoryEntry("m", "user", "raw id must not be readable", 0.0)])
    again = await post(proxy, load_previous(sid))
    assert "raw id" not in again.text


# -- the untrusted sessionId ---------------------------------------------------------------------


async def test_a_widget_id_cannot_address_a_proxy_session(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    fake_n8n.memory[s["session_id"]] = [("user", "my secret question")]
    r = await post(proxy, load_previous(s["session_id"]))
    assert r.json() == {"data": []}
    assert fake_n8n.requests[-1]["body"]["sessionId"] != s["session_id"]
    # and a widget using a proxy session's id does not make that session busy or limited
    r = await post(proxy, send_message(s["session_id"], "hi"))
    assert r.status_code == 200
    assert fake_n8n.requests[-1]["body"]["sessionId"] == widget_session_key(ORIGIN, s["session_id"])


async def test_the_same_widget_id_on_two_sites_is_two_conversations(
    make_proxy,  # type: ignore[no-untyped-def]
    fake_n8n: FakeN8n,
) -> None:
    async with make_proxy(ALLOWED_ORIGINS=f"{ORIGIN},https://blog.example.org") as p:
        sid = "shared-id"
        await post(p, send_message(sid, "from the shop"))
        await post(p, send_message(sid, "from the blog"), origin="https://blog.example.org")
        a, b = (req["body"]["sessionId"] for req in fake_n8n.requests[-2:])
        assert a != b


@pytest.mark.parametrize(
    "session_id", ["", "   ", "x" * 129, "bad\nid", "tab\tid", 42, None, ["a"], {"a": 1}]
)
async def test_malformed_session_ids_are_refused(
    proxy: Proxy, fake_n8n: FakeN8n, session_id: Any
) -> None:
    body = json.dumps({"action": "sendMessage", "sessionId": session_id, "chatInput": "hi"})
    r = await post(proxy, body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert "sessionId" in r.json()["message"]
    assert fake_n8n.requests == []


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"sessionId": "abc", "chatInput": "hi"}),
        json.dumps({"action": "deleteEverything", "sessionId": "abc"}),
        json.dumps({"action": "sendMessage", "sessionId": "abc"}),
        json.dumps({"action": "sendMessage", "sessionId": "abc", "chatInput": "  "}),
        json.dumps({"action": "sendMessage", "sessionId": "abc", "chatInput": "x" * 4001}),
        json.dumps({"action": "sendMessage", "sessionId": "abc", "chatInput": "a", "metadata": 1}),
    ],
)
async def test_malformed_bodies_are_refused(proxy: Proxy, fake_n8n: FakeN8n, body: str) -> None:
    r = await post(proxy, body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert fake_n8n.requests == []


# -- files, origins, limits, busy ---------------------------------------------------------------


async def test_files_are_refused_with_a_clear_error(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    """The widget's multipart request (FormData: action, sessionId, chatInput, metadata as a
    JSON string, files)."""
    for accept, size in (("*/*", 5), ("text/plain", 5), ("*/*", 300_000)):
        r = await proxy.client.post(
            PATH,
            data={
                "action": "sendMessage",
                "sessionId": str(uuid.uuid4()),
                "chatInput": "see attached",
                "metadata": json.dumps({"page": "/"}),
            },
            files=[("files", ("notes.txt", b"x" * size, "text/plain"))],
            headers={"Origin": ORIGIN, "Accept": accept},
        )
        assert r.status_code == 415
        body = r.json()
        assert body["error"]["code"] == "unsupported_media_type"
        assert "upload" in widget_text(body).lower()
    assert fake_n8n.requests == []


async def test_disallowed_or_missing_origin_is_refused(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    r = await post(proxy, send_message("abc", "hi"), origin=OTHER_ORIGIN)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    r = await proxy.client.post(PATH, content=send_message("abc", "hi"))
    assert r.status_code == 403
    assert fake_n8n.requests == []


async def test_cors_preflight_for_the_widget(proxy: Proxy) -> None:
    r = await proxy.client.options(
        PATH,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "content-type" in r.headers["access-control-allow-headers"].lower()


async def test_session_tier_is_keyed_by_the_widget_session(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION="2/minute") as p:
        sid = str(uuid.uuid4())
        for text in ("one", "two"):
            assert (await post(p, send_message(sid, text))).status_code == 200
        r = await post(p, send_message(sid, "three"))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-ratelimit-tier"] == "session"
        assert "wait" in widget_text(r.json())
        # another visitor of the same site is not affected
        assert (await post(p, send_message(str(uuid.uuid4()), "hi"))).status_code == 200


async def test_ip_tier_holds_whatever_session_ids_are_invented(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_IP="3/minute") as p:
        codes = [
            (await post(p, send_message(str(uuid.uuid4()), "hi"))).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        # history reads have a budget of their own: opening the chat never eats messages
        loads = [(await post(p, load_previous(str(uuid.uuid4())))).status_code for _ in range(4)]
        assert loads == [200, 200, 200, 429]


async def test_bot_and_spam_checks_apply(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(SPAM_BLOCK_PATTERNS="casino") as p:
        r = await p.client.post(
            PATH,
            content=send_message(str(uuid.uuid4()), "hi"),
            headers={
                "Origin": ORIGIN,
                "Content-Type": "application/json",
                "User-Agent": "curl/8.5",
            },
        )
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "blocked"
        r = await post(p, send_message(str(uuid.uuid4()), "win at the casino"))
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "blocked"
        assert widget_text(r.json()) == r.json()["error"]["message"]
    assert fake_n8n.requests == []


async def test_busy_while_the_same_visitor_waits(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    sid = str(uuid.uuid4())
    async with trio.open_nursery() as nursery:
        first: list[httpx.Response] = []

        async def ask() -> None:
            first.append(await post(proxy, send_message(sid, "gate:wait")))

        nursery.start_soon(ask)
        with trio.fail_after(10):
            await fake_n8n.received.wait()
        r = await post(proxy, send_message(sid, "again"))
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "busy"
        fake_n8n.gates["wait"].set()
    assert first[0].json() == {"output": "before after"}


async def test_client_leaving_in_json_mode_keeps_the_answer(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    sid = str(uuid.uuid4())
    with trio.move_on_after(30) as waiting:

        async def leave_early() -> None:
            await fake_n8n.received.wait()
            waiting.cancel()  # the visitor closes the tab while n8n is still answering

        async with trio.open_nursery() as nursery:
            nursery.start_soon(leave_early)
            await post(proxy, send_message(sid, "gate:gone"))
    assert waiting.cancelled_caught
    (turn,) = proxy.services.turns.live.values()
    fake_n8n.gates["gone"].set()
    with trio.fail_after(10):
        while not turn.done:
            await turn.next_batch(len(turn.events) - 1)
    assert turn.events[-1].text == "before after"
    stored = await proxy.services.store.buffer_read(turn.message_id, -1, proxy.services.clock())
    assert stored is not None
    assert stored.events[-1][1] == {
        "type": "end",
        "message_id": turn.message_id,
        "text": "before after",
    }
