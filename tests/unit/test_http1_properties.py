"""core.http1 against h11 as the oracle, on generated responses cut at random points, and
against garbage: whatever arrives, the reader either gives the response or raises
ProtocolError, and it never stalls (after the peer's close every call gives a verdict)."""

from __future__ import annotations

from dataclasses import dataclass

import h11
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from quartproxy.core.http1 import Head, ProtocolError, ResponseReader

# Generous enough for a loaded 2-core CI box: a deadline would be a timing assertion.
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FRAMING_NAMES = {b"content-length", b"transfer-encoding", b"connection"}

VCHAR = st.sampled_from([bytes([c]) for c in [*range(0x21, 0x7F), *range(0x80, 0x100)]])
WORD = st.lists(VCHAR, min_size=1, max_size=6).map(b"".join)
OWS = st.sampled_from([b"", b"", b" ", b"\t", b"  ", b" \t "])


@st.composite
def field_values(draw: st.DrawFn) -> bytes:
    """A field value as RFC 9110 5.5 has it: visible characters and obs-text, words apart
    by spaces and tabs (never at the ends: there they are OWS, not value)."""
    words = draw(st.lists(WORD, max_size=4))
    out = b""
    for i, word in enumerate(words):
        if i:
            out += draw(st.sampled_from([b" ", b"\t", b"  ", b" \t"]))
        out += word
    return out


def random_case(draw: st.DrawFn, text: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return bytes(
        (c ^ 0x20) if flip and chr(c).isalpha() else c for c, flip in zip(text, flips, strict=True)
    )


@st.composite
def header_lists(draw: st.DrawFn, max_size: int = 5) -> list[tuple[bytes, bytes]]:
    names = st.text(TCHAR, min_size=1, max_size=12).map(str.encode)
    pairs = draw(st.lists(st.tuples(names, field_values()), max_size=max_size))
    return [(n, v) for n, v in pairs if n.lower() not in FRAMING_NAMES]


def header_block(draw: st.DrawFn, headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(n + b":" + draw(OWS) + v + draw(OWS) + b"\r\n" for n, v in headers)


@dataclass
class Response:
    wire: bytes
    status: int
    headers: list[tuple[bytes, bytes]]  # as the reader must give them: lower-cased, stripped
    body: bytes
    framing: str  # "length", "chunked", "close" or "none"
    reusable: bool  # what the reader must say at the end (without the peer's close)
    http11: bool


@st.composite
def responses(draw: st.DrawFn) -> Response:
    framing = draw(st.sampled_from(["length", "chunked", "close", "none"]))
    http11 = framing == "chunked" or draw(st.booleans())
    if framing == "none":
        status = draw(st.sampled_from([204, 304]))
        body = b""
    else:
        status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
        body = draw(st.binary(max_size=300))

    wire = b""
    for _ in range(draw(st.integers(0, 2)) if http11 else 0):
        interim = draw(st.sampled_from([100, 102, 103]))
        wire += b"HTTP/1.1 %d Interim\r\n" % interim
        wire += header_block(draw, draw(header_lists(2))) + b"\r\n"

    headers = draw(header_lists())
    framing_headers: list[tuple[bytes, bytes]] = []
    if framing == "length" or (framing == "none" and draw(st.booleans())):
        length = b"%d" % len(body)
        name = random_case(draw, b"Content-Length")
        framing_headers.append((name, draw(st.sampled_from([length, length + b", " + length]))))
        if draw(st.booleans()):
            framing_headers.append((name, length))  # a duplicate that agrees
    elif framing == "chunked":
        value = random_case(draw, b"chunked")
        framing_headers.append((random_case(draw, b"Transfer-Encoding"), value))
    connection = draw(st.sampled_from([None, b"close", b"keep-alive", b"Keep-Alive"]))
    if connection is not None:
        framing_headers.append((random_case(draw, b"Connection"), connection))
    for pair in framing_headers:
        headers.insert(draw(st.integers(0, len(headers))), pair)

    reason = draw(st.sampled_from([b" OK", b"", b" ", b" Some Reason", b" \xe9t\xe9"]))
    wire += b"HTTP/1.%s %d%s\r\n" % (b"1" if http11 else b"0", status, reason)
    wire += header_block(draw, headers) + b"\r\n"
    if framing == "chunked":
        wire += chunked(draw, body)
    else:
        wire += body

    keep = connection is None or connection.lower() != b"close"
    if not http11:
        keep = connection is not None and connection.lower() == b"keep-alive"
    return Response(
        wire=wire,
        status=status,
        headers=[(n.lower(), v) for n, v in headers],
        body=body,
        framing=framing,
        reusable=keep and framing != "close",
        http11=http11,
    )


def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=6))))
    out = b""
    prev = 0
    for cut in [*cuts, len(body)]:
        data = body[prev:cut]
        prev = cut
        if not data:
            continue
        out += size_line(draw, len(data)) + data + b"\r\n"
    out += size_line(draw, 0)
    trailers = draw(header_lists(2))
    return out + header_block(draw, trailers) + b"\r\n"


def size_line(draw: st.DrawFn, size: int) -> bytes:
    digits = b"%x" % size
    if draw(st.booleans()):
        digits = digits.upper()
    digits = b"0" * draw(st.integers(0, 3)) + digits
    ext = draw(st.sampled_from([b"", b"", b";x", b";name=value", b';q="a b";c']))
    return digits + ext + draw(OWS) + b"\r\n"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, prev = [], 0
    for p in points:
        pieces.append(data[prev:p])
        prev = p
    pieces.append(data[prev:])
    return pieces


CUTS = st.lists(st.integers(0, 10_000), max_size=12)


@dataclass
class Outcome:
    head: Head | None
    body: bytes
    reader: ResponseReader


def drive(pieces: list[bytes], *, eof: bool) -> Outcome:
    """Feed the pieces as a socket would, asking for the head and the body after each, and
    checking the reader's invariants on the way; then the peer's close if `eof`."""
    reader = ResponseReader()
    head: Head | None = None
    body = bytearray()
    for piece in pieces:
        reader.feed(piece)
        if head is None:
            head = reader.head()
        else:
            assert reader.head() is head  # asked again: the same head, nothing consumed
        if head is not None:
            body += reader.body()
            assert reader.body() == b""  # nothing new arrived: nothing more to give
        else:
            assert not reader.complete and not reader.reusable
    if eof:
        reader.eof()
        if head is None:
            head = reader.head()
            assert head is not None  # after the close, head() never answers "not yet"
        body += reader.body()
        assert reader.complete  # ... and body() either completes or raises
        assert not reader.reusable
    return Outcome(head, bytes(body), reader)


def h11_reads(pieces: list[bytes], *, eof: bool) -> tuple[h11.Response, bytes, bool] | None:
    """What h11, as the client that sent a GET, makes of the same bytes: the response, its
    body and whether the connection can be reused; None if it saw no whole response.
    Raises h11.RemoteProtocolError where h11 refuses the bytes."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "upstream")]))
    conn.send(h11.EndOfMessage())
    response: h11.Response | None = None
    body = b""
    ended = False
    for piece in [*pieces, *([b""] if eof else [])]:  # b"" is how h11 hears the close
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                ended = True
        if ended:
            break
    if response is None or not ended:
        return None
    return response, body, conn.their_state is h11.DONE


def as_h11_shows(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers as h11 hands them over: one Content-Length with one value, the
    Transfer-Encoding value lower-cased."""
    out: list[tuple[bytes, bytes]] = []
    seen_length = False
    for name, value in headers:
        if name == b"content-length":
            if seen_length:
                continue
            seen_length = True
            value = value.split(b",")[0].strip()
        elif name == b"transfer-encoding":
            value = value.lower()
        out.append((name, value))
    return out


def pieces_of(wire: bytes, cuts: list[int]) -> list[bytes]:
    # h11 reads b"" as the peer's close: never hand it an empty piece for data
    return [p for p in split(wire, cuts) if p]


@PROPERTY
@given(responses(), CUTS, st.booleans())
@example(
    response=Response(
        wire=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        status=200,
        headers=[(b"transfer-encoding", b"chunked")],
        body=b"hello",
        framing="chunked",
        reusable=True,
        http11=True,
    ),
    cuts=list(range(60)),  # one byte at a time
    eof=False,
)
def test_the_reader_reads_what_h11_reads(response: Response, cuts: list[int], eof: bool) -> None:
    pieces = pieces_of(response.wire, cuts)
    eof = eof or response.framing == "close"  # nothing but the close ends such a body
    got = drive(pieces, eof=eof)
    assert got.head is not None
    assert got.head.status == response.status
    assert got.head.headers == response.headers
    assert got.body == response.body
    assert got.reader.complete
    assert got.reader.reusable is (response.reusable and not eof)

    seen = h11_reads(pieces, eof=eof)
    assert seen is not None
    oracle, oracle_body, oracle_keeps = seen
    assert oracle.status_code == got.head.status
    assert list(oracle.headers) == as_h11_shows(got.head.headers)
    assert oracle_body == got.body
    if response.http11 and not eof:  # h11 never keeps an HTTP/1.0 connection alive
        assert oracle_keeps is got.reader.reusable


@PROPERTY
@given(responses(), CUTS, st.binary(min_size=1, max_size=40))
def test_stray_bytes_after_a_response_are_never_body(
    response: Response, cuts: list[int], stray: bytes
) -> None:
    if response.framing == "close":
        return  # everything until the close is body there
    got = drive(pieces_of(response.wire + stray, cuts), eof=False)
    assert got.head is not None and got.body == response.body
    assert got.reader.complete and not got.reader.reusable


# -- garbage ----------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        b"\r\n",
        b"\r\n\r\n",
        b"\r",
        b"\n",
        b" ",
        b"\t",
        b":",
        b";",
        b",",
        b"\x00",
        b"HTTP/1.1 ",
        b"HTTP/1.0 ",
        b"200",
        b"100",
        b"101",
        b"204",
        b" OK",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Connection",
        b"chunked",
        b"close",
        b"keep-alive",
        b"gzip",
        b"0",
        b"1",
        b"a",
        b"F",
        b"ffffffffffffffff",
        b"x",
        b"\xff",
    ]
)
GARBAGE = st.one_of(
    st.binary(max_size=500),
    st.lists(TOKENS, max_size=120).map(b"".join),
)
HEADS = st.sampled_from(
    [
        b"",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n",
    ]
)


def verdict(pieces: list[bytes], eof: bool) -> Outcome | None:
    """The outcome, or None when the reader refused with ProtocolError (and only that)."""
    try:
        return drive(pieces, eof=eof)
    except ProtocolError:
        return None


@PROPERTY
@given(HEADS, GARBAGE, CUTS)
def test_garbage_gives_a_response_or_a_protocol_error(
    head: bytes, garbage: bytes, cuts: list[int]
) -> None:
    wire = head + garbage
    verdict(split(wire, cuts), eof=True)  # anything but ProtocolError fails the test
    verdict(split(wire, cuts), eof=False)


DAMAGE = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["flip", "drop", "insert"]),
        st.integers(0, 255),
        st.sampled_from([b"\r\n", b"\n", b" ", b"0", b",", b"\x00", b"\r\n\r\n"]),
    ),
    min_size=1,
    max_size=4,
)


def damaged(wire: bytes, damage: list[tuple[int, str, int, bytes]]) -> bytes:
    out = bytearray(wire)
    for at, kind, byte, inserted in damage:
        at %= len(out) + 1
        if kind == "insert" or at == len(out):
            out[at:at] = inserted
        elif kind == "drop":
            del out[at]
        else:
            out[at] = byte
    return bytes(out)


@PROPERTY
@given(responses(), DAMAGE, CUTS, st.booleans())
@example(  # "HTTP/1.1" damaged into "HTTP/1.0" above a chunked body: h11 would de-chunk it
    response=Response(
        wire=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        status=200,
        headers=[(b"transfer-encoding", b"chunked")],
        body=b"ok",
        framing="chunked",
        reusable=True,
        http11=True,
    ),
    damage=[(7, "flip", ord("0"), b"")],
    cuts=[],
    eof=True,
)
def test_damaged_responses_never_break_the_reader_and_agree_with_h11_when_both_accept(
    response: Response, damage: list[tuple[int, str, int, bytes]], cuts: list[int], eof: bool
) -> None:
    """Flip, drop and insert bytes in a valid response. Whatever the reader accepts as a whole
    response, h11 must not read differently: two parsers that disagree on where a response
    ends are how responses get smuggled."""
    pieces = pieces_of(damaged(response.wire, damage), cuts)
    got = verdict(pieces, eof)
    if got is None or got.head is None or not got.reader.complete:
        return
    try:
        seen = h11_reads(pieces, eof=eof)
    except h11.RemoteProtocolError:
        return  # h11 is stricter here: fine
    assert seen is not None, "we read a whole response where h11 still waits for more"
    oracle, oracle_body, _ = seen
    assert oracle.status_code == got.head.status
    assert list(oracle.headers) == as_h11_shows(got.head.headers)
    assert oracle_body == got.body
