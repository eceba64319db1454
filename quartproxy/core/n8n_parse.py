"""Turn n8n's answer bytes into turn events. Sans-IO: feed bytes, get events; no sockets.

n8n answers a chat call in one of two shapes (both with status 200):
- streaming: NDJSON, one `{"type": "begin"|"item"|"end"|"error", "content"?, "metadata"}` per
  line, one begin/item/end group per node run, several groups possible;
- one JSON body (`{"output"|"text"|"message": ...}`, or a one-item list of such).
Both have `Content-Type: application/json`, so the shape is told from the content itself.

The parser emits `Delta` for text and at most one `Error`; after an Error it ignores the rest.
`close()` says how the answer ended: complete, or an Error (error chunk, stream cut before its
`end`, empty or unreadable body).
"""

from __future__ import annotations

import json
from typing import Any

from .events import Delta, Error, TurnEvent

CHUNK_TYPES = frozenset({"begin", "item", "end", "error"})
ANSWER_KEYS = ("output", "text", "message")
MAX_BODY_BYTES = 8 * 1024 * 1024  # a non-streamed JSON answer larger than this is refused
MAX_LINE_BYTES = 1024 * 1024

WORKFLOW_FAILED = "The assistant's workflow failed while answering."
STREAM_CUT = "The assistant's answer was cut off before it finished."
EMPTY_ANSWER = "The assistant returned an empty answer."
UNREADABLE = "The assistant returned an answer that could not be read."


def answer_text(obj: Any) -> str | None:
    """The text of a non-streamed answer, read like the official widget does:
    `output`, then `text`, then `message`; a one-item list is unwrapped."""
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if isinstance(obj, dict):
        if isinstance(obj.get("json"), dict):  # n8n item form {"json": {...}}
            obj = obj["json"]
        for key in ANSWER_KEYS:
            value = obj.get(key)
            if isinstance(value, str):
                return value
            if value is not None and not isinstance(value, dict | list):
                return str(value)
    if isinstance(obj, str):
        return obj
    return None


class N8nAnswerParser:
    """Incremental parser of one n8n answer body."""

    # one per open answer stream (thousands per worker): no per-instance dict
    __slots__ = (
        "_closed",
        "_content_type",
        "_failed",
        "_open_groups",
        "_pending",
        "_seen_end",
        "_streaming",
        "_whole",
        "garbage_lines",
        "text_parts",
    )

    def __init__(self, content_type: str = "application/json") -> None:
        self._content_type = content_type.lower()
        self._pending = b""  # bytes after the last newline
        self._whole: bytearray | None = bytearray()  # kept until the answer proves to be NDJSON
        self._streaming = False
        self._open_groups: set[tuple[Any, Any]] = set()
        self._seen_end = False
        self._failed = False
        self._closed = False
        self.text_parts: list[str] = []
        self.garbage_lines = 0

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def failed(self) -> bool:
        return self._failed

    def feed(self, data: bytes) -> list[TurnEvent]:
        if self._closed or self._failed or not data:
            return []
        if self._whole is not None:
            self._whole += data
            if len(self._whole) > MAX_BODY_BYTES:
                return self._fail(Error("upstream_error", UNREADABLE))
        buf = self._pending + data
        *lines, self._pending = buf.split(b"\n")
        if len(self._pending) > MAX_LINE_BYTES and self._streaming:
            return self._fail(Error("upstream_error", UNREADABLE))
        out: list[TurnEvent] = []
        for line in lines:
            out.extend(self._line(line))
            if self._failed:
                break
        return out

    def close(self) -> list[TurnEvent]:
        """The end of the body. Returns remaining events; an Error when the answer is not whole."""
        if self._closed:
            return []
        out: list[TurnEvent] = []
        if not self._failed and self._pending.strip():
            out.extend(self._line(self._pending))
        self._pending = b""
        self._closed = True
        if self._failed:
            return out
        if self._streaming:
            if self._open_groups or not self._seen_end:
                out.extend(self._fail(Error("upstream_error", STREAM_CUT)))
            return out
        out.extend(self._whole_body())
        return out

    # -- internals ---------------------------------------------------------------------------

    def _fail(self, err: Error) -> list[TurnEvent]:
        self._failed = True
        self._whole = None
        return [err]

    def _line(self, raw: bytes) -> list[TurnEvent]:
        line = raw.strip()
        if not line:
            return []
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        if not (isinstance(obj, dict) and obj.get("type") in CHUNK_TYPES):
            if self._streaming:
                self.garbage_lines += 1  # tolerated: logged by the caller, never shown
            return []
        if not self._streaming:
            self._streaming = True
            self._whole = None
        return self._chunk(obj)

    def _chunk(self, obj: dict[str, Any]) -> list[TurnEvent]:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        group = (meta.get("nodeId"), meta.get("runIndex"))
        kind = obj["type"]
        if kind == "begin":
            self._open_groups.add(group)
            return []
        if kind == "end":
            self._open_groups.discard(group)
            self._seen_end = True
            return []
        if kind == "error":
            return self._fail(Error("upstream_error", WORKFLOW_FAILED))
        content = obj.get("content")
        if content is None:
            return []
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        if not text:
            return []
        self.text_parts.append(text)
        return [Delta(text)]

    def _whole_body(self) -> list[TurnEvent]:
        body = bytes(self._whole or b"")
        self._whole = None
        if not body.strip():
            return self._fail(Error("upstream_error", EMPTY_ANSWER))
        try:
            obj: Any = json.loads(body)
        except (ValueError, RecursionError):
            obj = None
            if self._content_type.startswith("text/plain"):
                try:
                    obj = body.decode("utf-8")
                except UnicodeDecodeError:
                    obj = None
        text = answer_text(obj)
        if text is None:
            return self._fail(Error("upstream_error", UNREADABLE))
        if not text:
            return self._fail(Error("upstream_error", EMPTY_ANSWER))
        self.text_parts.append(text)
        return [Delta(text)]


def parse_history(obj: Any) -> list[tuple[str, str]]:
    """n8n's `loadPreviousSession` answer → [(role, text)], oldest first. Accepts
    `{"data": [...]}` or a bare list of LangChain-serialised messages (or `{"role","text"}`-ish
    dicts); anything unreadable is skipped, never raised."""
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], dict) and "data" in obj[0]:
        obj = obj[0]
    items = obj.get("data") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        return []
    out: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        ident = item.get("id")
        kwargs = item.get("kwargs") if isinstance(item.get("kwargs"), dict) else item
        assert isinstance(kwargs, dict)
        content = kwargs.get("content", kwargs.get("text"))
        if not isinstance(content, str):
            continue
        kind = (
            ident[-1] if isinstance(ident, list) and ident else item.get("type", item.get("role"))
        )
        kind = str(kind).lower()
        if kind in ("humanmessage", "human", "user"):
            out.append(("user", content))
        elif kind in ("aimessage", "ai", "assistant"):
            out.append(("assistant", content))
    return out


def langchain_message(role: str, text: str) -> dict[str, Any]:
    """One message in the LangChain-serialised form the official widget reads."""
    name = "HumanMessage" if role == "user" else "AIMessage"
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain_core", "messages", name],
        "kwargs": {"content": text, "additional_kwargs": {}, "response_metadata": {}},
    }
