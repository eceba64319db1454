"""Adversarial suite: each attack against a real Hypercorn, asserting the exact status and
error code a client would see."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import trio

from tests.support import (
    BROWSER_HEADERS,
    FINGERPRINT,
    JWT_SECRET,
    ORIGIN,
    SESSION_SECRET,
    Proxy,
    parse_sse,
)


def error_of(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) <= {"error", "retry_after"}, body
    # `reason` (which rule refused) only on `blocked`, and never anything else
    extra = {"reason"} if body["error"].get("code") == "blocked" else set()
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message"} | extra, body
    return str(body["error"]["code"])


async def chat(proxy: Proxy, s: dict[str, str], body: Any, **headers: str) -> httpx.Response:
    h = {**proxy.auth(s), **headers}
    if isinstance(body, bytes):
        return await proxy.client.post("/api/v1/chat/message", content=body, headers=h)
    return await proxy.client.post("/api/v1/chat/message", json=body, headers=h)


# -- origins and CORS ----------------------------------------------------------------------------


async def test_disallowed_origins_get_403_and_no_echo(proxy: Proxy) -> None:
    for origin in [
        "https://shop.example.com.evil.net",
        "https://evilshop.example.com",
        "https://evilexample.org",
        "https://example.org",  # the wildcard is for subdomains only
        "http://shop.example.com",  # scheme matters
        "https://shop.example.com:8443",  # port matters
        "null",
        "https://x.example.org@evil.net",
    ]:
        r = await proxy.client.post("/api/v1/session/create", headers={"Origin": origin})
        assert (r.status_code, error_of(r)) == (403, "origin_not_allowed"), origin
        assert "Access-Control-Allow-Origin" not in r.headers
        assert origin not in r.text
        assert "Origin" in r.headers.get("Vary", "")


async def test_wildcard_subdomains_and_canonical_echo(proxy: Proxy) -> None:
    for origin, echoed in [
        ("https://a.example.org", "https://a.example.org"),
        ("https://a.b.example.org", "https://a.b.example.org"),
        ("https://A.Example.ORG:443", "https://a.example.org"),
    ]:
        r = await proxy.client.post("/api/v1/session/create", headers={"Origin": origin})
        assert r.status_code == 201, origin
        assert r.headers["Access-Control-Allow-Origin"] == echoed


async def test_preflights(proxy: Proxy) -> None:
    ok = await proxy.client.options(
        "/api/v1/chat/stream",
        headers={
            "Origin": "https://w.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-chat-fingerprint",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://w.example.org"
    allowed = ok.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-chat-fingerprint"} <= {
        x.strip() for x in allowed.split(",")
    }
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Origin" in ok.headers["Vary"]
    bad = await proxy.client.options(
        "/api/v1/chat/stream",
        headers={"Origin": "https://example.org.evil.net", "Access-Control-Request-Method": "POST"},
    )
    assert (bad.status_code, error_of(bad)) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in bad.headers


# -- client identity behind proxies --------------------------------------------------------------


async def burn(proxy: Proxy, n: int, **headers: str) -> list[int]:
    codes = []
    for _ in range(n):
        r = await proxy.client.post("/api/v1/session/create", headers={"Origin": ORIGIN, **headers})
        codes.append(r.status_code)
    return codes


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION_CREATE="2/minute") as p:
        codes = [(await burn(p, 1, **{"X-Forwarded-For": f"203.0.113.{i}"}))[0] for i in range(3)]
        assert codes == [201, 201, 429]  # one budget: the socket's address


async def test_forwarded_for_from_a_trusted_proxy_is_honoured(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(
        RATE_LIMIT_SESSION_CREATE="2/minute", TRUSTED_PROXIES="127.0.0.1/32"
    ) as p:
        assert await burn(p, 3, **{"X-Forwarded-For": "203.0.113.7"}) == [201, 201, 429]
        # another client behind the same proxy has its own budget...
        assert await burn(p, 1, **{"X-Forwarded-For": "203.0.113.8"}) == [201]
        # ...and a forged left-most hop does not buy a new one: the right-most untrusted hop counts
        assert await burn(p, 1, **{"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}) == [429]


# -- rate limits and busy ------------------------------------------------------------------------


async def test_fifty_concurrent_requests_against_a_limit_of_five(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION_CREATE="5/minute") as p:
        results: list[httpx.Response] = []

        async def one() -> None:
            results.append(
                await p.client.post("/api/v1/session/create", headers={"Origin": ORIGIN})
            )

        async with trio.open_nursery() as n:
            for _ in range(50):
                n.start_soon(one)
        codes = sorted(r.status_code for r in results)
        assert codes == [201] * 5 + [429] * 45
        refused = next(r for r in results if r.status_code == 429)
        assert error_of(refused) == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])


async def test_fifty_concurrent_chat_turns_against_an_ip_limit_of_five(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_IP="5/minute", RATE_LIMIT_SESSION_CREATE="100/minute") as p:
        sessions = [await p.session() for _ in range(50)]
        codes: list[int] = []

        async def one(s: dict[str, str]) -> None:
            r = await chat(p, s, {"message": f"hello {s['session_id']}"})
            codes.append(r.status_code)

        async with trio.open_nursery() as n:
            for s in sessions:
                n.start_soon(one, s)
        assert sorted(codes) == [200] * 5 + [429] * 45


async def test_session_and_origin_tiers(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(RATE_LIMIT_SESSION="2/minute") as p:
        s = await p.session()
        assert [(await chat(p, s, {"message": f"m{i}"})).status_code for i in range(3)] == [
            200,
            200,
            429,
        ]
        r = await chat(p, s, {"message": "again"})
        assert r.headers["X-RateLimit-Tier"] == "session"
        other = await p.session()
        assert (await chat(p, other, {"message": "fresh"})).status_code == 200
    async with make_proxy(RATE_LIMIT_ORIGIN="1/minute") as p:
        a, b = await p.session(), await p.session()
        assert (await chat(p, a, {"message": "one"})).status_code == 200
        r = await chat(p, b, {"message": "two"})
        assert (r.status_code, error_of(r), r.headers["X-RateLimit-Tier"]) == (
            429,
            "rate_limited",
            "origin",
        )


async def test_one_answer_in_flight_per_session(proxy: Proxy, fake_n8n) -> None:  # type: ignore[no-untyped-def]
    s = await proxy.session()
    async with proxy.client.stream(
        "POST", "/api/v1/chat/message", json={"message": "gate:g1"}, headers=proxy.auth(s)
    ) as first:
        assert first.status_code == 200
        r = await chat(proxy, s, {"message": "second"})
        assert (r.status_code, error_of(r)) == (409, "busy")
        fake_n8n.gates["g1"].set()
        await first.aread()


# -- tokens --------------------------------------------------------------------------------------


def forge(claims: dict[str, Any], key: str = JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_token_attacks(proxy: Proxy) -> None:
    s = await proxy.session()
    good = jwt.decode(s["token"], JWT_SECRET, algorithms=["HS256"])
    now = int(time.time())
    header, payload, _sig = s["token"].split(".")

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    cases = {
        "wrong key": forge(good, "x" * 40),
        "session key": forge(good, SESSION_SECRET),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HS512": forge(good, JWT_SECRET, "HS512"),
        "RS256 header, HMAC body": f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{_sig}",
        "expired": forge({**good, "iat": now - 100, "exp": now - 5}),
        "no exp": forge({k: v for k, v in good.items() if k != "exp"}),
        "tampered sid": f"{header}.{b64({**good, 'sid': str(uuid.uuid4())})}.{_sig}",
        "unknown session": forge({**good, "sid": str(uuid.uuid4())}),
        "not a jwt": "abc.def",
        "huge": "a" * 10_000,
    }
    for name, token in cases.items():
        h = {**proxy.auth(s), "Authorization": f"Bearer {token}"}
        r = await proxy.client.post("/api/v1/chat/message", json={"message": "hi"}, headers=h)
        assert (r.status_code, error_of(r)) == (401, "unauthorized"), name
        assert token[:40] not in r.text


async def test_revoked_session_is_refused(proxy: Proxy) -> None:
    s = await proxy.session()
    assert (await proxy.client.delete("/api/v1/session", headers=proxy.auth(s))).status_code == 204
    r = await chat(proxy, s, {"message": "still there?"})
    assert (r.status_code, error_of(r)) == (401, "unauthorized")


async def test_stolen_token_from_another_site_or_browser(proxy: Proxy) -> None:
    s = await proxy.session()
    for kw in (
        {"origin": "https://attacker.example.org"},  # allowed origin, but not the token's
        {"fingerprint": "another-browser"},
        {"fingerprint": None},
    ):
        r = await proxy.client.post(
            "/api/v1/chat/message", json={"message": "hi"}, headers=proxy.auth(s, **kw)
        )
        assert (r.status_code, error_of(r)) == (401, "session_mismatch"), kw
    r = await proxy.client.post(
        "/api/v1/chat/message",
        json={"message": "hi"},
        headers=proxy.auth(s, origin="https://evil.example.net"),
    )
    assert (r.status_code, error_of(r)) == (403, "origin_not_allowed")


# -- bodies --------------------------------------------------------------------------------------


async def test_body_attacks(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(MAX_MESSAGE_CHARS="50", MAX_BODY_BYTES="4096") as p:
        s = await p.session()
        nested: Any = {}
        for _ in range(6):
            nested = {"a": nested}
        cases: list[tuple[str, Any, dict[str, str], int, str]] = [
            ("huge body", b'{"message": "' + b"x" * 10_000 + b'"}', {}, 413, "payload_too_large"),
            (
                "form body",
                b"message=hi",
                {"Content-Type": "application/x-www-form-urlencoded"},
                415,
                "unsupported_media_type",
            ),
            (
                "text body",
                b'{"message": "hi"}',
                {"Content-Type": "text/plain"},
                415,
                "unsupported_media_type",
            ),
            (
                "no content type",
                b'{"message": "hi"}',
                {"Content-Type": ""},
                415,
                "unsupported_media_type",
            ),
            (
                "malformed",
                b'{"message": "hi"',
                {"Content-Type": "application/json"},
                400,
                "bad_request",
            ),
            ("NaN", b'{"message": NaN}', {"Content-Type": "application/json"}, 400, "bad_request"),
            (
                "bad utf-8",
                b'{"message": "\xff"}',
                {"Content-Type": "application/json"},
                400,
                "bad_request",
            ),
            (
                "deep json",
                b"[" * 2000 + b"]" * 2000,
                {"Content-Type": "application/json"},
                400,
                "bad_request",
            ),
            ("array", b"[]", {"Content-Type": "application/json"}, 400, "bad_request"),
            ("no message", {"text": "hi"}, {}, 400, "bad_request"),
            ("number", {"message": 42}, {}, 400, "bad_request"),
            ("empty", {"message": "  \u0000\u200b"[:3]}, {}, 400, "bad_request"),
            ("too long", {"message": "y" * 51}, {}, 400, "bad_request"),
            ("deep metadata", {"message": "hi", "metadata": nested}, {}, 400, "bad_request"),
            (
                "big metadata",
                {"message": "hi", "metadata": {"k": "v" * 3000}},
                {},
                400,
                "bad_request",
            ),
            ("list metadata", {"message": "hi", "metadata": [1]}, {}, 400, "bad_request"),
        ]
        for name, body, headers, status, code in cases:
            r = await chat(p, s, body, **headers)
            assert (r.status_code, error_of(r)) == (status, code), name
            assert r.headers["Content-Type"].startswith("application/json"), name


async def test_chunked_huge_body_is_413(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(MAX_BODY_BYTES="4096") as p:
        s = await p.session()

        async def chunks():  # type: ignore[no-untyped-def]
            yield b'{"message": "'
            for _ in range(100):
                yield b"z" * 1000
            yield b'"}'

        r = await p.client.post(
            "/api/v1/chat/message",
            content=chunks(),
            headers={**p.auth(s), "Content-Type": "application/json"},
        )
        assert (r.status_code, error_of(r)) == (413, "payload_too_large")


async def test_unicode_is_normalised_before_it_reaches_n8n(proxy: Proxy, fake_n8n) -> None:  # type: ignore[no-untyped-def]
    s = await proxy.session()
    raw = (
        '{"message": "  Cafe\\u0301\\u0000 \\u001b[31mred\\r\\nline\\ud800 ", '
        '"metadata": {"p\\u0000": "e\\u0301"}}'
    )
    r = await chat(proxy, s, raw.encode(), **{"Content-Type": "application/json"})
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert events[-1].event == "end"
    sent = fake_n8n.requests[-1]["body"]
    assert sent["chatInput"] == "Caf\u00e9 [31mred\nline"
    assert sent["metadata"] == {"p": "\u00e9"}


async def test_session_create_bodies(proxy: Proxy) -> None:
    for body, headers, status, code in [
        ({"fingerprint": "x" * 129}, {}, 400, "bad_request"),
        ({"fingerprint": "a\nb"}, {}, 400, "bad_request"),
        ({"metadata": "x"}, {}, 400, "bad_request"),
        (b"{", {"Content-Type": "application/json"}, 400, "bad_request"),
        (b"{}", {"Content-Type": "text/html"}, 415, "unsupported_media_type"),
    ]:
        h = {"Origin": ORIGIN, **headers}
        if isinstance(body, bytes):
            r = await proxy.client.post("/api/v1/session/create", content=body, headers=h)
        else:
            r = await proxy.client.post("/api/v1/session/create", json=body, headers=h)
        assert (r.status_code, error_of(r)) == (status, code), body


# -- bots and spam -------------------------------------------------------------------------------


async def test_honeypot_is_blocked(proxy: Proxy) -> None:
    s = await proxy.session()
    r = await chat(proxy, s, {"message": "hello", "honeypot": "http://spam.example"})
    assert (r.status_code, error_of(r)) == (403, "blocked")


async def test_automation_user_agents_are_blocked(proxy: Proxy) -> None:
    for ua in ["curl/8.5.0", "python-requests/2.32", ""]:
        r = await proxy.client.post(
            "/api/v1/session/create", headers={"Origin": ORIGIN, "User-Agent": ua}
        )
        assert (r.status_code, error_of(r)) == (403, "blocked"), ua
    s = await proxy.session()
    r = await chat(proxy, s, {"message": "hi"}, **{"User-Agent": "Go-http-client/1.1"})
    assert (r.status_code, error_of(r)) == (403, "blocked")


async def test_soft_signals_add_up(proxy: Proxy) -> None:
    s = await proxy.session()
    bare = {"Accept-Language": "", "Sec-Fetch-Site": "", "Sec-Fetch-Mode": "", "Sec-Fetch-Dest": ""}
    # no Accept-Language, no Sec-Fetch-*, first message at once: 20 + 15 + 25 >= 60
    r = await chat(proxy, s, {"message": "hi"}, **bare)
    assert (r.status_code, error_of(r)) == (403, "blocked")
    # the same headers on a later message are only 35: not blocked
    r = await chat(proxy, s, {"message": "hi again"}, **bare)
    assert r.status_code == 200


async def test_bot_log_only_mode(make_proxy, caplog) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(BOT_ENFORCE="false") as p:
        r = await p.client.post(
            "/api/v1/session/create", headers={"Origin": ORIGIN, "User-Agent": "curl/8"}
        )
        assert r.status_code == 201
    assert any("would block" in rec.getMessage() for rec in caplog.records)


async def test_spam_rules(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(SPAM_BLOCK_PATTERNS=r"\bcasino\b", RATE_LIMIT_SESSION="100/minute") as p:
        s = await p.session()
        for message, reason in [
            ("Play at the CASINO now", "pattern"),
            ("a " + " ".join(f"https://l{i}.example" for i in range(4)), "links"),
            ("wow" + "!" * 60, "char_flood"),
        ]:
            r = await chat(p, s, {"message": message})
            assert (r.status_code, error_of(r)) == (403, "blocked"), message
            assert r.json()["error"]["message"].startswith("This message")
            # which rule, so a widget can say it in its visitor's language
            assert r.json()["error"]["reason"] == reason
        codes = [(await chat(p, s, {"message": "Same  question"})).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await chat(p, s, {"message": "same question"})
        assert (r.status_code, error_of(r)) == (403, "blocked")
        assert "same message" in r.json()["error"]["message"]
        assert r.json()["error"]["reason"] == "duplicate"


async def test_spam_log_only_mode(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy(SPAM_ENFORCE="false", SPAM_BLOCK_PATTERNS="casino") as p:
        s = await p.session()
        assert (await chat(p, s, {"message": "casino"})).status_code == 200


# -- headers -------------------------------------------------------------------------------------


async def test_security_headers(proxy: Proxy) -> None:
    r = await proxy.client.post("/api/v1/session/create", headers={"Origin": ORIGIN})
    h = r.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "default-src 'none'" in h["Content-Security-Policy"]
    assert h["Referrer-Policy"] == "no-referrer"
    assert "camera=()" in h["Permissions-Policy"]
    assert h["Cross-Origin-Resource-Policy"] == "same-origin"
    assert h["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in h  # plain HTTP


async def test_hsts_only_over_tls_from_a_trusted_proxy(make_proxy) -> None:  # type: ignore[no-untyped-def]
    async with make_proxy() as p:
        r = await p.client.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" not in r.headers  # untrusted peer
    async with make_proxy(TRUSTED_PROXIES="127.0.0.1") as p:
        r = await p.client.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_no_500_or_stack_traces_for_odd_requests(proxy: Proxy) -> None:
    s = await proxy.session()
    odd = [
        ("GET", "/api/v1/chat/message/%00", {}),
        ("GET", "/api/v1/chat/history/" + "x" * 3000, {}),
        ("POST", "/api/v1/chat/message", {"Authorization": "Bearer"}),
        ("POST", "/api/v1/chat/message", {"Authorization": "Basic abc"}),
        ("GET", "/api/v1/chat/message/abc", {"Last-Event-ID": "garbage"}),
    ]
    for method, path, extra in odd:
        r = await proxy.client.request(method, path, headers={**proxy.auth(s), **extra})
        assert r.status_code < 500, (method, path)
        assert "Traceback" not in r.text
        error_of(r)


async def test_browser_headers_fixture_is_what_passes(proxy: Proxy) -> None:
    # Guard against the suite passing only because the bot check is off.
    assert proxy.settings.bot_enforce and proxy.settings.spam_enforce
    assert BROWSER_HEADERS["User-Agent"].startswith("Mozilla/")
    assert FINGERPRINT
