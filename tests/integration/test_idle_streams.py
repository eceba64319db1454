"""Streams whose answer has not come yet (n8n sent its headers, then nothing): a client leaving
one frees its stream at once and leaves the answer running; many can be open at once.
(quartproxy/overrides/quart_trio_connection.py sends the response from the request's own
task; these check that a disconnect still reaches it.)"""

from __future__ import annotations

import httpx
import trio
import trio.testing

from tests.ops_support import scrape, value
from tests.support import BROWSER_HEADERS, FakeN8n, Proxy, parse_sse


async def open_pending(proxy: Proxy, client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """POST a message n8n will not answer; return the SSE text up to the `start` event."""
    seen = ""
    async with client.stream(
        "POST", "/api/v1/chat/message", json={"message": "stall-body"}, headers=headers
    ) as r:
        assert r.status_code == 200
        async for text in r.aiter_text():
            seen += text
            if "event: start" in seen:
                return seen
    raise AssertionError(f"stream ended before its start event: {seen!r}")


async def test_leaving_a_pending_answer_ends_its_stream_not_the_answer(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    s = await proxy.session()
    start = ""
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30, headers=BROWSER_HEADERS) as leaver:
        with trio.fail_after(10):
            async with leaver.stream(
                "POST",
                "/api/v1/chat/message",
                json={"message": "stall-body"},
                headers=proxy.auth(s),
            ) as r:
                assert r.status_code == 200
                chunks = r.aiter_text()  # kept: a dropped iterator would close the connection
                async for text in chunks:
                    start += text
                    if "event: start" in start:
                        break
                during = await scrape(proxy.client)
    # the client's connection is closed now; let the proxy notice
    await trio.testing.wait_all_tasks_blocked()
    after = await scrape(proxy.client)
    assert value(during, "quartproxy_open_streams", channel="sse") == 1
    assert value(after, "quartproxy_open_streams", channel="sse") == 0
    # the answer itself still waits for n8n (the session is still busy with it)
    assert value(after, "quartproxy_chat_turns_in_flight") == 1
    r = await proxy.client.post(
        "/api/v1/chat/message", json={"message": "again"}, headers=proxy.auth(s)
    )
    assert r.status_code == 409
    mid = parse_sse(start)[0].data["message_id"]
    fake_n8n.gates["stall"].set()
    r = await proxy.client.get(
        f"/api/v1/chat/message/{mid}", headers={**proxy.auth(s), "Last-Event-ID": f"{mid}:0"}
    )
    assert r.status_code == 200
    assert parse_sse(r.text)[-1].event == "error"  # n8n ended its body without an answer


async def test_many_pending_answers_at_once(make_proxy, fake_n8n: FakeN8n) -> None:  # type: ignore[no-untyped-def]
    n = 40
    starts: list[str] = []
    many = "1000/minute"
    async with make_proxy(
        RATE_LIMIT_IP=many, RATE_LIMIT_ORIGIN=many, RATE_LIMIT_SESSION_CREATE=many
    ) as proxy:

        async def one() -> None:
            s = await proxy.session()
            async with httpx.AsyncClient(
                base_url=proxy.url, timeout=30, headers=BROWSER_HEADERS
            ) as c:
                starts.append(await open_pending(proxy, c, proxy.auth(s)))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(one)
        await check_all_pending_then_answered(proxy, fake_n8n, starts, n)


async def check_all_pending_then_answered(
    proxy: Proxy, fake_n8n: FakeN8n, starts: list[str], n: int
) -> None:
    assert len(starts) == n
    assert len({parse_sse(t)[0].data["message_id"] for t in starts}) == n
    await trio.testing.wait_all_tasks_blocked()
    m = await scrape(proxy.client)
    assert value(m, "quartproxy_open_streams", channel="sse") == 0
    assert value(m, "quartproxy_chat_turns_in_flight") == n
    fake_n8n.gates["stall"].set()
    await trio.testing.wait_all_tasks_blocked()
    m = await scrape(proxy.client)
    assert value(m, "quartproxy_chat_turns_in_flight") == 0
