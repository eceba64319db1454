"""The body of a sendMessage with files: multipart/form-data as @n8n/chat sends it (`action`,
`sessionId`, `chatInput`, `metadata` as a JSON string, then one `files` part per file), streamed
from the spooled files, never read whole into memory. Its length is known in advance, so n8n
gets a Content-Length (the transport sends the head, then these chunks: transport.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import trio

from ..core import form_encode
from ..core.attachments import Attachment

CHUNK = 64 * 1024


class UploadBody(httpx.AsyncByteStream):
    def __init__(self, fields: Sequence[tuple[str, str]], files: Sequence[Attachment]) -> None:
        self.boundary = form_encode.new_boundary()
        self._pieces: list[bytes | Attachment] = []
        for name, value in fields:
            self._pieces += [
                form_encode.part_head(self.boundary, name, None, None),
                value.encode("utf-8"),
                form_encode.part_tail(),
            ]
        for f in files:
            self._pieces += [
                form_encode.part_head(self.boundary, "files", f.name, f.type),
                f,
                form_encode.part_tail(),
            ]
        self._pieces.append(form_encode.closing(self.boundary))
        self.length = sum(p.size if isinstance(p, Attachment) else len(p) for p in self._pieces)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Every time from the start (each file rewound), so a request never sent can be."""
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            piece.file.seek(0)
            left = piece.size
            while left > 0:
                if piece.on_disk:
                    data = await trio.to_thread.run_sync(piece.file.read, min(CHUNK, left))
                else:
                    data = piece.file.read(min(CHUNK, left))
                if not data:
                    raise httpx.LocalProtocolError("a spooled file is shorter than received")
                left -= len(data)
                yield data


def upload_body(
    session_id: str, message: str, metadata: dict[str, Any], files: Sequence[Attachment]
) -> UploadBody:
    fields = [
        ("action", "sendMessage"),
        ("sessionId", session_id),
        ("chatInput", message),
        ("metadata", json.dumps(metadata, ensure_ascii=False)),
    ]
    return UploadBody(fields, files)
