"""The per-request memory savings (quartproxy/http/lean.py,
overrides/werkzeug_headers.share_names) change no byte a client sees: same headers, same order,
same values; only equal objects are shared."""

from __future__ import annotations

import trio
from quart import request, session
from werkzeug.datastructures import Headers

from quartproxy.http import lean
from quartproxy.overrides import werkzeug_headers as wrappers
from tests.support import ORIGIN, settings_for


def encoded(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Fresh bytes, as Quart makes them for every response."""
    return [(k.lower().encode(), v.encode()) for k, v in pairs]


RESPONSE = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("X-Request-ID", "0123456789abcdef"),
    ("Content-Security-Policy", "default-src 'none'"),
    ("Access-Control-Allow-Origin", ORIGIN),
    ("Retry-After", "3"),
]


def test_response_headers_keep_order_and_values_and_share_fixed_ones() -> None:
    first = lean.share_response_headers(encoded(RESPONSE))
    second = lean.share_response_headers(encoded(RESPONSE))
    assert first == encoded(RESPONSE) == second
    for a, b in zip(first, second, strict=True):
        if a[0] in (b"x-request-id", b"retry-after"):
            assert a is not b  # per-response values are never shared (nor kept)
        else:
            assert a is b


def test_response_header_sharing_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(lean, "_shared", {})
    monkeypatch.setattr(lean, "MAX_SHARED", 2)
    many = [("Access-Control-Allow-Origin", f"https://{i}.example") for i in range(5)]
    assert lean.share_response_headers(encoded(many)) == encoded(many)
    assert len(lean._shared) == 2


def test_request_header_names_are_shared_values_never() -> None:
    pairs = [("Authorization", "Bearer a"), ("X-Odd-Name", "10"), ("Authorization", "Bearer b")]
    first, second = Headers(), Headers()
    for h in (first, second):
        for k, v in pairs:
            h.add(k.encode().decode("latin1"), v.encode().decode("latin1"))  # as Quart does
        wrappers.share_names(h)
    assert list(first.items()) == pairs == list(second.items())
    for (k1, v1), (k2, v2) in zip(first.items(), second.items(), strict=True):
        assert k1 is k2
        assert v1 is not v2


def test_request_header_name_sharing_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(wrappers, "_names", {})
    monkeypatch.setattr(wrappers, "MAX_SHARED_NAMES", 3)
    h = Headers([(f"X-Made-Up-{i}", "v") for i in range(10)])
    wrappers.share_names(h)
    assert [k for k, _ in h.items()] == [f"X-Made-Up-{i}" for i in range(10)]
    assert len(wrappers._names) == 3


def test_request_header_names_of_the_scope_are_shared_values_never(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(lean, "_names", {})
    first = encoded([("Authorization", "Bearer a"), ("User-Agent", "probe/1.0")])
    second = encoded([("Authorization", "Bearer b"), ("User-Agent", "probe/1.0")])
    expected = [list(first), list(second)]
    for headers in (first, second):
        lean.share_request_header_names(headers)
    assert [first, second] == expected  # same order, names and values
    assert all(a[0] is b[0] for a, b in zip(first, second, strict=True))
    assert all(a[1] is not b[1] for a, b in zip(first, second, strict=True))
    monkeypatch.setattr(lean, "MAX_SHARED_NAMES", 3)
    many = encoded([(f"X-Made-Up-{i}", "v") for i in range(10)])
    lean.share_request_header_names(many)
    assert len(lean._names) == 3
    frozen = tuple(encoded([("Accept", "*/*")]))
    lean.share_request_header_names(frozen)  # type: ignore[arg-type]  # not a list: untouched


async def test_the_app_shares_the_request_header_names_of_the_scope(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Wired in the app (factory.py): what Hypercorn hands over is shared before Quart reads it."""
    from quartproxy.factory import create_app

    monkeypatch.setattr(lean, "_names", {})
    app = create_app(settings_for("http://127.0.0.1:9/webhook"))
    scopes = []
    async with app.test_app():
        for _ in range(2):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": "/health",
                "raw_path": b"/health",
                "query_string": b"",
                "root_path": "",
                "headers": encoded([("Host", "localhost"), ("User-Agent", "probe")]),
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 2),
                "extensions": {},
                "state": {},
            }
            sent: list[dict[str, object]] = []

            calls: list[int] = []

            async def receive(calls: list[int] = calls) -> dict[str, object]:
                calls.append(1)
                if len(calls) > 1:  # then nothing until the request is over (it cancels us)
                    await trio.sleep_forever()
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(
                message: dict[str, object], sent: list[dict[str, object]] = sent
            ) -> None:
                sent.append(message)

            await app.asgi_app(scope, receive, send)
            assert sent[0]["type"] == "http.response.start"
            scopes.append(scope)
    first, second = (s["headers"] for s in scopes)
    assert all(a[0] is b[0] for a, b in zip(first, second, strict=True))


async def test_no_cookie_sessions() -> None:
    """Every request sees an empty, read-only session; no answer sets or varies on a cookie."""
    from quartproxy.factory import create_app

    app = create_app(settings_for("http://127.0.0.1:9/webhook"))
    seen: list[object] = []

    @app.get("/probe-session")
    async def probe() -> str:
        seen.append(session)
        assert dict(session) == {}
        try:
            session["x"] = 1
        except RuntimeError:
            return f"read-only {request.headers.get('Cookie')}"
        return "writable"

    async with app.test_app():
        client = app.test_client()
        for _ in range(2):
            response = await client.get("/probe-session", headers={"Cookie": "session=abc"})
            assert await response.get_data(as_text=True) == "read-only session=abc"
            assert "Set-Cookie" not in response.headers
            assert "cookie" not in response.headers.get("Vary", "").lower()
    assert len(seen) == 2
