"""Reading a chat message with files: the request body streamed through core.multipart, each
file checked against its bytes (core.sniff), hashed and spooled to a SpooledTemporaryFile
(in memory up to ATTACH_SPOOL_MEMORY_BYTES, then on disk), never `await request.files`.

The body limit of these requests: the app's MAX_CONTENT_LENGTH is MAX_BODY_BYTES (the JSON
limit); `request_class` raises it, for a multipart POST to a chat path only, to the policy's
ceiling (a keyword Quart's Request takes, on the public `app.request_class` hook), so a JSON
body keeps its small limit. Quart checks that limit against the declared Content-Length and
the bytes not yet read; the total is counted here.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import Any

import trio
from quart import request

from ..core.attachments import Attachment, AttachmentPolicy, close_all
from ..core.multipart import MultipartParser, PartData, PartEnd, PartStart, boundary_of, too_large
from ..core.sniff import TypeCheck
from ..errors import ApiError
from ..services import Services

UPLOAD_PATHS = frozenset({"/api/v1/chat/message", "/api/v1/chat/stream", "/api/v1/n8n/chat"})
MAX_NAME_CHARS = 255
UPLOAD_SECONDS = 600.0  # the whole body, however it trickles in


def is_multipart(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "multipart/form-data"


def upload_request_class(base: type[Any], ceiling: int | None) -> type[Any]:
    """`base` (the app's request class) with the multipart ceiling on the chat paths;
    `base` itself when attachments are off."""
    if ceiling is None:
        return base

    class UploadRequest(base):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kw: Any) -> None:
            ctype = args[1].get("Content-Type")  # args: query_string, headers, ...
            if method == "POST" and path in UPLOAD_PATHS and is_multipart(ctype):
                kw["max_content_length"] = ceiling
            super().__init__(method, scheme, path, *args, **kw)

    return UploadRequest


@dataclass
class Upload:
    """The fields (text) and the checked files of one multipart message."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[Attachment] = field(default_factory=list)

    def close(self) -> None:
        close_all(self.files)

    def message_object(self) -> dict[str, Any]:
        """The fields as the JSON body they stand for (`metadata` is a JSON string, as
        @n8n/chat sends it)."""
        obj: dict[str, Any] = dict(self.fields)
        if "metadata" in obj:
            try:
                obj["metadata"] = json.loads(obj["metadata"])
            except ValueError:
                raise ApiError(400, "bad_request", "The metadata field is not JSON.") from None
        return obj


class _Receiver:
    """The sink of the parser's events: fields collected, files checked, hashed, spooled."""

    def __init__(self, policy: AttachmentPolicy) -> None:
        self.policy = policy
        self.upload = Upload()
        self._part: PartStart | None = None
        self._field = bytearray()
        self._check: TypeCheck | None = None
        self._hash = hashlib.sha256()
        self._spool: Any = None
        self._size = 0

    async def take(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            self._start(event)
        elif isinstance(event, PartData):
            await self._data(event.data)
        else:
            self._end()

    def _start(self, part: PartStart) -> None:
        self._part, self._field, self._size = part, bytearray(), 0
        if part.filename is None:
            return
        self._check = TypeCheck(part.content_type, self.policy.allowed_types)
        self._hash = hashlib.sha256()
        # closed by abandon() or, once a turn holds it, by the turn runner
        self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.policy.spool_memory_bytes
        )

    async def _data(self, data: bytes) -> None:
        part = self._part
        assert part is not None
        if part.filename is None:
            self._field += data
            return
        assert self._check is not None
        self._check.feed(data)
        self._hash.update(data)
        self._size += len(data)
        # On the loop, not in a thread: the body must be read as fast as it comes, or it piles
        # up unread in Quart's unbounded body queue (docs/upstream/quart-body-queue-unbounded.md)
        self._spool.write(data)

    def _end(self) -> None:
        part = self._part
        assert part is not None
        self._part = None
        if part.filename is None:
            if part.name in self.upload.fields:
                raise ApiError(400, "bad_request", f"The field {part.name!r} is given twice.")
            try:
                self.upload.fields[part.name] = self._field.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_request", "A form field is not valid UTF-8.") from None
            return
        assert self._check is not None
        checked = self._check.finish()
        spool, self._spool = self._spool, None
        name = part.filename.replace("\\", "/").rsplit("/", 1)[-1][:MAX_NAME_CHARS] or "file"
        on_disk = self._size > self.policy.spool_memory_bytes
        self.upload.files.append(
            Attachment(name, checked, self._size, self._hash.hexdigest(), spool, on_disk)
        )

    def abandon(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self.upload.close()


def policy_for(svc: Services, origin: str) -> AttachmentPolicy:
    """The attachment rules for a site: the global ATTACH_* settings today (a per-site
    registry returns the site's own policy here)."""
    return AttachmentPolicy.from_settings(svc.settings)


class _Body:
    """The request body's chunks: each within BODY_TIMEOUT of the last and the whole within
    UPLOAD_SECONDS (408; Quart's own body timeout covers only `await request.body`), at most
    `ceiling` bytes in all (413)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.total = 0
        gap = float(request.body_timeout or 30)
        self.gap = gap if gap > 0 else 30.0
        self.deadline = trio.current_time() + UPLOAD_SECONDS
        self._chunks = aiter(request.body)

    async def next(self) -> bytes | None:
        with trio.move_on_at(min(self.deadline, trio.current_time() + self.gap)) as waited:
            chunk = await anext(self._chunks, None)
        if waited.cancelled_caught:
            raise ApiError(408, "bad_request", "The upload took too long to arrive.")
        if chunk is not None:
            self.total += len(chunk)
            if self.total > self.ceiling:
                raise too_large("body_too_large", "The message with its files is too large.")
        return chunk


async def read_upload(policy: AttachmentPolicy, max_field_bytes: int) -> Upload:
    """The whole multipart body, read and checked; the caller owns (and must close) the
    files until a turn takes them. Any refusal closes them here. (What is left of a refused
    body is read and dropped by Hypercorn, so the client still reads the refusal: tested.)"""
    body = _Body(policy.body_ceiling(max_field_bytes))
    receiver = _Receiver(policy)
    try:
        boundary = boundary_of(request.headers.get("Content-Type"))
        parser = MultipartParser(boundary, policy.multipart_limits(max_field_bytes))
        while (chunk := await body.next()) is not None:
            for event in parser.feed(chunk):
                await receiver.take(event)
        parser.close()
    except BaseException:
        receiver.abandon()
        raise
    return receiver.upload
