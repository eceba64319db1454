"""core.http1: the sans-IO HTTP/1.1 client side the upstream transport is built on.

Every case is plain bytes in, head/body/flags out: what the transport will see from a peer,
and what it must refuse. The h11-as-oracle properties are in test_http1_properties.py."""

from __future__ import annotations

from collections.abc import Iterable

import h11
import pytest

from quartproxy.core.http1 import (
    MAX_CHUNK_LINE,
    MAX_HEAD_BYTES,
    MAX_TRAILER_BYTES,
    Head,
    ProtocolError,
    ResponseReader,
    encode_request,
)


def read(pieces: Iterable[bytes], *, eof: bool = False) -> tuple[Head, bytes, ResponseReader]:
    """Feed the pieces one by one as a socket would deliver them, asking for the head and the
    body after each; then the peer's close if `eof`. Returns head, whole body, reader."""
    reader = ResponseReader()
    head: Head | None = None
    body = bytearray()
    for piece in pieces:
        reader.feed(piece)
        if head is None:
            head = reader.head()
        if head is not None:
            body += reader.body()
    if eof:
        reader.eof()
        if head is None:
            head = reader.head()
        body += reader.body()
    assert head is not None, "the head never came"
    return head, bytes(body), reader


def one(wire: bytes, *, eof: bool = False) -> tuple[Head, bytes, ResponseReader]:
    return read([wire], eof=eof)


def refused(wire: bytes, *, eof: bool = False) -> str:
    """The message of the ProtocolError the reader raises for `wire` (fed whole)."""
    with pytest.raises(ProtocolError) as caught:
        one(wire, eof=eof)
    return str(caught.value)


OK = b"HTTP/1.1 200 OK\r\n"


# -- status line and headers ----------------------------------------------------------------


def test_status_headers_and_a_sized_body() -> None:
    head, body, reader = one(
        b"HTTP/1.1 201 Created\r\n"
        b"Content-Type: text/plain\r\n"
        b"X-Spaced: \t padded value \t\r\n"
        b"Set-Cookie: a=1\r\n"
        b"SET-COOKIE: b=2\r\n"
        b"Location: http://n8n:5678/x\r\n"
        b"X-Empty:\r\n"
        b"Content-Length: 5\r\n"
        b"\r\n"
        b"hello"
    )
    assert head.status == 201
    assert head.headers == [
        (b"content-type", b"text/plain"),
        (b"x-spaced", b"padded value"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"location", b"http://n8n:5678/x"),
        (b"x-empty", b""),
        (b"content-length", b"5"),
    ]
    assert head.get(b"set-cookie") == b"a=1"
    assert head.get_all(b"set-cookie") == [b"a=1", b"b=2"]
    assert head.get(b"absent") is None
    assert head.get_all(b"absent") == []
    assert body == b"hello"
    assert reader.complete and reader.reusable


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"HTTP/1.1 200 OK", 200),
        (b"HTTP/1.1 200", 200),  # no reason phrase at all (servers in the wild do this)
        (b"HTTP/1.1 200 ", 200),  # empty reason phrase
        (b"HTTP/1.1 404 Not  Found \t here", 404),
        (b"HTTP/1.1 599 \xe9t\xe9", 599),  # obs-text in the reason
        (b"HTTP/1.0 500 Internal Server Error", 500),
    ],
)
def test_status_lines_accepted(line: bytes, status: int) -> None:
    head, _, _ = one(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert head.status == status


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 2x0 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 200OK",
        b"HTTP/1.1\t200 OK",
        b"HTTP/1.2 200 OK",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"http/1.1 200 OK",
        b"HTTP/1.1",
        b"ICY 200 OK",
        b" HTTP/1.1 200 OK",
        b"",
        b"HTTP/1.1 200 O\nK",  # a bare LF inside the status line
        b"HTTP/1.1 200 O\rK",
    ],
)
def test_status_lines_refused(line: bytes) -> None:
    assert refused(line + b"\r\nContent-Length: 0\r\n\r\n") == "invalid status line"


def test_a_leading_empty_line_is_not_a_status_line() -> None:
    assert refused(b"\r\n" + OK + b"Content-Length: 0\r\n\r\n") == "invalid status line"


def test_obsolete_line_folding_is_refused() -> None:
    for fold in (b" ", b"\t"):
        wire = OK + b"X-Long: first\r\n" + fold + b"second\r\nContent-Length: 0\r\n\r\n"
        assert refused(wire) == "invalid header line"


@pytest.mark.parametrize(
    "line",
    [
        b"X-Space : v",  # whitespace between name and colon (a smuggling classic)
        b"X-Tab\t: v",
        b": no name",
        b"no colon at all",
        b"X(paren): v",
        b"X/slash: v",
        b"X\xe9: v",
        b"X\x00: v",
        b"X-A\nX-B: v",
        b"   ",
    ],
)
def test_bad_header_names_are_refused(line: bytes) -> None:
    assert refused(OK + line + b"\r\nContent-Length: 0\r\n\r\n") == "invalid header line"


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"a\nb", b"\r", b"x\n"])
def test_header_values_with_cr_lf_or_nul_are_refused(value: bytes) -> None:
    wire = OK + b"X-Bad: " + value + b"\r\nContent-Length: 0\r\n\r\n"
    assert refused(wire) == "invalid header value"


def test_a_head_arriving_byte_by_byte_is_found_once_whole() -> None:
    wire = OK + b"Content-Length: 2\r\nX-A: b\r\n\r\nhi"
    reader = ResponseReader()
    for i in range(len(wire) - 2):
        assert reader.head() is None
        reader.feed(wire[i : i + 1])
    head = reader.head()
    assert head is not None and head.get(b"x-a") == b"b"
    assert reader.head() is head  # asking again gives the same head, consumes nothing
    assert reader.body() == b""
    reader.feed(b"hi")
    assert reader.body() == b"hi" and reader.reusable


def test_a_head_up_to_the_limit_is_accepted() -> None:
    start = OK + b"Content-Length: 0\r\nX-Pad: "
    pad = MAX_HEAD_BYTES - len(start)
    wire = start + b"p" * pad + b"\r\n\r\n"
    assert wire.index(b"\r\n\r\n") == MAX_HEAD_BYTES
    head, _, reader = one(wire)
    assert len(head.get(b"x-pad") or b"") == pad and reader.reusable


@pytest.mark.parametrize("back", range(1, 5))
def test_a_head_at_the_limit_is_accepted_however_its_end_is_cut(back: int) -> None:
    """Where the reads cut the bytes must not change the verdict."""
    start = OK + b"Content-Length: 0\r\nX-Pad: "
    wire = start + b"p" * (MAX_HEAD_BYTES - len(start)) + b"\r\n\r\n"
    _, _, reader = read([wire[:-back], wire[-back:]])
    assert reader.reusable


def test_a_head_over_the_limit_is_refused_when_it_ends() -> None:
    wire = OK + b"Content-Length: 0\r\nX-Pad: " + b"p" * MAX_HEAD_BYTES + b"\r\n\r\n"
    assert refused(wire) == "response head too large"


def test_a_head_over_the_limit_is_refused_before_it_ends() -> None:
    """The reader must not buffer an endless head waiting for its end."""
    reader = ResponseReader()
    reader.feed(OK + b"X-Pad: " + b"p" * (MAX_HEAD_BYTES // 2))
    assert reader.head() is None
    reader.feed(b"p" * (MAX_HEAD_BYTES // 2))
    with pytest.raises(ProtocolError, match="too large"):
        reader.head()


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"])
def test_eof_before_the_head_is_an_error(sent: bytes) -> None:
    reader = ResponseReader()
    reader.feed(sent)
    assert reader.head() is None
    reader.eof()
    with pytest.raises(ProtocolError, match="before the response head"):
        reader.head()


def test_body_before_head_is_a_caller_bug() -> None:
    with pytest.raises(RuntimeError):
        ResponseReader().body()


def test_data_after_eof_is_refused() -> None:
    reader = ResponseReader()
    reader.eof()
    with pytest.raises(ProtocolError):
        reader.feed(b"x")


# -- interim responses ----------------------------------------------------------------------


def test_interim_responses_are_skipped() -> None:
    wire = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\nContent-Length: 99\r\n\r\n"
        + OK
        + b"Content-Length: 2\r\n\r\nok"
    )
    for pieces in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        head, body, reader = read(pieces)
        assert head.status == 200
        assert head.headers == [(b"content-length", b"2")]  # nothing of the 103's Link
        assert body == b"ok" and reader.reusable


def test_a_protocol_switch_is_refused() -> None:
    wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    assert refused(wire) == "unexpected protocol switch"


def test_eof_after_an_interim_response_is_an_error() -> None:
    assert "before the response head" in refused(b"HTTP/1.1 100 Continue\r\n\r\n", eof=True)


# -- responses without a body ---------------------------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [b"", b"Content-Length: 120\r\n", b"Transfer-Encoding: chunked\r\n"],
)
@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_whatever_the_headers_say(status: int, framing: bytes) -> None:
    head, body, reader = one(b"HTTP/1.1 %d X\r\n%s\r\n" % (status, framing))
    assert head.status == status
    assert body == b"" and reader.complete and reader.reusable
    assert reader.body() == b""


def test_bytes_after_a_204_make_the_connection_unusable() -> None:
    _, body, reader = one(b"HTTP/1.1 204 No Content\r\n\r\nstray")
    assert body == b"" and reader.complete
    assert not reader.reusable


def test_a_response_to_head_has_no_body_and_keeps_the_connection() -> None:
    reader = ResponseReader(head_request=True)
    reader.feed(OK + b"Content-Length: 1234\r\nContent-Type: text/html\r\n\r\n")
    head = reader.head()
    assert head is not None and head.get(b"content-length") == b"1234"
    assert reader.body() == b"" and reader.complete and reader.reusable


# -- Content-Length -------------------------------------------------------------------------


def test_content_length_body_split_anywhere() -> None:
    wire = OK + b"Content-Length: 11\r\n\r\nhello world"
    for cut in range(1, len(wire)):
        _, body, reader = read([wire[:cut], wire[cut:]])
        assert body == b"hello world", cut
        assert reader.complete and reader.reusable


def test_content_length_zero_is_complete_at_once() -> None:
    _, body, reader = one(OK + b"Content-Length: 0\r\n\r\n")
    assert body == b"" and reader.complete and reader.reusable


def test_a_sized_body_is_not_complete_until_its_last_byte() -> None:
    reader = ResponseReader()
    reader.feed(OK + b"Content-Length: 4\r\n\r\nabc")
    assert reader.head() is not None
    assert reader.body() == b"abc"
    assert not reader.complete and not reader.reusable
    assert reader.body() == b""  # nothing new: nothing given twice
    reader.feed(b"d")
    assert reader.body() == b"d" and reader.complete and reader.reusable


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: 5, 6\r\n",
        b"Content-Length: 5\r\nContent-Length: 5, 6\r\n",
        b"Content-Length: 5\r\nContent-Length: 05\r\n",
    ],
)
def test_conflicting_content_lengths_are_refused(headers: bytes) -> None:
    assert refused(OK + headers + b"\r\nhello") == "conflicting Content-Length values"


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: 5 ,5\r\ncontent-length: 5\r\n",
    ],
)
def test_duplicate_equal_content_lengths_are_one(headers: bytes) -> None:
    _, body, reader = one(OK + headers + b"\r\nhello")
    assert body == b"hello" and reader.reusable


@pytest.mark.parametrize(
    "value",
    [b"abc", b"-1", b"+5", b"5.0", b"0x5", b"", b"1 2", b"\xd9\xa3", b"\xef\xbc\x95", b"5,"],
)
def test_a_content_length_that_is_not_digits_is_refused(value: bytes) -> None:
    with pytest.raises(ProtocolError, match="Content-Length"):
        one(OK + b"Content-Length: " + value + b"\r\n\r\nhello")


def test_a_huge_content_length_is_refused() -> None:
    assert refused(OK + b"Content-Length: 1000000000000000000\r\n\r\n") == "invalid Content-Length"


def test_the_largest_content_length_accepted_just_waits_for_its_body() -> None:
    _, body, reader = one(OK + b"Content-Length: 999999999999999999\r\n\r\nabc")
    assert body == b"abc" and not reader.complete


def test_eof_inside_a_sized_body_is_an_error() -> None:
    reader = ResponseReader()
    reader.feed(OK + b"Content-Length: 10\r\n\r\nhalf")
    assert reader.head() is not None
    assert reader.body() == b"half"
    reader.eof()
    with pytest.raises(ProtocolError, match="before the end of the body"):
        reader.body()


def test_eof_after_a_whole_sized_body_is_fine_but_not_reusable() -> None:
    _, body, reader = one(OK + b"Content-Length: 2\r\n\r\nok", eof=True)
    assert body == b"ok" and reader.complete and not reader.reusable


def test_bytes_after_a_sized_body_are_not_body_and_not_reusable() -> None:
    _, body, reader = one(OK + b"Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n")
    assert body == b"ok" and reader.complete
    assert not reader.reusable
    assert reader.body() == b""  # the stray bytes are never handed out as body


# -- chunked --------------------------------------------------------------------------------

CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


def test_chunks_are_joined() -> None:
    _, body, reader = one(CHUNKED + b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
    assert body == b"hello world" and reader.complete and reader.reusable


def test_all_that_is_decodable_comes_out_in_one_piece() -> None:
    reader = ResponseReader()
    reader.feed(CHUNKED + b"1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n4\r\nghij")
    assert reader.head() is not None
    assert reader.body() == b"abcdefghij"
    assert not reader.complete
    reader.feed(b"\r\n0\r\n\r\n")
    assert reader.body() == b"" and reader.complete and reader.reusable


@pytest.mark.parametrize(
    "size_line",
    [
        b"a",
        b"A",
        b"00a",
        b"0" * 15 + b"a",  # sixteen digits
        b"a;name=value",
        b'a;name="quoted; value";other',
        b"a ;x",
        b"a\t;x",
        b"a ",  # trailing whitespace, as some servers send
        b"a;",
    ],
)
def test_chunk_size_lines_accepted(size_line: bytes) -> None:
    _, body, reader = one(CHUNKED + size_line + b"\r\n0123456789\r\n0\r\n\r\n")
    assert body == b"0123456789" and reader.reusable


@pytest.mark.parametrize(
    "size_line",
    [
        b"",
        b"g",
        b"-1",
        b"+a",
        b"0x0a",
        b" a",
        b";x",
        b"1 2",
        b"0" * 16 + b"a",  # seventeen digits
        b"a;ext\rmore",
        b"a;ext\nmore",
    ],
)
def test_chunk_size_lines_refused(size_line: bytes) -> None:
    assert refused(CHUNKED + size_line + b"\r\n0123456789\r\n0\r\n\r\n") == (
        "invalid chunk size line"
    )


def test_a_long_size_line_is_refused_before_it_ends() -> None:
    """An endless chunk extension must not be buffered."""
    reader = ResponseReader()
    reader.feed(CHUNKED + b"1;" + b"x" * MAX_CHUNK_LINE)
    assert reader.head() is not None
    with pytest.raises(ProtocolError, match="chunk size line too long"):
        reader.body()


def test_a_long_size_line_is_refused_even_when_it_arrives_whole() -> None:
    """The limit does not depend on how the line was cut into reads."""
    line = b"1;" + b"x" * MAX_CHUNK_LINE
    assert refused(CHUNKED + line + b"\r\na\r\n0\r\n\r\n") == "chunk size line too long"


def test_a_size_line_at_the_limit_is_accepted() -> None:
    line = b"1;" + b"x" * (MAX_CHUNK_LINE - 2)
    assert len(line) == MAX_CHUNK_LINE
    for pieces in (
        [CHUNKED + line + b"\r\na\r\n0\r\n\r\n"],
        [CHUNKED, line, b"\r\na\r\n0\r\n\r\n"],
    ):
        _, body, reader = read(pieces)
        assert body == b"a" and reader.reusable


def test_a_size_line_at_the_limit_is_accepted_when_cut_between_cr_and_lf() -> None:
    line = b"1;" + b"x" * (MAX_CHUNK_LINE - 2)
    _, body, reader = read([CHUNKED + line + b"\r", b"\na\r\n0\r\n\r\n"])
    assert body == b"a" and reader.reusable


@pytest.mark.parametrize("after", [b"XX0\r\n\r\n", b"\n0\r\n\r\n", b"\r0\r\n\r\n", b"0\r\n\r\n"])
def test_chunk_data_must_be_followed_by_crlf(after: bytes) -> None:
    assert refused(CHUNKED + b"5\r\nhello" + after) == "chunk not followed by CRLF"


def test_trailers_are_read_and_dropped() -> None:
    wire = CHUNKED + b"2\r\nok\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    head, body, reader = one(wire)
    assert body == b"ok" and reader.complete and reader.reusable
    assert head.get(b"x-checksum") is None


def test_an_endless_trailer_line_is_refused() -> None:
    reader = ResponseReader()
    reader.feed(CHUNKED + b"0\r\nX-T: " + b"t" * MAX_TRAILER_BYTES)
    assert reader.head() is not None
    with pytest.raises(ProtocolError, match="trailers too large"):
        reader.body()


def test_a_long_trailer_line_is_refused_even_when_it_arrives_whole() -> None:
    line = b"X-T: " + b"t" * MAX_TRAILER_BYTES
    assert refused(CHUNKED + b"0\r\n" + line + b"\r\n\r\n") == "trailers too large"


@pytest.mark.parametrize("back", range(1, 5))
def test_a_trailer_line_at_the_limit_is_accepted_however_it_is_cut(back: int) -> None:
    line = b"X-T: " + b"t" * (MAX_TRAILER_BYTES - 5)
    wire = CHUNKED + b"2\r\nok\r\n0\r\n" + line + b"\r\n\r\n"
    for pieces in ([wire], [wire[:-back], wire[-back:]]):
        _, body, reader = read(pieces)
        assert body == b"ok" and reader.reusable


def test_an_empty_chunked_body() -> None:
    _, body, reader = one(CHUNKED + b"0\r\n\r\n")
    assert body == b"" and reader.complete and reader.reusable


def test_bytes_after_the_last_chunk_make_the_connection_unusable() -> None:
    _, body, reader = one(CHUNKED + b"2\r\nok\r\n0\r\n\r\nX")
    assert body == b"ok" and reader.complete and not reader.reusable


CHUNKED_WIRE = (
    CHUNKED + b"3;ext=1\r\nabc\r\n"
    b"A\r\n0123456789\r\n"
    b"1 \r\n\n\r\n"  # a chunk whose data is a bare LF
    b"2\r\n\r\n\r\n"  # a chunk whose data is CRLF
    b"0;last\r\nX-Trailer: yes\r\n\r\n"
)
CHUNKED_BODY = b"abc0123456789\n\r\n"


@pytest.mark.parametrize("cut", range(1, len(CHUNKED_WIRE)))
def test_a_chunked_response_cut_at_every_position(cut: int) -> None:
    head, body, reader = read([CHUNKED_WIRE[:cut], CHUNKED_WIRE[cut:]])
    assert head.status == 200
    assert body == CHUNKED_BODY
    assert reader.complete and reader.reusable


def test_a_chunked_response_one_byte_at_a_time() -> None:
    reader = ResponseReader()
    body = bytearray()
    for i in range(len(CHUNKED_WIRE)):
        assert not reader.complete
        reader.feed(CHUNKED_WIRE[i : i + 1])
        if reader.head() is not None:
            body += reader.body()
    assert body == CHUNKED_BODY and reader.complete and reader.reusable


@pytest.mark.parametrize(
    "cut",
    [
        len(CHUNKED) + 2,  # inside a size line
        len(CHUNKED) + 5,  # inside the extension
        len(CHUNKED) + 10,  # inside chunk data
        len(CHUNKED) + 12,  # before the CRLF after the data
        len(CHUNKED) + 13,  # between its CR and LF
        len(CHUNKED_WIRE) - 12,  # inside the trailers
        len(CHUNKED_WIRE) - 2,  # before the final empty line
        len(CHUNKED_WIRE) - 1,
    ],
)
def test_eof_inside_a_chunked_body_is_an_error(cut: int) -> None:
    assert refused(CHUNKED_WIRE[:cut], eof=True) == "connection closed inside a chunked body"


def test_eof_right_after_the_last_chunk_is_fine_but_not_reusable() -> None:
    _, body, reader = one(CHUNKED_WIRE, eof=True)
    assert body == CHUNKED_BODY and reader.complete and not reader.reusable


@pytest.mark.parametrize("value", [b"Chunked", b"CHUNKED", b" chunked ", b"chunked,"])
def test_the_chunked_coding_is_matched_case_insensitively(value: bytes) -> None:
    _, body, reader = one(OK + b"Transfer-Encoding: " + value + b"\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    assert body == b"ok" and reader.reusable


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (b"Transfer-Encoding: chunked, chunked\r\n", "chunked applied twice"),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "chunked applied twice"),
        (b"Transfer-Encoding: gzip, chunked\r\n", "unsupported transfer coding"),
        (
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            "unsupported transfer coding",
        ),
    ],
)
def test_codings_under_chunked_are_refused(headers: bytes, message: str) -> None:
    assert refused(OK + headers + b"\r\n2\r\nok\r\n0\r\n\r\n") == message


def test_chunked_with_a_content_length_is_decoded_as_chunked_but_never_reused() -> None:
    """Both framings at once is how responses get smuggled: Transfer-Encoding wins (RFC 9112
    6.3) and the connection is closed afterwards."""
    for order in (
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    ):
        _, body, reader = one(OK + order + b"\r\n5\r\nhello\r\n0\r\n\r\n")
        assert body == b"hello" and reader.complete
        assert not reader.reusable


@pytest.mark.parametrize("value", [b"gzip", b"chunked, gzip", b"identity"])
def test_a_final_coding_other_than_chunked_is_read_until_close(value: bytes) -> None:
    reader = ResponseReader()
    reader.feed(OK + b"Transfer-Encoding: " + value + b"\r\n\r\n5\r\nraw")
    assert reader.head() is not None
    assert reader.body() == b"5\r\nraw"  # handed over as it is: not ours to decode
    assert not reader.complete
    reader.feed(b" bytes")
    assert reader.body() == b" bytes"
    reader.eof()
    assert reader.body() == b"" and reader.complete and not reader.reusable


@pytest.mark.parametrize("value", [b"chunked", b"gzip"])
def test_transfer_encoding_in_http_1_0_is_refused(value: bytes) -> None:
    """HTTP/1.0 has no transfer codings: the framing is faulty (RFC 9112 6.1). Read raw, the
    chunk sizes would reach the caller as body text; h11 would de-chunk it instead."""
    wire = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: " + value + b"\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert refused(wire, eof=True) == "Transfer-Encoding in an HTTP/1.0 response"


# -- read until close -----------------------------------------------------------------------


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_no_framing_means_the_body_ends_at_close(version: bytes) -> None:
    reader = ResponseReader()
    reader.feed(b"HTTP/" + version + b" 200 OK\r\nConnection: keep-alive\r\n\r\nfirst ")
    assert reader.head() is not None
    assert reader.body() == b"first "
    assert not reader.complete and not reader.reusable
    reader.feed(b"second")
    assert reader.body() == b"second"
    assert not reader.complete
    reader.eof()
    assert reader.body() == b""
    assert reader.complete and not reader.reusable


def test_a_head_and_a_close_delimited_body_in_the_last_read() -> None:
    head, body, reader = one(OK + b"\r\nall of it", eof=True)
    assert head.status == 200 and body == b"all of it"
    assert reader.complete and not reader.reusable


# -- keep-alive -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "reusable"),
    [
        (b"1.1", None, True),
        (b"1.1", b"keep-alive", True),
        (b"1.1", b"close", False),
        (b"1.1", b"Close", False),
        (b"1.1", b"upgrade, close", False),
        (b"1.1", b" CLOSE ,x", False),
        (b"1.1", b"closed", True),  # a token, not a substring
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"x, keep-alive", True),
        (b"1.0", b"keep-alive, close", False),
        (b"1.0", b"close", False),
    ],
)
def test_keep_alive_rules(version: bytes, connection: bytes | None, reusable: bool) -> None:
    header = b"" if connection is None else b"Connection: " + connection + b"\r\n"
    wire = b"HTTP/" + version + b" 200 OK\r\n" + header + b"Content-Length: 2\r\n\r\nok"
    _, body, reader = one(wire)
    assert body == b"ok" and reader.complete
    assert reader.reusable is reusable


def test_connection_tokens_from_several_headers_count() -> None:
    wire = OK + b"Connection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert not one(wire)[2].reusable


def test_not_reusable_before_the_body_ends() -> None:
    reader = ResponseReader()
    assert not reader.reusable
    reader.feed(OK + b"Content-Length: 2\r\n\r\n")
    assert reader.head() is not None
    assert not reader.reusable


# -- encode_request -------------------------------------------------------------------------


def test_encode_a_post() -> None:
    wire = encode_request(
        "POST",
        b"/webhook/chat?x=1",
        [(b"Host", b"n8n:5678"), (b"Content-Type", b"application/json")],
        b'{"a":1}',
    )
    assert wire == (
        b"POST /webhook/chat?x=1 HTTP/1.1\r\n"
        b"Host: n8n:5678\r\n"
        b"Content-Type: application/json\r\n"
        b"content-length: 7\r\n"
        b"\r\n"
        b'{"a":1}'
    )


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [
        ("GET", b"", None),
        ("HEAD", b"", None),
        ("GET", b"q", b"1"),
        ("POST", b"", b"0"),
        ("PUT", b"", b"0"),
        ("DELETE", b"", b"0"),
        ("POST", b"x" * 70000, b"70000"),
    ],
)
def test_the_content_length_it_sets(method: str, body: bytes, length: bytes | None) -> None:
    wire = encode_request(method, b"/", [(b"Host", b"h")], body)
    head, _, sent = wire.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    ]
    assert lengths == ([] if length is None else [length])
    assert sent == body


def test_a_given_content_length_or_transfer_encoding_is_replaced() -> None:
    wire = encode_request(
        "POST",
        b"/",
        [
            (b"Host", b"h"),
            (b"Content-Length", b"999"),
            (b"TRANSFER-ENCODING", b"chunked"),
            (b"content-length", b"1"),
        ],
        b"abc",
    )
    assert wire == b"POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\n\r\nabc"


def test_an_h11_server_reads_what_it_encodes() -> None:
    """h11 as the oracle for the request side."""
    body = b"\x00\r\n\r\nbinary body"
    wire = encode_request(
        "POST",
        b"/webhook/x%20y?q=%0D%0A",
        [(b"Host", b"127.0.0.1:5678"), (b"X-Request-ID", b"req-1"), (b"Accept", b"*/*")],
        body,
    )
    server = h11.Connection(our_role=h11.SERVER)
    server.receive_data(wire)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.method == b"POST"
    assert request.target == b"/webhook/x%20y?q=%0D%0A"
    assert list(request.headers) == [
        (b"host", b"127.0.0.1:5678"),
        (b"x-request-id", b"req-1"),
        (b"accept", b"*/*"),
        (b"content-length", str(len(body)).encode()),
    ]
    data = server.next_event()
    assert isinstance(data, h11.Data) and data.data == body
    assert isinstance(server.next_event(), h11.EndOfMessage)
    assert server.trailing_data == (b"", False)  # nothing more was sent: no second request


@pytest.mark.parametrize("bad", [b"\r", b"\n", b"\0", b"\r\n"])
def test_encode_refuses_cr_lf_nul_in_header_values(bad: bytes) -> None:
    with pytest.raises(ValueError, match="header value"):
        encode_request("GET", b"/", [(b"X-Id", b"a" + bad + b"GET /admin HTTP/1.1")], b"")


@pytest.mark.parametrize(
    "name", [b"X-A\r\nX-B", b"X-A\n", b"X\0", b"X A", b"X:A", b"", b"X\xe9", b"X-A\r"]
)
def test_encode_refuses_bad_header_names(name: bytes) -> None:
    with pytest.raises(ValueError, match="header name"):
        encode_request("GET", b"/", [(name, b"v")], b"")


@pytest.mark.parametrize(
    "target", [b"", b"/a b", b"/a\r\nHost: evil", b"/a\n", b"/a\r", b"/a\0", b"/ HTTP/1.1"]
)
def test_encode_refuses_bad_targets(target: bytes) -> None:
    with pytest.raises(ValueError, match="request target"):
        encode_request("GET", target, [(b"Host", b"h")], b"")


@pytest.mark.parametrize("method", ["", "GE T", "GET\r\n", "G\u00c9T", "GET\0", "PO/ST"])
def test_encode_refuses_bad_methods(method: str) -> None:
    with pytest.raises(ValueError, match="method"):
        encode_request(method, b"/", [(b"Host", b"h")], b"")
