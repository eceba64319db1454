"""core.assets: Accept-Encoding negotiation and the precompressed widget representations."""

from __future__ import annotations

import base64
import gzip
import hashlib

import pytest

from quartproxy.core.assets import Asset, choose_encoding, parse_accept_encoding

ALL = ("identity", "gzip", "br")


@pytest.mark.parametrize(
    ("header", "available", "expected"),
    [
        (None, ALL, "identity"),  # no header: plain
        ("", ALL, "identity"),
        ("gzip, deflate, br, zstd", ALL, "br"),  # Chromium's header
        ("gzip, deflate, br", ("identity", "gzip"), "gzip"),  # no brotli installed
        ("br;q=0.5, gzip", ALL, "gzip"),  # the client's q wins over our preference
        ("gzip;q=0, br;q=0", ALL, "identity"),
        ("*", ALL, "br"),
        ("*;q=0.1, gzip;q=0", ALL, "br"),
        ("GZIP", ALL, "gzip"),
        ("gzip;q=abc", ALL, "identity"),  # a bad q counts as 0
        ("gzip;q=nan", ALL, "identity"),
        ("identity", ALL, "identity"),
        (" , ;q=1, gzip ; q=0.3", ALL, "gzip"),
    ],
)
def test_choose_encoding(header: str | None, available: tuple[str, ...], expected: str) -> None:
    assert choose_encoding(header, available) == expected


def test_parse_keeps_the_highest_q_of_a_repeated_coding() -> None:
    assert parse_accept_encoding("gzip;q=0.2, gzip;q=0.9, br;q=2") == {"gzip": 0.9, "br": 1.0}


def test_asset_is_built_once_with_name_and_sri() -> None:
    raw = b"console.log('hi');" * 100
    asset = Asset.build(raw, brotli=lambda data: b"BR" + data[:3])
    assert gzip.decompress(asset.bodies["gzip"]) == raw
    assert asset.bodies["br"] == b"BRcon"
    assert asset.bodies["identity"] == raw
    assert asset.digest == hashlib.sha256(raw).hexdigest()[:16]
    assert asset.integrity == "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode()
    assert Asset.build(raw).bodies["gzip"] == asset.bodies["gzip"]  # deterministic (mtime=0)
    assert "br" not in Asset.build(raw).bodies
    assert asset.etag("gzip") != asset.etag("br")
