"""The upstream pool is sharded so httpcore's per-request bookkeeping stays small."""

from __future__ import annotations

from quartproxy.upstream import N8nClient, pool_shards
from tests.support import settings_for


def test_shards_are_bounded_and_never_zero() -> None:
    assert pool_shards(1) == 1
    assert pool_shards(7) == 1
    assert pool_shards(100) == 12
    assert pool_shards(1000) == 32
    assert pool_shards(10**6) == 32


async def test_requests_rotate_over_shards_and_capacity_is_kept() -> None:
    settings = settings_for("http://127.0.0.1:9/webhook", N8N_MAX_CONNECTIONS="100")
    client = N8nClient(settings)
    try:
        assert len(client.clients) == 12
        picked = [client._pick() for _ in range(24)]
        assert {id(c) for c in picked} == {id(c) for c in client.clients}
        per_shard = client.clients[0]._transport._pool._max_connections  # type: ignore[attr-defined]
        assert per_shard * len(client.clients) >= 100
    finally:
        await client.aclose()


async def test_a_cookie_set_on_one_answer_is_not_sent_with_the_next() -> None:
    """The upstream client is shared by every visitor: nothing n8n sets may travel on."""
    import httpx

    from quartproxy.core.events import Delta, TurnEvent

    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Cookie"))
        body = b'{"type":"begin"}\n{"type":"item","content":"hi"}\n{"type":"end"}\n'
        return httpx.Response(200, content=body, headers={"Set-Cookie": "n8n-auth=visitor-a"})

    settings = settings_for("http://127.0.0.1:9/webhook")
    client = N8nClient(settings, httpx.MockTransport(answer))
    try:
        for sid in ("a", "b"):
            got: list[TurnEvent] = []

            async def keep(events: list[TurnEvent], got: list[TurnEvent] = got) -> None:
                got.extend(events)

            await client.stream_answer(
                keep,
                session_id=sid,
                origin="https://site.example",
                message_id=f"m-{sid}",
                message="hello",
                metadata={},
                request_id="req-00000001",
            )
            assert got == [Delta("hi")]
    finally:
        await client.aclose()
    assert seen == [None, None]
