"""Render turn events for each channel: SSE text, NDJSON lines in n8n's chunk format, and
WebSocket frames. Pure: bytes/str out, no IO."""

from __future__ import annotations

import json
from typing import Any

from .events import Delta, End, Error, Start, TurnEvent, event_id

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

SSE_PING = b": ping\n\n"


def sse(event: TurnEvent, message_id: str, seq: int) -> bytes:
    """One SSE event. `data` is single-line JSON, so no payload can break the framing."""
    return (
        f"id: {event_id(message_id, seq)}\nevent: {event.name}\ndata: {_dumps(event.data())}\n\n"
    ).encode()


def sse_retry(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


def ndjson(event: TurnEvent) -> bytes:
    """n8n's own streaming chunk format, so the official widget can read it unchanged."""
    chunk: dict[str, Any]
    if isinstance(event, Start):
        chunk = {"type": "begin", "metadata": event.data()}
    elif isinstance(event, Delta):
        chunk = {"type": "item", "content": event.text, "metadata": {}}
    elif isinstance(event, End):
        chunk = {"type": "end", "metadata": {"message_id": event.message_id}}
    elif isinstance(event, Error):
        chunk = {"type": "error", "content": event.message, "metadata": {"code": event.code}}
    else:  # pragma: no cover - exhaustive over TurnEvent
        raise TypeError(event)
    return (_dumps(chunk) + "\n").encode()


def ws_frame(event: TurnEvent, message_id: str, seq: int) -> str:
    return _dumps({"type": event.name, "id": event_id(message_id, seq), **event.data()})


def json_bytes(obj: Any) -> bytes:
    return _dumps(obj).encode()
