"""What reaches n8n from a visitor, through a real Hypercorn: invisible characters removed,
metadata keys that are the chat's own fields refused before n8n is called (issue 13)."""

from __future__ import annotations

import json

from tests.integration.test_compat import post, send_message
from tests.support import FakeN8n, Proxy, sse_turn


async def test_bidi_and_zero_width_characters_never_reach_n8n(
    proxy: Proxy, fake_n8n: FakeN8n
) -> None:
    s = await proxy.session()
    events = await sse_turn(
        proxy, s, "refund \u202e0001\u202c eur\u200bos \U0001f469\u200d\U0001f4bb"
    )
    assert events[-1].event == "end"
    body = fake_n8n.requests[-1]["body"]
    assert body["chatInput"] == "refund 0001 euros \U0001f469\u200d\U0001f4bb"


async def test_metadata_cannot_carry_the_chat_fields(proxy: Proxy, fake_n8n: FakeN8n) -> None:
    s = await proxy.session()
    for meta in ({"sessionId": "another-visitor"}, {"action": "loadPreviousSession"}):
        r = await proxy.client.post(
            "/api/v1/chat/message",
            json={"message": "hi", "metadata": meta},
            headers=proxy.auth(s),
        )
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "bad_request"
        r = await post(proxy, send_message("widget-visitor-1", "hi", meta))
        assert r.status_code == 400
    assert fake_n8n.requests == []
    # the same names one level down are plain data, forwarded as sent
    await sse_turn(proxy, s, "hi")  # (a plain turn first: metadata is per message)
    r = await proxy.client.post(
        "/api/v1/chat/message",
        json={"message": "hi", "metadata": {"page": {"sessionId": "x"}}},
        headers=proxy.auth(s),
    )
    assert r.status_code == 200
    sent = fake_n8n.requests[-1]["body"]
    assert sent["sessionId"] == s["session_id"]
    assert json.dumps(sent["metadata"]) == json.dumps({"page": {"sessionId": "x"}})
