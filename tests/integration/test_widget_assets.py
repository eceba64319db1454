"""widget.js as the gateway serves it: compressed (made once at start), a content-named immutable
URL with a published SRI hash, and the old /static/widget.js still working (short cache)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from quartproxy.shipped import STATIC
from tests.support import Proxy

from .test_nginx import client_from, nginx_in_front

RAW = (STATIC / "widget.js").read_bytes()


async def wire(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The answer and its body as sent (httpx would otherwise decode gzip/br on its own)."""
    async with client.stream("GET", url, headers=headers) as r:
        return r, b"".join([chunk async for chunk in r.aiter_raw()])


def unbrotli(data: bytes) -> bytes:
    import brotli  # present whenever the proxy serves br (same interpreter)

    return bytes(brotli.decompress(data))


async def test_widget_is_served_compressed_with_vary(proxy: Proxy) -> None:
    # brotli is optional (the Brotli package); without it the best is gzip
    has_br = "br" in (await proxy.client.get("/static/widget.json")).json()["encodings"]
    for accept, encoding, decode in [
        ("gzip, deflate, br", "br" if has_br else "gzip", unbrotli if has_br else gzip.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("br;q=0.5, gzip", "gzip", gzip.decompress),
        ("identity", None, bytes),
    ]:
        r, body = await wire(proxy.client, "/static/widget.js", {"Accept-Encoding": accept})
        assert r.status_code == 200
        assert r.headers.get("content-encoding") == encoding, accept
        assert "accept-encoding" in r.headers["vary"].lower()
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["cache-control"] == "public, max-age=300"  # existing embeds: short
        assert decode(body) == RAW
        assert int(r.headers["content-length"]) == len(body)
    assert len(gzip.compress(RAW)) < 30_000  # the embed budget, gzipped


async def test_versioned_url_is_immutable_and_sri_matches(proxy: Proxy) -> None:
    manifest = (await proxy.client.get("/static/widget.json")).json()
    url, integrity = manifest["url"], manifest["integrity"]
    assert re.fullmatch(r"/static/widget\.[0-9a-f]{16}\.js", url)
    assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(RAW).digest()).decode()
    r, body = await wire(proxy.client, url, {"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert gzip.decompress(body) == RAW
    # The ETag of a representation answers 304; an unknown version is a clear 404.
    again = await proxy.client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    stale = await proxy.client.get("/static/widget.0123456789abcdef.js")
    assert stale.status_code == 404
    assert stale.json()["error"]["code"] == "not_found"


@pytest.mark.nginx
async def test_nginx_passes_the_compressed_widget(
    make_proxy,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    async with (
        make_proxy() as p,
        nginx_in_front(p.url, tmp_path) as edge,
        client_from("127.0.0.2", edge) as client,
    ):
        has_br = "br" in (await client.get("/static/widget.json")).json()["encodings"]
        for accept, encoding in [("br, gzip", "br" if has_br else "gzip"), ("gzip", "gzip")]:
            r, body = await wire(client, "/static/widget.js", {"Accept-Encoding": accept})
            assert r.status_code == 200
            assert r.headers.get("content-encoding") == encoding
            assert "accept-encoding" in r.headers["vary"].lower()
            assert len(body) < 30_000
        _, plain = await wire(client, "/static/widget.js", {"Accept-Encoding": "identity"})
        assert plain == RAW
