"""Resume (`GET /api/v1/chat/message/{id}`) at and past the end of a turn, and with malformed
event ids, through a real Hypercorn. Before issue 13 a resume past the last event of a turn
was a stream that never ended, and `<id>:²` was an HTTP 500.

Resume is SSE only (NDJSON and the WebSocket have no resume in the contract; their followers
read the same LiveTurn, whose past-the-end rule is unit-tested in test_resume_point.py)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from tests.integration.test_store_outage import production_proxy
from tests.support import FakeN8n, Proxy, parse_sse, running_proxy, settings_for, sse_turn

BOUND = 10  # seconds; a hang fails the test instead of holding the suite


async def resume(  # type: ignore[no-untyped-def]
    proxy: Proxy, session: dict[str, str], mid: str, last: str, *, query: bool = False
):
    """`last` as the query parameter (percent-encoded UTF-8), or as the Last-Event-ID header
    (raw bytes: latin-1 where it can be, which servers decode back to the same characters, so
    `²` arrives as `²`; UTF-8 bytes otherwise)."""
    headers: dict[str, str | bytes] = dict(proxy.auth(session))
    params = {}
    if query:
        params["last_event_id"] = last
    else:
        try:
            headers["Last-Event-ID"] = last.encode("latin-1")
        except UnicodeEncodeError:
            headers["Last-Event-ID"] = last.encode("utf-8")
    with trio.fail_after(BOUND):
        return await proxy.client.get(f"/api/v1/chat/message/{mid}", headers=headers, params=params)


@pytest.mark.parametrize("query", [False, True], ids=["header", "query"])
async def test_resume_past_the_end_of_a_finished_turn_sends_its_end_at_once(
    proxy: Proxy, query: bool
) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "one two")
    mid = events[0].data["message_id"]
    final = events[-1]
    for k in (len(events) - 1, len(events), 999, 999_999_999):
        r = await resume(proxy, s, mid, f"{mid}:{k}", query=query)
        assert r.status_code == 200
        replay = parse_sse(r.text)
        assert [(e.id, e.event, e.data) for e in replay] == [(final.id, "end", final.data)]


async def test_resume_past_the_end_of_a_running_turn_continues_from_the_end(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    s = await proxy.session()
    headers = proxy.auth(s)
    async with proxy.client.stream(
        "POST", "/api/v1/chat/message", json={"message": "gate:late"}, headers=headers
    ) as first:
        seen = ""
        chunks = first.aiter_text()
        async for text in chunks:
            seen += text
            if "before" in seen:
                break
        mid = parse_sse(seen)[0].data["message_id"]
        with trio.fail_after(BOUND):
            async with proxy.client.stream(
                "GET",
                f"/api/v1/chat/message/{mid}",
                headers={**headers, "Last-Event-ID": f"{mid}:999"},
            ) as r:
                assert r.status_code == 200
                fake_n8n.gates["late"].set()
                body = "".join([t async for t in r.aiter_text()])  # ends: the stream closes
    replay = parse_sse(body)
    assert [e.event for e in replay] == ["delta", "end"]
    assert replay[0].data["text"] == "after"
    assert replay[-1].data["text"] == "before after"


async def test_resume_at_the_final_event_of_a_live_turn_is_answered_at_once(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    """The turn has published its end but its task has not finished yet: the LiveTurn
    itself must answer, not only the buffer."""
    s = await proxy.session()
    events = await sse_turn(proxy, s, "json:hello")
    mid = events[0].data["message_id"]
    live = proxy.services.turns.live
    # whether or not the runner has dropped it yet, the answer is the end
    r = await resume(proxy, s, mid, f"{mid}:999")
    assert [e.event for e in parse_sse(r.text)] == ["end"]
    assert mid not in live or live[mid].done


@pytest.mark.parametrize(
    "seq", ["²", "\u0661", "\u0663", "\uff11", "+1", " 1", "1_0", "-1", "1e3", "9" * 10, ""]
)
@pytest.mark.parametrize("query", [False, True], ids=["header", "query"])
async def test_malformed_event_ids_are_a_400_not_a_500(proxy: Proxy, seq: str, query: bool) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "hi")
    mid = events[0].data["message_id"]
    r = await resume(proxy, s, mid, f"{mid}:{seq}", query=query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("mode", ["sqlite", pytest.param("production", marks=pytest.mark.redis)])
async def test_resume_past_the_end_from_a_durable_store(
    fake_n8n: FakeN8n, tmp_path: Path, mode: str
) -> None:
    """The same rule when the finished turn is read back from SQLite or Redis."""
    async with AsyncExitStack() as stack:
        if mode == "production":
            proxy, _ = await stack.enter_async_context(production_proxy(fake_n8n, tmp_path))
        else:
            settings = settings_for(
                fake_n8n.url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "q.db")
            )
            proxy = await stack.enter_async_context(running_proxy(settings))
        s = await proxy.session()
        events = await sse_turn(proxy, s, "one two")
        mid = events[0].data["message_id"]
        with trio.fail_after(BOUND):
            await proxy.services.turns.wait_idle()  # read back from the store, not live
        r = await resume(proxy, s, mid, f"{mid}:999")
        assert [(e.id, e.event) for e in parse_sse(r.text)] == [(events[-1].id, "end")]
