"""Sessions as the contract states them, through a real Hypercorn."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt

from tests.support import FINGERPRINT, JWT_SECRET, ORIGIN, OTHER_ORIGIN, Proxy, sse_turn


async def test_create_returns_a_bound_token(proxy: Proxy) -> None:
    r = await proxy.client.post(
        "/api/v1/session/create",
        json={"fingerprint": FINGERPRINT, "metadata": {"page": "/pricing"}},
        headers={"Origin": ORIGIN},
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"session_id", "token", "expires_at"}
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sid"] == body["session_id"]
    assert claims["org"] == ORIGIN
    assert claims["fph"] and FINGERPRINT not in body["token"]
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo == UTC and expires.timestamp() == claims["exp"]
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_create_without_body_or_fingerprint(proxy: Proxy) -> None:
    r = await proxy.client.post("/api/v1/session/create", headers={"Origin": ORIGIN})
    assert r.status_code == 201
    s = r.json()
    r = await proxy.client.get(
        "/api/v1/session/validate",
        headers={"Origin": ORIGIN, "Authorization": f"Bearer {s['token']}"},
    )
    assert r.status_code == 200


async def test_create_from_a_disallowed_origin(proxy: Proxy) -> None:
    for headers in ({"Origin": OTHER_ORIGIN}, {}, {"Origin": "https://shop.example.com.evil.net"}):
        r = await proxy.client.post("/api/v1/session/create", headers=headers)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in r.headers


async def test_validate(proxy: Proxy) -> None:
    s = await proxy.session()
    r = await proxy.client.get("/api/v1/session/validate", headers=proxy.auth(s))
    assert r.status_code == 200
    assert r.json() == {"valid": True, "session_id": s["session_id"], "expires_at": s["expires_at"]}


async def test_validate_refusals(proxy: Proxy) -> None:
    s = await proxy.session()
    cases = [
        ({"Origin": ORIGIN}, "unauthorized"),
        ({**proxy.auth(s), "Authorization": "Bearer nonsense"}, "unauthorized"),
        ({**proxy.auth(s), "Authorization": s["token"]}, "unauthorized"),
        (proxy.auth(s, origin="https://sub.example.org"), "session_mismatch"),
        (proxy.auth(s, fingerprint="another-browser"), "session_mismatch"),
        (proxy.auth(s, fingerprint=None), "session_mismatch"),
    ]
    for headers, code in cases:
        r = await proxy.client.get("/api/v1/session/validate", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == code, headers


async def test_same_origin_get_uses_the_referer(proxy: Proxy) -> None:
    s = await proxy.session()
    headers = proxy.auth(s)
    del headers["Origin"]
    headers["Referer"] = f"{ORIGIN}/some/page?q=1"
    r = await proxy.client.get("/api/v1/session/validate", headers=headers)
    assert r.status_code == 200


async def test_delete_revokes_the_token_and_erases_buffers(proxy: Proxy) -> None:
    s = await proxy.session()
    events = await sse_turn(proxy, s, "remember me")
    mid = events[0].data["message_id"]
    r = await proxy.client.delete("/api/v1/session", headers=proxy.auth(s))
    assert r.status_code == 204
    r = await proxy.client.get("/api/v1/session/validate", headers=proxy.auth(s))
    assert r.status_code == 401
    r = await proxy.client.post(
        "/api/v1/chat/message", json={"message": "hi"}, headers=proxy.auth(s)
    )
    assert r.status_code == 401
    assert await proxy.services.store.buffer_read(mid, -1, 0) is None


async def test_errors_have_the_contract_shape(proxy: Proxy) -> None:
    r = await proxy.client.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "Nothing here."}}
    r = await proxy.client.put("/api/v1/session/create", headers={"Origin": ORIGIN})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "bad_request"


async def test_preflight(proxy: Proxy) -> None:
    r = await proxy.client.options(
        "/api/v1/chat/message",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = await proxy.client.options(
        "/api/v1/chat/message",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_health(proxy: Proxy) -> None:
    r = await proxy.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["n8n"]["status"] == "ok"
    assert body["checks"]["store"]["status"] == "ok"


async def test_health_degraded_when_n8n_is_down(make_proxy) -> None:  # type: ignore[no-untyped-def]
    from tests.support import free_port

    async with make_proxy(f"http://127.0.0.1:{free_port()}/webhook/chat") as p:
        r = await p.client.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "degraded"
        assert body["checks"]["n8n"]["status"] == "fail"
        assert "127.0.0.1" not in r.text
