"""What a file is, from its bytes: magic numbers of the image and PDF types, and plain text as
valid UTF-8 without control bytes. Pure and streamed (`TypeCheck` is fed a file's chunks), so a
file whose bytes disagree with its declared type is refused while it arrives.

Only the types listed in `KNOWN` can be allowed (ATTACH_ALLOWED_TYPES): a type the gateway
cannot recognise from its bytes is never accepted on the strength of its declared name.
"""

from __future__ import annotations

import codecs

from ..errors import ApiError

PNG, JPEG, GIF, WEBP, PDF, TEXT = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)
KNOWN = frozenset({PNG, JPEG, GIF, WEBP, PDF, TEXT})
ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG}
HEAD_BYTES = 12  # enough for every signature below
# C0 controls other than tab, LF, FF, CR (and DEL): binary, not text.
_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"


def normalise_type(declared: str) -> str:
    """A declared Content-Type, lower-cased, without parameters, aliases resolved."""
    media = declared.split(";", 1)[0].strip().lower()
    return ALIASES.get(media, media)


def magic_type(head: bytes) -> str | None:
    """The binary type whose signature starts `head` (at least HEAD_BYTES, or the whole file)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def type_not_allowed() -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        "This type of file is not accepted here.",
        reason="type_not_allowed",
        public_reason="type_not_allowed",
    )


def type_mismatch() -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        "A file's content does not match its type.",
        reason="type_mismatch",
        public_reason="type_mismatch",
    )


class TypeCheck:
    """One file: refuses (415) at once when the declared type is not allowed, while its bytes
    come when they disagree with that type, at `finish` when a text file ends mid-character."""

    def __init__(self, declared: str, allowed: frozenset[str]) -> None:
        self.type = normalise_type(declared)
        if self.type not in allowed or self.type not in KNOWN:
            raise type_not_allowed()
        self._head = b""
        self._decided = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")() if self.type == TEXT else None

    def feed(self, data: bytes) -> None:
        if not self._decided:
            self._head += data[: HEAD_BYTES - len(self._head)]
            if len(self._head) >= HEAD_BYTES:
                self._decide()
        if self._utf8 is not None:
            self._text(data, final=False)

    def finish(self) -> str:
        """The checked type, once the whole file was fed."""
        if not self._decided:
            self._decide()
        if self._utf8 is not None:
            self._text(b"", final=True)
        return self.type

    def _decide(self) -> None:
        self._decided = True
        found = magic_type(self._head)
        if found != (None if self.type == TEXT else self.type):
            raise type_mismatch()

    def _text(self, data: bytes, *, final: bool) -> None:
        assert self._utf8 is not None
        try:
            self._utf8.decode(data, final)
        except UnicodeDecodeError:
            raise type_mismatch() from None
        if data.translate(None, _CONTROLS) != data:
            raise type_mismatch()
