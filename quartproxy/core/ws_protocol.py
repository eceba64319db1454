"""The WebSocket channel's frames (contract: `WS /api/v1/chat/ws`). Pure: text in, values out.

Client → server, one JSON object per text frame:
    {"type": "auth", "token": "<JWT>", "fingerprint"?: "..."}   first frame, once
    {"type": "message", "message": "...", "metadata"?: {...}}    one chat turn
    {"type": "ping"}                                             answered with {"type": "pong"}
    {"type": "pong"}                                             ignored (answer to our ping)
Server → client: `ready` after a good auth frame, the turn events rendered by
`render.ws_frame` (start/delta/end/error, the same fields as the SSE events), `error` frames for
refused frames (`code`, `message`, `retry_after`?), and `ping` heartbeats.

Anything else is a `BadFrame`: the shell answers it with an error frame and keeps the socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import retry_seconds

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Close codes. 4401 mirrors HTTP 401 in the private-use range (RFC 6455 §7.4.2).
CLOSE_UNAUTHORIZED = 4401
CLOSE_GOING_AWAY = 1001  # server shutdown
CLOSE_TRY_AGAIN = 1013  # the session store is unavailable

PING_FRAME = _dumps({"type": "ping"})
PONG_FRAME = _dumps({"type": "pong"})


@dataclass(frozen=True, slots=True)
class Auth:
    token: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Message:
    body: dict[str, Any]  # the frame itself: checked by guard.chat_body like an HTTP body


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class BadFrame:
    code: str
    message: str


ClientFrame = Auth | Message | Ping | Pong | BadFrame


def parse_frame(data: str | bytes | None, max_bytes: int) -> ClientFrame:
    """One client frame. Never raises."""
    if not isinstance(data, str):
        return BadFrame("bad_request", "Frames must be JSON text, not binary.")
    if len(data) > max_bytes or len(data.encode("utf-8", "surrogatepass")) > max_bytes:
        return BadFrame("payload_too_large", f"A frame may hold at most {max_bytes} bytes.")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return BadFrame("bad_request", "The frame is not valid JSON.")
    if not isinstance(obj, dict):
        return BadFrame("bad_request", "A frame must be a JSON object.")
    kind = obj.get("type")
    if kind == "message":
        return Message(obj)
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    if kind == "auth":
        token = obj.get("token")
        fingerprint = obj.get("fingerprint")
        if not isinstance(token, str) or not token.strip():
            return BadFrame("bad_request", "The auth frame needs a `token` string.")
        if fingerprint is not None and not isinstance(fingerprint, str):
            return BadFrame("bad_request", "`fingerprint` must be a string.")
        return Auth(token.strip(), fingerprint or None)
    if not isinstance(kind, str):
        return BadFrame("bad_request", "A frame needs a `type`.")
    return BadFrame("bad_request", "Unknown frame type; expected message or ping.")


def error_frame(code: str, message: str, retry_after: float | None = None) -> str:
    """A refused frame, with the fields of the HTTP error body (retry_after in whole
    seconds, rounded up, as in Retry-After)."""
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if retry_after is not None:
        out["retry_after"] = retry_seconds(retry_after)
    return _dumps(out)


def ready_frame(session_id: str) -> str:
    """Sent once the auth frame is accepted."""
    return _dumps({"type": "ready", "session_id": session_id})
