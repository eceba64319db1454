"""Exact edges of the WebSocket frame rules: the frame size limit in characters and in UTF-8
bytes, the close codes, the frames' exact text. Each case was a surviving mutant of
core/ws_protocol.py."""

from __future__ import annotations

from quartproxy.core import ws_protocol as ws
from quartproxy.core.ws_protocol import Auth, BadFrame, Message, parse_frame


def _frame_of(n: int, filler: str = "x") -> str:
    head = '{"type": "message", "message": "'
    body = filler * ((n - len(head) - 2) // len(filler.encode()))
    return head + body + '"}'


def test_a_frame_of_exactly_max_bytes_is_read_and_one_more_is_refused() -> None:
    at = _frame_of(100)
    assert len(at) == 100
    assert isinstance(parse_frame(at, 100), Message)
    over = parse_frame(at, 99)
    assert isinstance(over, BadFrame)
    assert over.code == "payload_too_large"


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    frame = _frame_of(100, "é")  # 2 bytes a character
    size = len(frame.encode())
    assert size == 100 and len(frame) < 100
    assert isinstance(parse_frame(frame, size), Message)
    assert parse_frame(frame, size - 1) == BadFrame(
        "payload_too_large", f"A frame may hold at most {size - 1} bytes."
    )


def test_a_lone_surrogate_is_counted_not_raised() -> None:
    frame = '{"type": "ping", "x": "\ud800"}'
    assert isinstance(parse_frame(frame, len(frame) + 2), ws.Ping)  # 3 bytes in UTF-8
    assert parse_frame(frame, len(frame) + 1) == BadFrame(
        "payload_too_large", f"A frame may hold at most {len(frame) + 1} bytes."
    )


def test_the_auth_token_is_kept_stripped_and_an_empty_fingerprint_is_none() -> None:
    assert parse_frame('{"type":"auth","token":"\\tt \\n","fingerprint":"f"}', 100) == Auth(
        "t", "f"
    )
    assert parse_frame('{"type":"auth","token":"t","fingerprint":null}', 100) == Auth("t", None)


def test_close_codes() -> None:
    assert (ws.CLOSE_UNAUTHORIZED, ws.CLOSE_GOING_AWAY, ws.CLOSE_TRY_AGAIN) == (4401, 1001, 1013)


def test_server_frames_are_compact_json() -> None:
    assert ws.PING_FRAME == '{"type":"ping"}'
    assert ws.PONG_FRAME == '{"type":"pong"}'
    assert ws.ready_frame("s") == '{"type":"ready","session_id":"s"}'
    assert (
        ws.error_frame("c", "m", 0.0) == '{"type":"error","code":"c","message":"m","retry_after":1}'
    )
    assert ws.error_frame("c", "m") == '{"type":"error","code":"c","message":"m"}'


def test_each_refusal_has_its_code_and_message() -> None:
    assert parse_frame(b"{}", 100) == BadFrame(
        "bad_request", "Frames must be JSON text, not binary."
    )
    assert parse_frame("{", 100) == BadFrame("bad_request", "The frame is not valid JSON.")
    assert parse_frame("[]", 100) == BadFrame("bad_request", "A frame must be a JSON object.")
    assert parse_frame("{}", 100) == BadFrame("bad_request", "A frame needs a `type`.")
    assert parse_frame('{"type": "x"}', 100) == BadFrame(
        "bad_request", "Unknown frame type; expected message or ping."
    )
