"""The WebSocket channel's admission on bad input (issue 13, finding 6): whatever a first frame
holds, the socket closes with 4401 (never 1011) and the log gets one warning line, without a
traceback and without the frame; and handshakes spend the caller's per-IP read budget."""

from __future__ import annotations

import json
import logging

import pytest
import trio
from trio_websocket import ConnectionRejected

from tests.integration.test_ws import closed_with, socket
from tests.support import FINGERPRINT, ORIGIN, Proxy


def auth_frames(token: str) -> dict[str, str]:
    """First frames as JSON text; `\\ud800` escapes become lone surrogates once parsed."""
    frames = {
        "surrogate token": {"type": "auth", "token": "\ud800"},
        "surrogate in a token": {"type": "auth", "token": token[:20] + "\udfff" + token[20:]},
        "surrogate fingerprint": {"type": "auth", "token": token, "fingerprint": "\ud800x"},
        "non-ascii token": {"type": "auth", "token": "é" * 30},
        "fullwidth token": {"type": "auth", "token": "\uff41.\uff42.\uff43"},
        "nul token": {"type": "auth", "token": "a.b.c\x00"},
        "long token": {"type": "auth", "token": "a" * 5000},
        "huge fingerprint": {"type": "auth", "token": token, "fingerprint": "f" * 60_000},
        "other browser": {"type": "auth", "token": token, "fingerprint": FINGERPRINT + "x"},
        "surrogate type": {"type": "auth\ud800", "token": token},
        "not auth": {"type": "message", "message": "hi"},
    }
    return {name: json.dumps(frame) for name, frame in frames.items()}  # ASCII, \\u escapes


async def test_any_bad_first_frame_closes_with_4401_and_one_warning(
    make_proxy,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with make_proxy(RATE_LIMIT_SESSION_CREATE="100/minute") as proxy:  # many sockets
        await _bad_first_frames(proxy, caplog)


async def _bad_first_frames(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    s = await proxy.session()
    caplog.set_level(logging.INFO)
    for name, frame in auth_frames(s["token"]).items():
        caplog.clear()
        async with socket(proxy) as ws:
            await ws.send_message(frame)
            code, frames = await closed_with(ws)
        assert code == 4401, name
        assert [f["type"] for f in frames] == ["error"], name
        assert frames[0]["code"] in ("unauthorized", "session_mismatch", "bad_request"), name
        ws_records = [r for r in caplog.records if r.name.startswith("quartproxy")]
        assert [r.levelno for r in ws_records if r.levelno >= logging.WARNING] == [
            logging.WARNING
        ], (name, [r.getMessage() for r in ws_records])
        assert all(r.exc_info is None for r in caplog.records), name
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert s["token"] not in text and "ud800" not in text and "\ud800" not in text, name


async def test_a_good_first_frame_still_opens_the_socket(proxy: Proxy) -> None:
    """The control for the test above (same socket helper, same proxy)."""
    s = await proxy.session()
    async with socket(proxy) as ws:
        await ws.send_message(
            json.dumps({"type": "auth", "token": s["token"], "fingerprint": FINGERPRINT})
        )
        with trio.fail_after(10):
            assert json.loads(await ws.get_message())["type"] == "ready"


async def test_handshakes_spend_a_per_ip_budget_of_their_own(
    make_proxy,  # type: ignore[no-untyped-def]
) -> None:
    """Unauthenticated sockets cannot be opened without bound: with RATE_LIMIT_SESSION_CREATE
    at 3/minute the fourth handshake of a minute is refused with 429 before the upgrade. The
    bucket is the handshakes' own: the session creates of that IP are still all there."""
    async with make_proxy(RATE_LIMIT_SESSION_CREATE="3/minute") as p:
        for _ in range(3):
            async with socket(p) as ws:
                await ws.send_message(json.dumps({"type": "ping"}))
                code, _frames = await closed_with(ws)
                assert code == 4401
        with pytest.raises(ConnectionRejected) as refused:
            async with socket(p):
                pass
        assert refused.value.status_code == 429
        headers = dict(refused.value.headers or [])
        assert headers[b"retry-after"]
        assert headers[b"x-ratelimit-tier"] == b"ws"
        body = json.loads(refused.value.body or b"{}")
        assert body["error"]["code"] == "rate_limited"
        for _ in range(3):  # the creates' own budget is untouched
            await p.session()


async def test_the_same_inputs_over_http_get_4xx_not_500(proxy: Proxy) -> None:
    """The HTTP side of the class: a fingerprint with a lone surrogate in a JSON body, and a
    Latin-1 Origin that a wildcard allows (https://*.example.org), through create and chat."""
    r = await proxy.client.post(
        "/api/v1/session/create",
        content=b'{"fingerprint": "\\ud800x"}',
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
    )
    assert r.status_code in (201, 400), r.text
    origin = "https://\xfc.example.org".encode("latin-1")
    r = await proxy.client.post("/api/v1/session/create", headers={"Origin": origin})
    assert r.status_code in (201, 403), r.text
    if r.status_code == 201:
        headers = {"Origin": origin, "Authorization": f"Bearer {r.json()['token']}"}
        r = await proxy.client.post("/api/v1/chat/message", json={"message": "hi"}, headers=headers)
        assert r.status_code < 500, r.text
