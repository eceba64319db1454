"""The WebSocket frame rules (core/ws_protocol.py): plain values, no server."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.core.ws_protocol import (
    PING_FRAME,
    PONG_FRAME,
    Auth,
    BadFrame,
    Message,
    Ping,
    Pong,
    error_frame,
    parse_frame,
    ready_frame,
)

MAX = 1024


def test_auth_frame() -> None:
    frame = parse_frame('{"type": "auth", "token": " abc.def.ghi ", "fingerprint": "fp"}', MAX)
    assert frame == Auth("abc.def.ghi", "fp")
    assert parse_frame('{"type": "auth", "token": "t"}', MAX) == Auth("t", None)
    assert parse_frame('{"type": "auth", "token": "t", "fingerprint": ""}', MAX) == Auth("t", None)


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "auth"}',
        '{"type": "auth", "token": ""}',
        '{"type": "auth", "token": "   "}',
        '{"type": "auth", "token": 7}',
        '{"type": "auth", "token": "t", "fingerprint": 1}',
    ],
)
def test_bad_auth_frames(raw: str) -> None:
    frame = parse_frame(raw, MAX)
    assert isinstance(frame, BadFrame)
    assert frame.code == "bad_request"


def test_message_frame_is_passed_whole_to_the_body_check() -> None:
    obj = {"type": "message", "message": "hi", "metadata": {"a": 1}, "extra": True}
    assert parse_frame(json.dumps(obj), MAX) == Message(obj)


def test_ping_and_pong() -> None:
    assert parse_frame('{"type": "ping"}', MAX) == Ping()
    assert parse_frame('{"type": "pong", "t": 1}', MAX) == Pong()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x00\x01", "bad_request"),
        (None, "bad_request"),
        ("", "bad_request"),
        ("{", "bad_request"),
        ("[]", "bad_request"),
        ("null", "bad_request"),
        ('"message"', "bad_request"),
        ("{}", "bad_request"),
        ('{"type": 3}', "bad_request"),
        ('{"type": "shout"}', "bad_request"),
        ("[" * 100_000, "payload_too_large"),
        ('{"type": "message", "message": "' + "é" * 600 + '"}', "payload_too_large"),
    ],
)
def test_everything_else_is_a_bad_frame(raw: str | bytes | None, code: str) -> None:
    frame = parse_frame(raw, MAX)
    assert isinstance(frame, BadFrame)
    assert frame.code == code
    assert frame.message.endswith(".")


def test_deep_nesting_within_the_size_limit_is_a_bad_frame_not_a_crash() -> None:
    frame = parse_frame("[" * 5000 + "]" * 5000, 20_000)
    assert isinstance(frame, BadFrame)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_parse_frame_never_raises(raw: str | bytes) -> None:
    parse_frame(raw, 200)


def test_server_frames() -> None:
    assert json.loads(PING_FRAME) == {"type": "ping"}
    assert json.loads(PONG_FRAME) == {"type": "pong"}
    assert json.loads(ready_frame("s-1")) == {"type": "ready", "session_id": "s-1"}
    assert json.loads(error_frame("busy", "Wait.")) == {
        "type": "error",
        "code": "busy",
        "message": "Wait.",
    }
    assert json.loads(error_frame("rate_limited", "Slow down.", 0.2))["retry_after"] == 1
    assert json.loads(error_frame("rate_limited", "Slow down.", 12.01))["retry_after"] == 13
    assert "ü" in error_frame("x", "Grüße")  # UTF-8 text, not \u escapes
