"""Exact limits of the input rules: the defaults, `InputLimits.from_settings`, every length and
size at its edge, and the code and status of each refusal. Each case was a surviving mutant of
core/messages.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from quartproxy.core.messages import (
    MAX_FINGERPRINT_CHARS,
    MAX_METADATA_DEPTH,
    MAX_SESSION_ID_CHARS,
    ChatMessage,
    InputLimits,
    N8nChatRequest,
    SessionCreate,
    chat_input,
    check_size,
    n8n_chat_input,
    normalise_fingerprint,
    normalise_metadata,
    normalise_session_id,
    parse_chat_body,
    parse_json_object,
    parse_json_text,
    parse_session_body,
    session_input,
)
from quartproxy.errors import ApiError

LIMITS = InputLimits()


def refused(fn: object, *args: object, **kw: object) -> ApiError:
    with pytest.raises(ApiError) as err:
        fn(*args, **kw)  # type: ignore[operator]
    return err.value


def test_defaults() -> None:
    assert InputLimits(4000, 64 * 1024, 2048, 5) == LIMITS
    assert LIMITS.max_body_bytes == 65536
    assert (MAX_METADATA_DEPTH, MAX_FINGERPRINT_CHARS, MAX_SESSION_ID_CHARS) == (5, 128, 128)


def test_from_settings_takes_the_three_settings() -> None:
    settings = SimpleNamespace(max_message_chars=10, max_body_bytes=2000, max_metadata_bytes=30)
    assert InputLimits.from_settings(settings) == InputLimits(10, 2000, 30, MAX_METADATA_DEPTH)


def test_body_size_limit_is_inclusive() -> None:
    check_size(65536, LIMITS)
    err = refused(check_size, 65537, LIMITS)
    assert (err.code, err.status) == ("payload_too_large", 413)
    small = InputLimits(max_body_bytes=20)
    assert parse_chat_body(b'{"message": "hi!!!"}', "application/json", small).message == "hi!!!"
    err = refused(parse_chat_body, b'{"message": "hi!!!!"}', "application/json", small)
    assert err.status == 413


def test_message_length_limit_is_inclusive() -> None:
    assert chat_input({"message": "x" * 4000}, LIMITS).message == "x" * 4000
    err = refused(chat_input, {"message": "x" * 4001}, LIMITS)
    assert (err.code, err.status) == ("bad_request", 400)


@pytest.mark.parametrize("n", [1, 64, 128])
def test_session_ids_of_1_to_128_characters(n: int) -> None:
    assert normalise_session_id(" " + "s" * n + " ") == "s" * n


@pytest.mark.parametrize("value", ["", "   ", "s" * 129, "a\x00b", "a\nb"])
def test_other_session_ids_are_refused(value: str) -> None:
    err = refused(normalise_session_id, value)
    assert (err.code, err.status) == ("bad_request", 400)


def test_n8n_body_session_id_boundary() -> None:
    body = {"action": "loadPreviousSession", "sessionId": "s" * 128}
    assert n8n_chat_input(body, LIMITS).session_id == "s" * 128
    assert refused(n8n_chat_input, {**body, "sessionId": "s" * 129}, LIMITS).status == 400


def test_fingerprint_boundary() -> None:
    assert normalise_fingerprint("f" * 128) == "f" * 128
    assert normalise_fingerprint(" f ") == "f"
    assert normalise_fingerprint("  ") is None
    assert normalise_fingerprint(None) is None
    for bad in ("f" * 129, "a\tb", 5):
        assert refused(normalise_fingerprint, bad).code == "bad_request"


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_metadata_depth_limit_is_inclusive() -> None:
    assert normalise_metadata(_nested(5), LIMITS) == _nested(5)
    assert refused(normalise_metadata, _nested(6), LIMITS).code == "bad_request"
    as_list: dict[str, object] = {"a": [[[[1]]]]}  # the object is level 1, each list one more
    assert normalise_metadata(as_list, LIMITS) == as_list
    assert refused(normalise_metadata, {"a": [[[[[1]]]]]}, LIMITS).code == "bad_request"


def test_metadata_size_limit_is_inclusive() -> None:
    def of_size(n: int) -> dict[str, object]:
        return {"k": "v" * (n - len('{"k":""}'))}

    assert len(json.dumps(of_size(2048), separators=(",", ":"))) == 2048
    assert normalise_metadata(of_size(2048), LIMITS) == of_size(2048)
    assert refused(normalise_metadata, of_size(2049), LIMITS).code == "bad_request"


def test_metadata_values_kept_exactly() -> None:
    meta = {
        "n": None,
        "t": True,
        "f": False,
        "i": 0,
        "x": 1.5,
        "s": " a\tb ",
        "l": [1, "2"],
        "5": 5,
    }
    assert normalise_metadata(meta, LIMITS) == meta
    assert normalise_metadata({}, LIMITS) == {}
    for bad in (float("nan"), float("inf"), b"x", object()):
        assert refused(normalise_metadata, {"k": bad}, LIMITS).code == "bad_request"
    assert refused(normalise_metadata, [1], LIMITS).code == "bad_request"


def test_json_text_rules() -> None:
    assert parse_json_text(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert parse_json_text('\ufeff{"a": 1}') == {"a": 1}
    for bad in (b"NaN", b'{"a": Infinity}', b"\xff", b"[" * 100_000, b"", b"{"):
        err = refused(parse_json_text, bad)
        assert (err.code, err.status) == ("bad_request", 400)


def test_an_empty_session_body_is_an_empty_object_whatever_its_type() -> None:
    got = parse_session_body(b"  ", "text/plain", LIMITS)
    assert (got.fingerprint, got.metadata) == (None, {})
    assert refused(parse_chat_body, b"  ", "application/json", LIMITS).code == "bad_request"
    err = refused(parse_session_body, b"{}", "text/plain", LIMITS)
    assert (err.code, err.status) == ("unsupported_media_type", 415)


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=latin-1", "application/json; charset=", "text/json"]
)
def test_other_charsets_are_415(ctype: str) -> None:
    err = refused(parse_chat_body, b'{"message": "hi"}', ctype, LIMITS)
    assert (err.code, err.status) == ("unsupported_media_type", 415)


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        'application/json; charset="utf8"',
        "application/json; foo=bar",
        "application/vnd.api+json",
    ],
)
def test_json_media_types_are_read(ctype: str) -> None:
    assert parse_chat_body(b'{"message": "hi"}', ctype, LIMITS).message == "hi"


def test_honeypot_is_cut_at_256_characters() -> None:
    got = chat_input({"message": "m", "honeypot": "h" * 300}, LIMITS)
    assert got.honeypot == "h" * 256
    assert chat_input({"message": "m"}, LIMITS).honeypot == ""


def test_n8n_send_message_needs_chat_input_and_load_needs_none() -> None:
    sent = n8n_chat_input({"action": "sendMessage", "sessionId": "s", "chatInput": " hi "}, LIMITS)
    assert (sent.action, sent.session_id, sent.message, sent.metadata) == (
        "sendMessage",
        "s",
        "hi",
        {},
    )
    loaded = n8n_chat_input({"action": "loadPreviousSession", "sessionId": "s"}, LIMITS)
    assert loaded.message is None
    err = refused(n8n_chat_input, {"action": "sendMessage", "sessionId": "s"}, LIMITS)
    assert (err.code, err.status) == ("bad_request", 400)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1], "The body must be a JSON object."),  # never the name of a model class
        ("text", "The body must be a JSON object."),
        (None, "The body must be a JSON object."),
        ({"message": 5}, "Invalid field 'message': Input should be a valid string."),
        ({}, "Invalid field 'message': Field required."),
        (
            {"message": "m", "metadata": [1]},
            "Invalid field 'metadata': Input should be a valid dictionary.",
        ),
    ],
)
def test_a_shape_error_names_the_field_and_the_reason(obj: object, message: str) -> None:
    err = refused(chat_input, obj, LIMITS)
    assert (err.code, err.status, err.message) == ("bad_request", 400, message)


@pytest.mark.parametrize("parse", [chat_input, session_input, n8n_chat_input])
@pytest.mark.parametrize("obj", [[], [1], "s", 1, 1.5, True])
def test_no_endpoint_names_a_model_class_for_a_non_object_body(parse: Any, obj: object) -> None:
    err = refused(parse, obj, LIMITS)
    assert (err.code, err.message) == ("bad_request", "The body must be a JSON object.")


def test_metadata_size_is_counted_in_utf8_with_compact_separators() -> None:
    accented = {"k": "é" * 1000}  # 2,008 bytes as compact UTF-8; 6,008 as ASCII escapes
    assert normalise_metadata(accented, LIMITS) == accented
    many = {str(i): i for i in range(300)}
    size = len(json.dumps(many, separators=(",", ":")))
    assert normalise_metadata(many, InputLimits(max_metadata_bytes=size)) == many
    assert refused(normalise_metadata, many, InputLimits(max_metadata_bytes=size - 1)).status == 400


@pytest.mark.parametrize(
    "ctype",
    ["application/json; foo=bar; charset=latin-1", "application/json; charset=Xutf-8"],
)
def test_every_charset_parameter_is_checked(ctype: str) -> None:
    err = refused(parse_chat_body, b'{"message": "hi"}', ctype, LIMITS)
    assert (err.code, err.status) == ("unsupported_media_type", 415)


@pytest.mark.parametrize("raw", [b"", b"   "])
def test_an_empty_body_is_not_json_unless_the_caller_allows_it(raw: bytes) -> None:
    err = refused(parse_json_object, raw, "application/json", LIMITS)
    assert (err.code, err.status, err.message) == (
        "bad_request",
        400,
        "The body is not valid JSON.",
    )
    assert parse_json_object(raw, None, LIMITS, allow_empty=True) == {}


def test_metadata_keys_are_cleaned_but_not_trimmed() -> None:
    assert normalise_metadata({" a\x00 ": {" b ": 1}}, LIMITS) == {" a ": {" b ": 1}}


def test_the_schema_documents_the_limits_that_are_checked() -> None:
    # /openapi.json is built from these models: the figures it shows are the enforced ones
    message = ChatMessage.model_json_schema()["properties"]["message"]
    assert message["minLength"] == 1
    fingerprint = SessionCreate.model_json_schema()["properties"]["fingerprint"]
    assert fingerprint["maxLength"] == MAX_FINGERPRINT_CHARS == 128
    session_id = N8nChatRequest.model_json_schema()["properties"]["sessionId"]
    assert session_id["maxLength"] == MAX_SESSION_ID_CHARS == 128
