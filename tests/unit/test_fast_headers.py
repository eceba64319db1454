"""FastHeaders answers every lookup exactly like Werkzeug's Headers, without exceptions."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from quartproxy.overrides.werkzeug_headers import FastHeaders

PAIRS = [
    ("Origin", "https://a.example"),
    ("X-Forwarded-For", "1.1.1.1"),
    ("x-forwarded-for", "2.2.2.2"),
]


def both() -> tuple[Headers, Headers]:
    slow = Headers(PAIRS)
    fast = Headers(PAIRS)
    fast.__class__ = FastHeaders
    return slow, fast


@pytest.mark.parametrize("name", ["Origin", "origin", "ORIGIN", "X-Forwarded-For", "Referer", ""])
def test_get_and_contains_match_werkzeug(name: str) -> None:
    slow, fast = both()
    assert fast.get(name) == slow.get(name)
    assert fast.get(name, "dflt") == slow.get(name, "dflt")
    assert (name in fast) == (name in slow)
    assert fast.getlist(name) == slow.getlist(name)


def test_typed_get_still_converts() -> None:
    fast = FastHeaders([("Content-Length", "42"), ("Bad", "x")])
    assert fast.get("content-length", type=int) == 42
    assert fast.get("bad", -1, type=int) == -1


async def test_requests_of_the_app_use_fast_headers() -> None:
    from quart import request

    from quartproxy.factory import create_app
    from tests.support import settings_for

    app = create_app(settings_for("http://127.0.0.1:9/webhook"))
    seen: list[type] = []

    @app.get("/probe-headers")
    async def probe() -> str:
        seen.append(type(request.headers))
        return "ok"

    async with app.test_app():
        response = await app.test_client().get("/probe-headers")
    assert response.status_code == 200
    assert seen == [FastHeaders]


# -- redirects never name a host (issue 13, finding 10) ------------------------------------------


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("http://evil.example/api/v1/x", "/api/v1/x"),
        ("https://evil.example/a?b=c", "/a?b=c"),
        ("http://h//evil.example/x", "/evil.example/x"),
        ("http://h/\\\\evil.example/x", "/evil.example/x"),
        ("http://h/\t/evil.example", "/evil.example"),
        ("/already/relative", "/already/relative"),
        ("http://h", "/"),
    ],
)
def test_relative_location(url: str, relative: str) -> None:
    from quartproxy.http.headers import relative_location

    assert relative_location(url) == relative
    assert not relative_location(url).startswith(("//", "/\\\\"))
