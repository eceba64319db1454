"""Exact edges of the HTTP/1.1 response reader: the limits as numbers, the head limit while the
head is still arriving, sizes of one byte and of two hex digits, the chunk-line and trailer limits
when earlier bytes of the same read were already consumed. Each case was a surviving mutant of
core/http1.py."""

from __future__ import annotations

import pytest

from quartproxy.core.http1 import (
    MAX_CHUNK_LINE,
    MAX_HEAD_BYTES,
    MAX_TRAILER_BYTES,
    ProtocolError,
    ResponseReader,
)

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


def test_the_limits() -> None:
    assert (MAX_HEAD_BYTES, MAX_CHUNK_LINE, MAX_TRAILER_BYTES) == (65536, 1024, 16384)


def test_an_unfinished_head_may_hold_three_bytes_past_the_limit_and_no_more() -> None:
    start = OK + b"X-Pad: "
    waiting = ResponseReader()
    waiting.feed(start + b"p" * (MAX_HEAD_BYTES + 3 - len(start)))
    assert waiting.head() is None
    over = ResponseReader()
    over.feed(start + b"p" * (MAX_HEAD_BYTES + 4 - len(start)))
    with pytest.raises(ProtocolError, match="response head too large"):
        over.head()


def test_an_empty_head_is_refused_at_once() -> None:
    reader = ResponseReader()
    reader.feed(b"\r\n\r\n" + OK + b"Content-Length: 0\r\n\r\n")
    with pytest.raises(ProtocolError, match="invalid status line"):
        reader.head()


def test_a_one_byte_body_is_read_and_an_empty_one_is_complete_with_its_head() -> None:
    one = ResponseReader()
    one.feed(OK + b"Content-Length: 1\r\n\r\n")
    assert one.head() is not None and not one.complete
    assert one.body() == b""
    one.feed(b"x")
    assert one.body() == b"x" and one.complete and one.reusable
    empty = ResponseReader()
    empty.feed(OK + b"Content-Length: 0\r\n\r\n")
    assert empty.head() is not None
    assert empty.complete and empty.reusable  # before any body() call


def test_chunk_sizes_are_hexadecimal() -> None:
    reader = ResponseReader()
    reader.feed(CHUNKED + b"10\r\n" + b"a" * 16 + b"\r\n1F\r\n" + b"b" * 31 + b"\r\n0\r\n\r\n")
    assert reader.head() is not None
    assert reader.body() == b"a" * 16 + b"b" * 31
    assert reader.complete


def test_the_size_line_limit_counts_from_where_the_line_starts() -> None:
    # a whole chunk first, so the partial size line starts inside the buffer, not at its start
    reader = ResponseReader()
    partial = b"1;" + b"e" * (MAX_CHUNK_LINE - 2) + b"\r"  # the longest line, cut before LF
    reader.feed(CHUNKED + b"1\r\nA\r\n" + partial)
    assert reader.head() is not None
    assert reader.body() == b"A"
    reader.feed(b"\nB\r\n0\r\n\r\n")
    assert reader.body() == b"B"
    assert reader.complete


def test_an_unfinished_trailer_may_hold_one_byte_past_the_limit_and_no_more() -> None:
    waiting = ResponseReader()
    waiting.feed(CHUNKED + b"0\r\n" + b"t" * (MAX_TRAILER_BYTES + 1))
    assert waiting.head() is not None
    assert waiting.body() == b"" and not waiting.complete
    over = ResponseReader()
    over.feed(CHUNKED + b"0\r\n" + b"t" * (MAX_TRAILER_BYTES + 2))
    assert over.head() is not None
    with pytest.raises(ProtocolError, match="trailers too large"):
        over.body()
