"""The upstream client never carries state from one visitor's answer to the next."""

from __future__ import annotations

from quartproxy.upstream import N8nClient
from tests.support import settings_for


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
