"""The response body of an httpx call read straight from its transport stream.

Library: httpx, verified against 0.27.x and 0.28.x (0.28.1); on any other version this is not
applied (a loud warning; `aiter_bytes()` serves: overrides/versions.py). Internal used: setting
`Response.is_stream_consumed` by hand, which `aiter_raw()` does before iterating `stream`.
tests/unit/test_overrides.py fingerprints `Response.aiter_raw`. Upstream proposal, ready to
send: docs/upstream/httpx-raw-stream-without-generator.md.

Why: `aiter_raw()` is one more async generator (and context manager) per chunk and per open
answer, for bookkeeping (byte counts, a request timer) nothing here reads; an answer stream is
held open for as long as n8n answers, thousands per worker.
"""

from __future__ import annotations

import httpx

from .versions import supported

TESTED_VERSIONS = ("0.27.", "0.28.")
_verified: bool | None = None  # checked on first use, not per answer (it reads package metadata)


def take_raw_stream(response: httpx.Response) -> httpx.AsyncByteStream | None:
    """The transport's own byte stream of `response`, marked consumed as `aiter_raw()` would,
    or None when it cannot be taken (already read, a sync stream, an unverified httpx): then
    read it with `aiter_bytes()`. The caller closes the response as before."""
    if response.is_stream_consumed or not isinstance(response.stream, httpx.AsyncByteStream):
        return None
    global _verified
    if _verified is None:
        _verified = supported("httpx", TESTED_VERSIONS, "httpx_stream.py", required=False)
    if not _verified:
        return None
    response.is_stream_consumed = True
    return response.stream
