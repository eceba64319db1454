"""The turn event model: names, data, records and event ids, exactly. Each case was a
surviving mutant of core/events.py."""

from __future__ import annotations

import pytest

from quartproxy.core.events import (
    Delta,
    End,
    Error,
    Start,
    event_id,
    from_record,
    is_final,
    is_final_record,
    parse_event_id,
    to_record,
)

EVENTS = [Start("m1", "s1"), Delta("hé"), End("m1", "hello"), Error("upstream_error", "Oops.")]


def test_names_and_data() -> None:
    assert [e.name for e in EVENTS] == ["start", "delta", "end", "error"]
    assert [e.data() for e in EVENTS] == [
        {"message_id": "m1", "session_id": "s1"},
        {"text": "hé"},
        {"message_id": "m1", "text": "hello"},
        {"code": "upstream_error", "message": "Oops."},
    ]


def test_only_end_and_error_are_final() -> None:
    assert [is_final(e) for e in EVENTS] == [False, False, True, True]


def test_records_round_trip() -> None:
    assert [to_record(e) for e in EVENTS] == [
        {"type": "start", "message_id": "m1", "session_id": "s1"},
        {"type": "delta", "text": "hé"},
        {"type": "end", "message_id": "m1", "text": "hello"},
        {"type": "error", "code": "upstream_error", "message": "Oops."},
    ]
    assert [from_record(to_record(e)) for e in EVENTS] == EVENTS


def test_records_are_read_as_text() -> None:
    assert from_record({"type": "delta", "text": 5}) == Delta("5")
    assert from_record({"type": "end", "message_id": 1, "text": None}) == End("1", "None")


@pytest.mark.parametrize("record", [{}, {"type": "begin"}, {"type": "START"}, {"type": None}])
def test_unknown_records_are_refused(record: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        from_record(record)


def test_event_ids() -> None:
    assert event_id("m1", 0) == "m1:0"
    assert parse_event_id("m1:0") == ("m1", 0)
    assert parse_event_id(" a:b:12 ") == ("a:b", 12)
    assert parse_event_id("m:999999999") == ("m", 999_999_999)


@pytest.mark.parametrize(
    "value", ["", "m1", ":3", "m1:", "m1:-1", "m1:x", "m1:1.0", "m:1000000000", "m: 1"]
)
def test_malformed_event_ids(value: str) -> None:
    assert parse_event_id(value) is None


def test_is_final_record_says_the_same_as_is_final() -> None:
    for event in EVENTS:
        assert is_final_record(to_record(event)) is is_final(event)
    assert is_final_record({"type": "end"}) is True
    assert is_final_record({"type": "error"}) is True
    for record in ({"type": "delta"}, {"type": "start"}, {"type": "End"}, {}, {"kind": "end"}):
        assert is_final_record(record) is False
