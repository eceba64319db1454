"""Input rules for every body the gateway accepts. Pure: bytes and strings in, values out.

One place decides what a request body may hold, for every channel (HTTP JSON bodies, WebSocket
frames, the @n8n/chat-compatible endpoint), so the channels cannot drift apart. Anything wrong
raises `ApiError` (errors.py) with the contract's status and code; nothing else escapes (the
property tests in tests/unit/test_messages_properties.py hold us to that).

Shapes are checked with pydantic models in strict mode (they are also the request schemas of
/openapi.json), called by hand rather than through a framework's decorators: the same
validation must run on WebSocket frames, and the size / content-type / malformed-JSON decisions
(413, 415, 400) have to happen before any schema in one order we control, each answered with
the contract's error body.

Text rules (core.text.clean_text): controls, lone surrogates and invisible format characters
removed (bidi overrides, zero-width spaces... but not what emoji and scripts need), newlines
unified, NFC, trimmed; a message's length is checked after all that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ..errors import ApiError
from .text import clean_text as clean_text

MAX_METADATA_DEPTH = 5
MAX_FINGERPRINT_CHARS = 128
MAX_SESSION_ID_CHARS = 128
MAX_USER_TOKEN_CHARS = 8192  # core.identity.MAX_TOKEN_CHARS


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_message_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    max_metadata_bytes: int = 2048
    max_metadata_depth: int = MAX_METADATA_DEPTH

    @classmethod
    def from_settings(cls, settings: Any) -> InputLimits:
        return cls(
            max_message_chars=settings.max_message_chars,
            max_body_bytes=settings.max_body_bytes,
            max_metadata_bytes=settings.max_metadata_bytes,
        )


# -- text: core.text (re-exported: callers and tests know clean_text from here) -------------


def normalise_message(text: str, limits: InputLimits) -> str:
    """The chat message as it will be screened, forwarded and stored."""
    cleaned = clean_text(text)
    if not cleaned:
        raise bad_request("The message is empty.")
    if len(cleaned) > limits.max_message_chars:
        raise bad_request(f"The message is longer than {limits.max_message_chars} characters.")
    return cleaned


def normalise_fingerprint(value: str | None) -> str | None:
    """The widget's fingerprint: at most 128 printable characters; empty means none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("The fingerprint must be a string.")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_FINGERPRINT_CHARS or not value.isprintable():
        raise bad_request(
            f"The fingerprint must be at most {MAX_FINGERPRINT_CHARS} printable characters."
        )
    return value


def normalise_session_id(value: str) -> str:
    """A client-chosen session id (the official widget's `sessionId`)."""
    value = value.strip()
    if not value or len(value) > MAX_SESSION_ID_CHARS or not value.isprintable():
        raise bad_request(
            f"The sessionId must be 1 to {MAX_SESSION_ID_CHARS} printable characters."
        )
    return value


# -- metadata ---------------------------------------------------------------------------------


def _depth_and_clean(value: Any, max_depth: int) -> Any:
    """A copy of `value` with every string cleaned (not trimmed); ApiError when it nests
    deeper than `max_depth` containers. Iterative, so no input can exhaust the stack."""
    root: list[Any] = [None]
    # (source, target container, key in target, depth of source)
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        src, parent, key, depth = stack.pop()
        if isinstance(src, dict):
            if depth > max_depth:
                raise bad_request(f"The metadata is nested deeper than {max_depth} levels.")
            dst: Any = {}
            for k, v in src.items():
                ck = clean_text(k, trim=False) if isinstance(k, str) else str(k)
                dst[ck] = None
                stack.append((v, dst, ck, depth + 1))
        elif isinstance(src, list):
            if depth > max_depth:
                raise bad_request(f"The metadata is nested deeper than {max_depth} levels.")
            dst = [None] * len(src)
            for i, v in enumerate(src):
                stack.append((v, dst, i, depth + 1))
        elif isinstance(src, str):
            dst = clean_text(src, trim=False)
        elif isinstance(src, float) and not math.isfinite(src):
            raise bad_request("The metadata holds a number JSON cannot represent.")
        elif src is None or isinstance(src, bool | int | float):
            dst = src
        else:
            raise bad_request("The metadata holds a value JSON cannot represent.")
        parent[key] = dst
    return root[0]


# The fields of the body sent to n8n beside `metadata`. The visitor chooses the metadata, so a
# workflow that merges it into the body (`{...$json.body, ...$json.body.metadata}`) would let a
# visitor pick another conversation's sessionId, i.e. read or write its memory. Refused (any
# case) rather than renamed or dropped: nothing legitimate needs them, and a silent change
# would hide the attempt.
RESERVED_METADATA_KEYS = frozenset({"action", "sessionid", "chatinput"})


def normalise_metadata(value: Any, limits: InputLimits) -> dict[str, Any]:
    """A JSON object of at most `max_metadata_bytes` (compact UTF-8) and `max_metadata_depth`
    levels (the object itself is level 1); strings cleaned like the message (not trimmed);
    no top-level key from RESERVED_METADATA_KEYS."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("The metadata must be a JSON object.")
    cleaned = _depth_and_clean(value, limits.max_metadata_depth)
    reserved = sorted(k for k in cleaned if k.casefold() in RESERVED_METADATA_KEYS)
    if reserved:
        raise bad_request(
            f"The metadata may not hold the key {reserved[0]!r}: action, sessionId and "
            "chatInput are the chat's own fields."
        )
    size = len(json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > limits.max_metadata_bytes:
        raise bad_request(f"The metadata is larger than {limits.max_metadata_bytes} bytes.")
    assert isinstance(cleaned, dict)
    return cleaned


# -- raw bodies -------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_content_type(content_type: str | None) -> None:
    """JSON bodies only: `application/json` or `application/*+json`, UTF-8 if a charset is
    named. Raises 415 unsupported_media_type otherwise."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    ok = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if ok:
        for param in params.split(";"):
            name, _, val = param.partition("=")
            if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in (
                "utf-8",
                "utf8",
            ):
                ok = False
    if not ok:
        raise ApiError(
            415, "unsupported_media_type", "The body must be JSON (Content-Type: application/json)."
        )


def check_size(length: int, limits: InputLimits) -> None:
    if length > limits.max_body_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"The request body is larger than {limits.max_body_bytes} bytes.",
        )


def parse_json_text(raw: bytes | str) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no nesting deep enough to exhaust the parser."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        if text.startswith("\ufeff"):
            text = text[1:]
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError, TypeError):  # JSONDecodeError and UnicodeError too
        raise bad_request("The body is not valid JSON.") from None


def parse_json_object(
    raw: bytes, content_type: str | None, limits: InputLimits, *, allow_empty: bool = False
) -> dict[str, Any]:
    """The checks every JSON body goes through, in the order a client can act on:
    size (413), media type (415), JSON (400), a top-level object (400)."""
    check_size(len(raw), limits)
    if allow_empty and not raw.strip():
        return {}
    check_content_type(content_type)
    obj = parse_json_text(raw)
    if not isinstance(obj, dict):
        raise bad_request("The body must be a JSON object.")
    return obj


# -- bodies -----------------------------------------------------------------------------------


class _Model(BaseModel):
    # Unknown fields are ignored (never forwarded): widgets may add fields in later versions.
    model_config = ConfigDict(strict=True, extra="ignore")


# The request models: they validate every body (via the functions below) and are the schemas
# of /openapi.json (openapi/), so the document cannot drift from what is checked. Lengths and
# sizes are checked after cleaning by normalise_*, with the contract's messages; they appear in
# the schema through `json_schema_extra` (documentation only, no pydantic constraint: that
# would check the raw text first and answer with pydantic's wording).
METADATA_DOC = "JSON object, at most MAX_METADATA_BYTES (2 KB) and 5 levels deep"


class ChatMessage(_Model):
    message: StrictStr = Field(
        description="1..MAX_MESSAGE_CHARS characters after cleaning",
        json_schema_extra={"minLength": 1},
    )
    metadata: dict[str, Any] | None = Field(None, description=METADATA_DOC)
    honeypot: StrictStr | None = Field(
        None, description="The widget's hidden field; a person leaves it empty (bot screen)"
    )


class SessionCreate(_Model):
    fingerprint: StrictStr | None = Field(
        None,
        description="Binds the token to this browser; sent again as X-Chat-Fingerprint",
        json_schema_extra={"maxLength": MAX_FINGERPRINT_CHARS},
    )
    metadata: dict[str, Any] | None = Field(None, description=METADATA_DOC)
    user_token: StrictStr | None = Field(
        None,
        description="Signed visitor: the short JWT the site's backend signed (docs/identity.md)",
        json_schema_extra={"maxLength": MAX_USER_TOKEN_CHARS},
    )


class N8nChatRequest(_Model):
    action: Literal["sendMessage", "loadPreviousSession"]
    sessionId: StrictStr = Field(  # the official widget's field names
        json_schema_extra={"maxLength": MAX_SESSION_ID_CHARS}
    )
    chatInput: StrictStr | None = Field(None, description="Required for `sendMessage`")
    metadata: dict[str, Any] | None = Field(None, description=METADATA_DOC)


REQUEST_MODELS: list[type[BaseModel]] = [ChatMessage, SessionCreate, N8nChatRequest]


def _validate(model: type[_Model], obj: Any) -> Any:
    if not isinstance(obj, dict):  # pydantic's own sentence would name the model class
        raise bad_request("The body must be a JSON object.")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        # Field name and reason only: the offending value is never echoed back.
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise bad_request(
            f"Invalid field {where!r}: {first.get('msg', 'invalid value')}."
        ) from None


@dataclass(frozen=True, slots=True)
class ChatInput:
    message: str
    metadata: dict[str, Any]
    honeypot: str  # "" unless a bot filled the widget's hidden field


@dataclass(frozen=True, slots=True)
class SessionInput:
    fingerprint: str | None
    metadata: dict[str, Any]
    user_token: str | None = None  # checked by core.identity, not here


@dataclass(frozen=True, slots=True)
class N8nChatInput:
    action: str
    session_id: str
    message: str | None  # None for loadPreviousSession
    metadata: dict[str, Any]


def chat_input(obj: Any, limits: InputLimits) -> ChatInput:
    """`{"message": str, "metadata"?: object, "honeypot"?: str}` (HTTP body or WS frame)."""
    m = _validate(ChatMessage, obj)
    return ChatInput(
        message=normalise_message(m.message, limits),
        metadata=normalise_metadata(m.metadata, limits),
        honeypot=clean_text(m.honeypot or "")[:256],
    )


def session_input(obj: Any, limits: InputLimits) -> SessionInput:
    """`{"fingerprint"?: str, "metadata"?: object, "user_token"?: str}`."""
    m = _validate(SessionCreate, obj)
    return SessionInput(
        fingerprint=normalise_fingerprint(m.fingerprint),
        metadata=normalise_metadata(m.metadata, limits),
        user_token=m.user_token or None,
    )


def n8n_chat_input(obj: Any, limits: InputLimits) -> N8nChatInput:
    """The official @n8n/chat widget's body:
    `{"action", "sessionId", "chatInput"?, "metadata"?}`."""
    m = _validate(N8nChatRequest, obj)
    message = None
    if m.action == "sendMessage":
        if m.chatInput is None:
            raise bad_request("Invalid field 'chatInput': Field required.")
        message = normalise_message(m.chatInput, limits)
    return N8nChatInput(
        action=m.action,
        session_id=normalise_session_id(m.sessionId),
        message=message,
        metadata=normalise_metadata(m.metadata, limits),
    )


def parse_chat_body(raw: bytes, content_type: str | None, limits: InputLimits) -> ChatInput:
    return chat_input(parse_json_object(raw, content_type, limits), limits)


def parse_session_body(raw: bytes, content_type: str | None, limits: InputLimits) -> SessionInput:
    """The body is optional: an empty body (with any content type) is `{}`."""
    return session_input(parse_json_object(raw, content_type, limits, allow_empty=True), limits)


def parse_n8n_chat_body(raw: bytes, content_type: str | None, limits: InputLimits) -> N8nChatInput:
    return n8n_chat_input(parse_json_object(raw, content_type, limits), limits)
