from __future__ import annotations

import json

import pytest

from quartproxy.core import render
from quartproxy.core.events import (
    Delta,
    End,
    Error,
    Start,
    event_id,
    from_record,
    is_final,
    parse_event_id,
    to_record,
)

EVENTS = [
    Start("m1", "s1"),
    Delta("a\nb\r\n\n: not a comment"),
    End("m1", "ab"),
    Error("busy", "x"),
]


@pytest.mark.parametrize("event", EVENTS)
def test_record_round_trip(event) -> None:  # type: ignore[no-untyped-def]
    assert from_record(json.loads(json.dumps(to_record(event)))) == event


def test_unknown_record() -> None:
    with pytest.raises(ValueError):
        from_record({"type": "nope"})


def test_final() -> None:
    assert [is_final(e) for e in EVENTS] == [False, False, True, True]


def test_sse_frames_are_single_data_lines_even_with_newlines_in_text() -> None:
    frame = render.sse(Delta("line1\n\nevent: end\ndata: x"), "m1", 3).decode()
    assert frame.endswith("\n\n")
    lines = frame[:-2].split("\n")
    assert lines[0] == "id: m1:3"
    assert lines[1] == "event: delta"
    assert len(lines) == 3 and lines[2].startswith("data: ")
    assert json.loads(lines[2][6:]) == {"text": "line1\n\nevent: end\ndata: x"}


def test_sse_keeps_unicode_readable() -> None:
    assert "héllo 😀" in render.sse(Delta("héllo 😀"), "m", 1).decode()


def test_ndjson_is_n8n_chunk_format() -> None:
    chunks = [json.loads(render.ndjson(e)) for e in EVENTS]
    assert chunks[0] == {"type": "begin", "metadata": {"message_id": "m1", "session_id": "s1"}}
    assert chunks[1]["type"] == "item" and chunks[1]["content"] == EVENTS[1].text
    assert chunks[2] == {"type": "end", "metadata": {"message_id": "m1"}}
    assert chunks[3] == {"type": "error", "content": "x", "metadata": {"code": "busy"}}
    assert all(render.ndjson(e).count(b"\n") == 1 for e in EVENTS)


def test_ws_frames_carry_the_sse_fields() -> None:
    frame = json.loads(render.ws_frame(End("m1", "ab"), "m1", 4))
    assert frame == {"type": "end", "id": "m1:4", "message_id": "m1", "text": "ab"}


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("m1:0", ("m1", 0)),
        ("a:b:12", ("a:b", 12)),
        (" m:3 ", ("m", 3)),
        ("m1", None),
        (":3", None),
        ("m:-1", None),
        ("m:x", None),
        ("m:" + "9" * 10, None),
    ],
)
def test_parse_event_id(value: str, parsed: tuple[str, int] | None) -> None:
    assert parse_event_id(value) == parsed


def test_event_id_round_trip() -> None:
    assert parse_event_id(event_id("abc", 7)) == ("abc", 7)
