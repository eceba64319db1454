"""Input rules: every way a body can be wrong gets the contract's code, every odd string is
cleaned the same way."""

from __future__ import annotations

import json
import unicodedata

import pytest

from quartproxy.core.messages import (
    InputLimits,
    chat_input,
    check_content_type,
    clean_text,
    n8n_chat_input,
    normalise_fingerprint,
    normalise_metadata,
    parse_chat_body,
    parse_json_object,
    parse_json_text,
    parse_n8n_chat_body,
    parse_session_body,
)
from quartproxy.errors import ApiError

LIM = InputLimits(max_message_chars=20, max_body_bytes=2048, max_metadata_bytes=100)
JSON = "application/json"


def err(fn, *args, **kw) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as exc:
        fn(*args, **kw)
    return exc.value


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- clean_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hello", "hello"),
        ("  hello  ", "hello"),
        ("a\x00b", "ab"),
        ("a\x1bb\x7fc", "abc"),
        ("a\u0085b\u009fc", "abc"),  # C1 controls
        ("line1\nline2\tx", "line1\nline2\tx"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("e\u0301", "\u00e9"),  # NFD -> NFC
        ("e\x00\u0301", "\u00e9"),  # removing a control must not leave NFD behind
        ("\ud800x", "x"),  # lone surrogate (JSON can carry one, UTF-8 cannot)
        ("\n\t x \n", "x"),
        # invisible format characters go, but a ZWJ inside an emoji sequence stays
        # (test_messages_invisible.py has the whole rule)
        ("\u200dzwj\U0001f469\u200d\U0001f4bb", "zwj\U0001f469\u200d\U0001f4bb"),
        ("\u202eevil", "evil"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_without_trim_keeps_spaces() -> None:
    assert clean_text("  a\x00 ", trim=False) == "  a "


# -- messages -----------------------------------------------------------------------------------


def test_chat_input_normalises_message() -> None:
    got = chat_input({"message": "  Cafe\u0301\x07  "}, LIM)
    assert got.message == "Caf\u00e9"
    assert unicodedata.is_normalized("NFC", got.message)
    assert got.metadata == {}
    assert got.honeypot == ""


@pytest.mark.parametrize("message", ["", "   ", "\x00\x01", "\n\t\n", "\ud800"])
def test_empty_after_normalisation_is_refused(message: str) -> None:
    e = err(chat_input, {"message": message}, LIM)
    assert (e.code, e.status) == ("bad_request", 400)
    assert "empty" in e.message


def test_length_is_counted_after_normalisation() -> None:
    assert chat_input({"message": "x" * 20}, LIM).message == "x" * 20
    assert chat_input({"message": "  " + "x" * 20 + "\x00\x00 "}, LIM).message == "x" * 20
    # 20 decomposed é are 40 code points before NFC, 20 after
    assert len(chat_input({"message": "e\u0301" * 20}, LIM).message) == 20
    e = err(chat_input, {"message": "x" * 21}, LIM)
    assert e.code == "bad_request" and "20 characters" in e.message


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"message": 5},
        {"message": None},
        {"message": ["hi"]},
        {"message": {"text": "hi"}},
        {"message": True},
        {"message": "hi", "metadata": []},
        {"message": "hi", "metadata": "x"},
        {"message": "hi", "metadata": 3},
        {"message": "hi", "honeypot": 1},
    ],
)
def test_chat_shape_errors_are_bad_request(obj: object) -> None:
    e = err(chat_input, obj, LIM)
    assert (e.code, e.status) == ("bad_request", 400)


def test_shape_error_names_field_but_never_echoes_the_value() -> None:
    e = err(chat_input, {"message": 12345678}, LIM)
    assert "message" in e.message
    assert "12345678" not in e.message


def test_unknown_fields_are_ignored() -> None:
    got = chat_input({"message": "hi", "extra": {"x": 1}}, LIM)
    assert got.message == "hi"


def test_honeypot_is_carried_cleaned_and_bounded() -> None:
    assert chat_input({"message": "hi", "honeypot": " \x00me "}, LIM).honeypot == "me"
    assert len(chat_input({"message": "hi", "honeypot": "x" * 5000}, LIM).honeypot) == 256


# -- metadata -----------------------------------------------------------------------------------


def nested(depth: int) -> dict[str, object]:
    obj: dict[str, object] = {}
    for _ in range(depth - 1):
        obj = {"a": obj}
    return obj


def test_metadata_depth_bound() -> None:
    lim = InputLimits(max_metadata_bytes=10_000)
    assert normalise_metadata(nested(5), lim) == nested(5)
    e = err(normalise_metadata, nested(6), lim)
    assert e.code == "bad_request" and "deeper than 5" in e.message


def test_metadata_depth_counts_lists() -> None:
    lim = InputLimits(max_metadata_bytes=10_000)
    assert normalise_metadata({"a": [[[1]]]}, lim) == {"a": [[[1]]]}  # 4 levels
    assert normalise_metadata({"a": [[[[]]]]}, lim)  # 5 levels
    err(normalise_metadata, {"a": [[[[[]]]]]}, lim)  # 6 levels


def test_very_deep_metadata_does_not_exhaust_the_stack() -> None:
    e = err(normalise_metadata, nested(100_000), InputLimits(max_metadata_bytes=10**9))
    assert e.code == "bad_request"


def test_metadata_size_is_compact_utf8_bytes() -> None:
    lim = InputLimits(max_metadata_bytes=20)
    ok = {"k": "x" * 12}  # {"k":"xxxxxxxxxxxx"} = 20 bytes
    assert normalise_metadata(ok, lim) == ok
    err(normalise_metadata, {"k": "x" * 13}, lim)
    # 7 two-byte characters: 7 code points but 14 bytes -> 22 bytes in all
    e = err(normalise_metadata, {"k": "\u00e9" * 7}, lim)
    assert "20 bytes" in e.message


def test_metadata_strings_are_cleaned_but_not_trimmed() -> None:
    got = normalise_metadata({"pa\x00ge": [" /x\x1b ", "e\u0301"]}, InputLimits())
    assert got == {"page": [" /x ", "\u00e9"]}


def test_metadata_values_json_cannot_hold() -> None:
    err(normalise_metadata, {"x": float("nan")}, InputLimits())
    err(normalise_metadata, {"x": float("inf")}, InputLimits())
    err(normalise_metadata, {"x": object()}, InputLimits())


def test_metadata_none_is_empty() -> None:
    assert normalise_metadata(None, LIM) == {}


# -- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_rules() -> None:
    assert normalise_fingerprint(None) is None
    assert normalise_fingerprint("  ") is None
    assert normalise_fingerprint("abc123") == "abc123"
    assert normalise_fingerprint("x" * 128) == "x" * 128
    assert err(normalise_fingerprint, "x" * 129).code == "bad_request"
    assert err(normalise_fingerprint, "ab\x00c").code == "bad_request"
    assert err(normalise_fingerprint, "ab\ncd").code == "bad_request"


def test_session_body() -> None:
    got = parse_session_body(body({"fingerprint": "fp-1", "metadata": {"a": 1}}), JSON, LIM)
    assert (got.fingerprint, got.metadata) == ("fp-1", {"a": 1})
    empty = parse_session_body(b"", None, LIM)
    assert (empty.fingerprint, empty.metadata) == (None, {})
    assert parse_session_body(b"{}", JSON, LIM).fingerprint is None
    assert err(parse_session_body, body({"fingerprint": 5}), JSON, LIM).code == "bad_request"
    assert err(parse_session_body, body({"fingerprint": "x" * 200}), JSON, LIM).status == 400
    assert err(parse_session_body, b"{}", "text/plain", LIM).status == 415


# -- raw bodies: 413, 415, 400 in that order ----------------------------------------------------


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/vnd.api+json",
    ],
)
def test_json_content_types_accepted(ctype: str) -> None:
    check_content_type(ctype)


@pytest.mark.parametrize(
    "ctype",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "text/json",
        "application/jsonp",
    ],
)
def test_other_content_types_are_415(ctype: str | None) -> None:
    e = err(check_content_type, ctype)
    assert (e.code, e.status) == ("unsupported_media_type", 415)


def test_size_is_checked_before_anything_else() -> None:
    huge = b"x" * (LIM.max_body_bytes + 1)
    e = err(parse_chat_body, huge, "text/plain", LIM)
    assert (e.code, e.status) == ("payload_too_large", 413)
    exact = body({"message": "hi", "pad": "x" * (LIM.max_body_bytes - 30)})
    exact = exact[:-1] + b" " * (LIM.max_body_bytes - len(exact)) + b"}"
    assert len(exact) == LIM.max_body_bytes
    assert parse_chat_body(exact, JSON, LIM).message == "hi"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"{'message': 'hi'}",
        b'{"message": "hi",}',
        b'{"message": NaN}',
        b'{"message": "hi", "metadata": {"x": Infinity}}',
        b"\xff\xfe{}",
        b'{"message": "\xc3"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"message": "hi"} trailing',
        b"null",
    ],
)
def test_malformed_json_is_bad_request(raw: bytes) -> None:
    lim = InputLimits(max_body_bytes=1 << 20)
    e = err(parse_chat_body, raw, JSON, lim)
    assert (e.code, e.status) == ("bad_request", 400)


@pytest.mark.parametrize("raw", [b"[]", b'"hi"', b"3", b"true"])
def test_top_level_must_be_an_object(raw: bytes) -> None:
    e = err(parse_json_object, raw, JSON, LIM)
    assert e.code == "bad_request" and "object" in e.message


def test_bom_is_tolerated() -> None:
    assert parse_json_text("\ufeff{}".encode()) == {}


def test_escaped_lone_surrogate_in_body_is_cleaned() -> None:
    got = parse_chat_body(b'{"message": "a\\ud800b"}', JSON, LIM)
    assert got.message == "ab"
    got.message.encode("utf-8")  # would raise if a surrogate were left


# -- the @n8n/chat body -------------------------------------------------------------------------


def test_n8n_send_message() -> None:
    got = parse_n8n_chat_body(
        body({"action": "sendMessage", "sessionId": "s-1", "chatInput": " hi\x00 "}), JSON, LIM
    )
    assert (got.action, got.session_id, got.message, got.metadata) == (
        "sendMessage",
        "s-1",
        "hi",
        {},
    )


def test_n8n_load_previous_session_needs_no_input() -> None:
    got = n8n_chat_input({"action": "loadPreviousSession", "sessionId": "s-1"}, LIM)
    assert got.message is None


@pytest.mark.parametrize(
    "obj",
    [
        {"action": "sendMessage", "sessionId": "s"},
        {"action": "sendMessage", "sessionId": "s", "chatInput": ""},
        {"action": "sendMessage", "sessionId": "", "chatInput": "hi"},
        {"action": "sendMessage", "sessionId": "x" * 129, "chatInput": "hi"},
        {"action": "sendMessage", "sessionId": "a\x00b", "chatInput": "hi"},
        {"action": "deleteEverything", "sessionId": "s", "chatInput": "hi"},
        {"sessionId": "s", "chatInput": "hi"},
        {"action": "sendMessage", "sessionId": 1, "chatInput": "hi"},
        {"action": "sendMessage", "sessionId": "s", "chatInput": "x" * 21},
    ],
)
def test_n8n_bad_bodies(obj: object) -> None:
    e = err(n8n_chat_input, obj, LIM)
    assert (e.code, e.status) == ("bad_request", 400)
