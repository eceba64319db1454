"""A push-style, streamed `multipart/form-data` parser (RFC 7578 / RFC 2046), loop-free and pure.

Fed the request body's chunks as they arrive (`feed`), it returns events: `PartStart` (the
part's name, filename and declared type), `PartData` (bytes of that part, in order), `PartEnd`;
`close` at the end of the body checks that the final boundary was seen. No part is ever held
whole: at most one chunk plus the delimiter's length (less one byte) is kept, and part headers
are held only up to `max_header_bytes`.

Every limit is checked here, while the bytes come, so a body is refused as soon as it breaks
one: the number of file parts (413 `too_many_files`), the bytes of one file (413
`file_too_large`), of all files (413 `total_too_large`), the number and size of plain fields
(413 `payload_too_large`), the size of a part's headers and of the preamble (400: no browser
sends big ones, so this is a malformed or hostile body). Anything else that is not
`multipart/form-data` as browsers send it is 400 `bad_request`.

Strictness: a delimiter (CRLF `--` boundary) inside a part's data ends the part (RFC 2046 says
the boundary must not occur in the data; browsers choose one that does not); what follows a
delimiter must be CRLF (next part) or `--` (the end), anything else is 400. A virtual CRLF is
put before the first byte, so the first delimiter needs none (and a preamble is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ApiError

MAX_BOUNDARY = 70  # RFC 2046


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    max_files: int
    max_file_bytes: int
    max_total_bytes: int  # all file bytes together
    max_fields: int = 16
    max_field_bytes: int = 64 * 1024
    max_header_bytes: int = 8 * 1024  # one part's header block; also bounds the preamble


@dataclass(frozen=True, slots=True)
class PartStart:
    name: str
    filename: str | None  # None: a plain field; "" is a file input left empty
    content_type: str  # declared, lower-cased, without parameters ("" when absent)


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def bad_multipart(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def too_large(reason: str, message: str) -> ApiError:
    return ApiError(413, "payload_too_large", message, public_reason=reason, reason=reason)


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data; boundary=...` Content-Type, else 400."""
    media, params = split_header_value(content_type or "")
    if media != "multipart/form-data":
        raise bad_multipart("Expected a multipart/form-data body.")
    boundary = params.get("boundary", "")
    if not 1 <= len(boundary) <= MAX_BOUNDARY or not boundary.isascii() or boundary.endswith(" "):
        raise bad_multipart("The multipart body has no usable boundary.")
    return boundary.encode("ascii")


def split_header_value(value: str) -> tuple[str, dict[str, str]]:
    """`type; a=1; b="x;y"` -> ("type", {"a": "1", "b": "x;y"}); names lower-cased. Quoted
    strings may hold `;` and backslash escapes. A parameter given twice is malformed."""
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise bad_multipart("A part header has a parameter without a value.")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            out: list[str] = []
            i += 1
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            if i >= n:
                raise bad_multipart("A part header has an unterminated quoted value.")
            i += 1
            val = "".join(out)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if not name or name in params:
            raise bad_multipart("A part header has an empty or repeated parameter.")
        params[name] = val
    return head.strip().lower(), params


def parse_part_headers(block: bytes) -> PartStart:
    """A part's header block (without the blank line) -> PartStart, else 400."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_multipart("A part header is not valid UTF-8.") from None
    headers: dict[str, str] = {}
    for line in text.split("\r\n") if text else ():
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name or name in headers or any(c in value for c in "\r\n\0"):
            raise bad_multipart("A part has a malformed header.")
        headers[name] = value.strip()
    disposition, params = split_header_value(headers.get("content-disposition", ""))
    if disposition != "form-data" or "name" not in params:
        raise bad_multipart("Each part needs `Content-Disposition: form-data; name=...`.")
    ctype, _ = split_header_value(headers.get("content-type", ""))
    return PartStart(params["name"], params.get("filename"), ctype)


_PREAMBLE, _HEADERS, _BODY, _AFTER, _DONE = range(5)


class MultipartParser:
    """One body. `feed(chunk) -> events`, then `close()` at the end of the body; an ApiError
    (400 or 413) ends the parse, and the parser must not be fed again."""

    def __init__(self, boundary: bytes, limits: MultipartLimits) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.limits = limits
        self._buf = bytearray(b"\r\n")
        self._state = _PREAMBLE
        self._part: PartStart | None = None
        self._part_bytes = 0
        self.files = 0
        self.fields = 0
        self.file_bytes = 0

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += chunk
        events: list[Event] = []
        progress = True
        while progress:
            progress = self._step(events)
        return events

    def close(self) -> list[Event]:
        if self._state != _DONE:
            raise bad_multipart("The multipart body ended before its final boundary.")
        return []

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def _step(self, events: list[Event]) -> bool:
        """One transition when the buffer allows it; False when more bytes are needed."""
        buf, state = self._buf, self._state
        if state == _DONE:
            buf.clear()  # the epilogue is ignored
            return False
        if state == _PREAMBLE:
            # Refused the same whatever the chunking: when the delimiter starts past the
            # limit, or cannot start before it any more.
            at = buf.find(self.delimiter)
            keep = len(self.delimiter) - 1
            if at > self.limits.max_header_bytes or (
                at < 0 and len(buf) - keep > self.limits.max_header_bytes
            ):
                raise bad_multipart("The multipart body does not start with its boundary.")
            if at < 0:
                return False
            del buf[: at + len(self.delimiter)]
            self._state = _AFTER
            return True
        if state == _AFTER:
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = _DONE
            elif buf[:2] == b"\r\n":
                self._state = _HEADERS
            else:
                raise bad_multipart("A multipart boundary is followed by unexpected bytes.")
            del buf[:2]
            return True
        if state == _HEADERS:
            end = 0 if buf[:2] == b"\r\n" else buf.find(b"\r\n\r\n")
            limit = self.limits.max_header_bytes
            if end > limit or (end < 0 and len(buf) - 3 > limit):
                raise bad_multipart("A part's headers are too large.")
            if end < 0:
                return False
            part = parse_part_headers(bytes(buf[:end]))
            del buf[: end + (2 if end == 0 else 4)]
            self._open(part)
            events.append(part)
            self._state = _BODY
            return True
        # _BODY: pass on everything that cannot be the start of a delimiter
        at = buf.find(self.delimiter)
        if at >= 0:
            if at:
                events.append(self._data(bytes(buf[:at])))
            del buf[: at + len(self.delimiter)]
            events.append(PartEnd())
            self._state = _AFTER
            return True
        keep = len(self.delimiter) - 1
        if len(buf) > keep:
            cut = len(buf) - keep
            events.append(self._data(bytes(buf[:cut])))
            del buf[:cut]
        return False

    def _open(self, part: PartStart) -> None:
        lim = self.limits
        if part.filename is not None:
            self.files += 1
            if self.files > lim.max_files:
                raise too_large("too_many_files", f"At most {lim.max_files} files per message.")
        else:
            self.fields += 1
            if self.fields > lim.max_fields:
                raise too_large("too_many_fields", "The message has too many form fields.")
        self._part = part
        self._part_bytes = 0

    def _data(self, data: bytes) -> PartData:
        lim, part = self.limits, self._part
        assert part is not None
        if part.filename is None:
            self._part_bytes += len(data)
            if self._part_bytes > lim.max_field_bytes:
                raise too_large("field_too_large", "A form field of the message is too large.")
            return PartData(data)
        # The limit whose byte is crossed first refuses, whatever the chunking (a tie: the file's).
        file_room = lim.max_file_bytes - self._part_bytes
        total_room = lim.max_total_bytes - self.file_bytes
        if len(data) > min(file_room, total_room):
            if file_room <= total_room:
                raise too_large("file_too_large", "A file is larger than this chat accepts.")
            raise too_large("total_too_large", "The files together are larger than allowed.")
        self._part_bytes += len(data)
        self.file_bytes += len(data)
        return PartData(data)
