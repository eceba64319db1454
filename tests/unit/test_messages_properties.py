"""Property tests of the body validator: whatever arrives, the answer is a clean value or an
ApiError with a contract code -- never another exception."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quartproxy.core.messages import (
    InputLimits,
    chat_input,
    clean_text,
    parse_chat_body,
    parse_n8n_chat_body,
    parse_session_body,
)
from quartproxy.errors import ApiError

LIM = InputLimits(max_message_chars=50, max_body_bytes=4096, max_metadata_bytes=300)
CODES = {("bad_request", 400), ("payload_too_large", 413), ("unsupported_media_type", 415)}

TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # includes controls, surrogates
    max_size=80,
)
JSONISH: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=25,
)
CTYPES = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "text/plain", "", "x/y"]
)


def depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    return 0


def assert_clean(text: str, *, trimmed: bool) -> None:
    assert unicodedata.is_normalized("NFC", text)
    for ch in text:
        assert ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"), repr(ch)
    assert "\r" not in text
    if trimmed:
        assert text == text.strip()
    text.encode("utf-8")


def assert_clean_tree(v: Any) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            assert_clean(k, trimmed=False)
            assert_clean_tree(x)
    elif isinstance(v, list):
        for x in v:
            assert_clean_tree(x)
    elif isinstance(v, str):
        assert_clean(v, trimmed=False)


def check_metadata(meta: dict[str, Any]) -> None:
    assert isinstance(meta, dict)
    assert depth(meta) <= LIM.max_metadata_depth
    raw = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert len(raw.encode("utf-8")) <= LIM.max_metadata_bytes
    assert_clean_tree(meta)


@given(TEXT)
def test_clean_text_output_is_clean_and_stable(text: str) -> None:
    out = clean_text(text)
    assert_clean(out, trimmed=True)
    assert clean_text(out) == out


@given(st.binary(max_size=300), CTYPES)
def test_arbitrary_bytes(raw: bytes, ctype: str | None) -> None:
    for parse in (parse_chat_body, parse_session_body, parse_n8n_chat_body):
        try:
            parse(raw, ctype, LIM)
        except ApiError as e:
            assert (e.code, e.status) in CODES


@given(st.fixed_dictionaries({"message": TEXT}, optional={"metadata": JSONISH, "honeypot": TEXT}))
def test_chat_bodies(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()  # ensure_ascii: surrogates travel as \ud800 escapes
    try:
        got = parse_chat_body(raw, "application/json", LIM)
    except ApiError as e:
        assert (e.code, e.status) in CODES
        return
    assert_clean(got.message, trimmed=True)
    assert 1 <= len(got.message) <= LIM.max_message_chars
    assert_clean(got.honeypot, trimmed=True)
    check_metadata(got.metadata)


@given(JSONISH)
def test_any_json_value_as_a_body(obj: Any) -> None:
    try:
        got = chat_input(obj, LIM)
    except ApiError as e:
        assert (e.code, e.status) in CODES
        return
    assert_clean(got.message, trimmed=True)
    check_metadata(got.metadata)


@given(st.fixed_dictionaries({}, optional={"fingerprint": TEXT, "metadata": JSONISH}))
def test_session_bodies(obj: dict[str, Any]) -> None:
    try:
        got = parse_session_body(json.dumps(obj).encode(), "application/json", LIM)
    except ApiError as e:
        assert (e.code, e.status) in CODES
        return
    if got.fingerprint is not None:
        assert 1 <= len(got.fingerprint) <= 128 and got.fingerprint.isprintable()
    check_metadata(got.metadata)


@given(
    st.fixed_dictionaries(
        {"action": st.sampled_from(["sendMessage", "loadPreviousSession", "x"])},
        optional={"sessionId": TEXT, "chatInput": TEXT, "metadata": JSONISH},
    )
)
def test_n8n_chat_bodies(obj: dict[str, Any]) -> None:
    try:
        got = parse_n8n_chat_body(json.dumps(obj).encode(), "application/json", LIM)
    except ApiError as e:
        assert (e.code, e.status) in CODES
        return
    assert got.session_id.isprintable() and 1 <= len(got.session_id) <= 128
    if got.action == "sendMessage":
        assert got.message is not None
        assert_clean(got.message, trimmed=True)
    check_metadata(got.metadata)
