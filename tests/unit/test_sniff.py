"""File types from their bytes (core/sniff.py) and the attachment policy (core/attachments.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.core.attachments import parse_types
from quartproxy.core.sniff import KNOWN, TypeCheck, magic_type
from quartproxy.errors import ApiError

SAMPLES = {
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/gif": b"GIF89a\x01\x00\x01\x00\x80\x00",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "text/plain": "Grüße, 日本語 and an emoji 🙂\r\n\ttabbed\n".encode(),
}


def check(declared: str, data: bytes, *, cut: int = 1, allowed: frozenset[str] = KNOWN) -> str:
    tc = TypeCheck(declared, allowed)
    for i in range(0, len(data), cut):
        tc.feed(data[i : i + cut])
    return tc.finish()


def reason(declared: str, data: bytes, **kw: object) -> str | None:
    with pytest.raises(ApiError) as caught:
        check(declared, data, **kw)  # type: ignore[arg-type]
    assert caught.value.status == 415 and caught.value.code == "unsupported_media_type"
    return caught.value.public_reason


@pytest.mark.parametrize("ctype", sorted(SAMPLES))
@pytest.mark.parametrize("cut", [1, 5, 1000])
def test_each_type_is_recognised_from_its_bytes_however_they_come(ctype: str, cut: int) -> None:
    assert check(ctype, SAMPLES[ctype], cut=cut) == ctype
    assert check(ctype.upper() + "; charset=x", SAMPLES[ctype], cut=cut) == ctype


@pytest.mark.parametrize("declared", sorted(SAMPLES))
@pytest.mark.parametrize("actual", sorted(SAMPLES))
def test_bytes_of_another_type_are_a_mismatch(declared: str, actual: str) -> None:
    if declared != actual:
        assert reason(declared, SAMPLES[actual]) == "type_mismatch"


def test_jpg_alias_and_an_empty_text_file() -> None:
    assert check("image/jpg", SAMPLES["image/jpeg"]) == "image/jpeg"
    assert check("text/plain", b"") == "text/plain"
    assert reason("image/png", b"") == "type_mismatch"
    assert reason("image/png", b"\x89PNG") == "type_mismatch"  # a truncated signature


@pytest.mark.parametrize(
    "data",
    [b"abc\x00def", b"ok \x1b[31m", b"\xff\xfe", b"caf\xc3", b"ok" + b"\xed\xa0\x80"],
)
def test_text_must_be_utf8_without_control_bytes(data: bytes) -> None:
    assert reason("text/plain", data) == "type_mismatch"


def test_a_utf8_character_split_across_chunks_is_text() -> None:
    assert check("text/plain", ("é" * 100 + "🙂").encode(), cut=1) == "text/plain"


def test_a_type_not_allowed_is_refused_before_any_byte() -> None:
    assert reason("image/svg+xml", b"<svg/>") == "type_not_allowed"
    assert reason("application/octet-stream", b"x") == "type_not_allowed"
    assert reason("", b"x") == "type_not_allowed"
    only_png = frozenset({"image/png"})
    assert reason("image/jpeg", SAMPLES["image/jpeg"], allowed=only_png) == "type_not_allowed"


@given(st.binary(max_size=64))
def test_magic_type_agrees_with_the_signatures(data: bytes) -> None:
    found = magic_type(data)
    if found is not None:
        assert data.startswith(SAMPLES[found][:3]) or found == "image/webp"


def test_allowed_types_setting() -> None:
    assert parse_types("image/png, IMAGE/JPG,,text/plain") == {
        "image/png",
        "image/jpeg",
        "text/plain",
    }
    with pytest.raises(ValueError, match="image/svg"):
        parse_types("image/png,image/svg+xml")
