"""The attachment rules of one site, as one frozen value: whether files are accepted, how many,
how big, of which types, and how much of each is kept in memory before spilling to disk.

Built from the global ATTACH_* settings today (`AttachmentPolicy.from_settings`); a per-site
registry builds one per site the same way and hands it to the channel that parses the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from .multipart import MultipartLimits
from .sniff import KNOWN, normalise_type


@dataclass(frozen=True, slots=True)
class AttachmentPolicy:
    enabled: bool
    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    allowed_types: frozenset[str]
    spool_memory_bytes: int  # per file; the rest goes to a temporary file

    @classmethod
    def from_settings(cls, settings: Any) -> AttachmentPolicy:
        return cls(
            enabled=settings.attach_enabled,
            max_files=settings.attach_max_files,
            max_file_bytes=settings.attach_max_bytes,
            max_total_bytes=settings.attach_max_total_bytes,
            allowed_types=settings.attach_allowed_types,
            spool_memory_bytes=settings.attach_spool_memory_bytes,
        )

    def multipart_limits(self, max_field_bytes: int) -> MultipartLimits:
        return MultipartLimits(
            max_files=self.max_files,
            max_file_bytes=self.max_file_bytes,
            max_total_bytes=self.max_total_bytes,
            max_field_bytes=max_field_bytes,
        )

    def body_ceiling(self, max_field_bytes: int) -> int:
        """The most bytes a multipart body may have: the files, the fields, and room for the
        part headers and boundaries (the parser bounds each part's headers too)."""
        overhead = (self.max_files + 16) * 9 * 1024
        return self.max_total_bytes + 4 * max_field_bytes + overhead


@dataclass(frozen=True, slots=True)
class Attachment:
    """One received file: checked, hashed, spooled. `file` is owned by whoever holds the
    turn (the request until the turn starts, then the turn runner, which closes it)."""

    name: str
    type: str  # checked against the bytes (core.sniff)
    size: int
    sha256: str  # hex; in the upstream JWT's `files` claim
    file: IO[bytes]
    on_disk: bool  # larger than the spool's memory part: read it in a worker thread


def close_all(files: tuple[Attachment, ...] | list[Attachment]) -> None:
    for f in files:
        f.file.close()


def parse_types(value: str) -> frozenset[str]:
    """ATTACH_ALLOWED_TYPES: a comma-separated list of the types the gateway can check."""
    types = frozenset(normalise_type(t) for t in value.split(",") if t.strip())
    unknown = sorted(types - KNOWN)
    if unknown:
        raise ValueError(f"cannot check {', '.join(unknown)} (known: {', '.join(sorted(KNOWN))})")
    return types
