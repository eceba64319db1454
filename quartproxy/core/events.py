"""The event model of one chat turn, shared by every channel (SSE, NDJSON, WebSocket).

A turn is `Start, Delta*, (End | Error)`. Event number `seq` counts from 0 (the Start); its
public id is `"<message_id>:<seq>"`, which clients send back as `Last-Event-ID` to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .numbers import parse_uint


@dataclass(frozen=True, slots=True)
class Start:
    message_id: str
    session_id: str
    name = "start"

    def data(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "session_id": self.session_id}


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    name = "delta"

    def data(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class End:
    message_id: str
    text: str
    name = "end"

    def data(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "text": self.text}


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    name = "error"

    def data(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


TurnEvent = Start | Delta | End | Error
FINAL = (End, Error)


FINAL_TYPES = frozenset(kind.name for kind in FINAL)  # the `type` of a final event's record


def is_final(event: TurnEvent) -> bool:
    return isinstance(event, FINAL)


def is_final_record(record: dict[str, Any]) -> bool:
    """Whether a stored record (to_record) is a final event: the one test every backend uses."""
    return record.get("type") in FINAL_TYPES


def to_record(event: TurnEvent) -> dict[str, Any]:
    """A JSON-able form for stores: `{"type": name, **data}`."""
    return {"type": event.name, **event.data()}


def from_record(record: dict[str, Any]) -> TurnEvent:
    kind = record.get("type")
    if kind == "start":
        return Start(str(record["message_id"]), str(record["session_id"]))
    if kind == "delta":
        return Delta(str(record["text"]))
    if kind == "end":
        return End(str(record["message_id"]), str(record["text"]))
    if kind == "error":
        return Error(str(record["code"]), str(record["message"]))
    raise ValueError(f"unknown event type {kind!r}")


def event_id(message_id: str, seq: int) -> str:
    return f"{message_id}:{seq}"


def resume_point(after: int, last_seq: int, finished: bool) -> int:
    """Where a reader that has seen up to `after` continues, in a turn whose events are
    numbered up to `last_seq` (`finished`: that event is final): the events after `after` —
    or, when `after` is at or past the end, from the end. A finished turn then gives its final
    event again (so the reader ends at once, with the end it may have missed), a running one
    its next event. Never a wait for a seq that cannot come: an event id past the end is a
    client's mistake, and was a stream left open forever (issue 13)."""
    if after < last_seq:
        return after
    return last_seq - 1 if finished else last_seq


def parse_event_id(value: str) -> tuple[str, int] | None:
    """`"<message_id>:<seq>"` → (message_id, seq), or None when malformed (seq: 1 to 9 ASCII
    digits, core.numbers)."""
    message_id, sep, text = value.strip().rpartition(":")
    seq = parse_uint(text, max_digits=9) if sep else None
    if seq is None or not message_id:
        return None
    return message_id, seq
