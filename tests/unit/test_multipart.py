"""The streamed multipart/form-data parser (core/multipart.py): what it yields for a body cut
anywhere, and every limit it enforces while the bytes come."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quartproxy.core.multipart import (
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
    split_header_value,
)
from quartproxy.errors import ApiError

B = b"----qpBoundary7MA4YWxkTrZu0gW"
WIDE = MultipartLimits(max_files=2000, max_file_bytes=10**9, max_total_bytes=10**9)
Part = tuple[str, str | None, str, bytes]  # name, filename, content type, data


def encode(parts: list[Part], boundary: bytes = B, *, final: bool = True) -> bytes:
    out = bytearray()
    for name, filename, ctype, data in parts:
        out += b"--" + boundary + b"\r\n"
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    if final:
        out += b"--" + boundary + b"--\r\n"
    return bytes(out)


def parse(pieces: list[bytes], limits: MultipartLimits = WIDE, boundary: bytes = B) -> list[Part]:
    parser = MultipartParser(boundary, limits)
    events = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return collect(events)


def collect(events: list[object]) -> list[Part]:
    parts: list[Part] = []
    current: PartStart | None = None
    data = bytearray()
    for e in events:
        if isinstance(e, PartStart):
            assert current is None
            current, data = e, bytearray()
        elif isinstance(e, PartData):
            assert current is not None and e.data  # never an empty data event
            data += e.data
        else:
            assert isinstance(e, PartEnd) and current is not None
            parts.append((current.name, current.filename, current.content_type, bytes(data)))
            current = None
    assert current is None
    return parts


def refusal(pieces: list[bytes], limits: MultipartLimits = WIDE) -> tuple[int, str | None]:
    with pytest.raises(ApiError) as caught:
        parse(pieces, limits)
    return caught.value.status, caught.value.public_reason


SAMPLE: list[Part] = [
    ("chatInput", None, "", "héllo\r\n--not the boundary".encode()),
    ("files", "a.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3),
    ("files", "b.txt", "text/plain", b"\r\n--" + B[:-1] + b"\r\n-" + B),  # prefixes, no CRLF
    ("files", "empty.bin", "application/octet-stream", b""),
]


def test_a_body_split_at_every_byte_gives_the_same_parts() -> None:
    body = encode(SAMPLE)
    assert parse([body]) == SAMPLE
    for i in range(len(body) + 1):
        assert parse([body[:i], body[i:]]) == SAMPLE
    assert parse([body[i : i + 1] for i in range(len(body))]) == SAMPLE


DATA = st.lists(st.sampled_from([b"\r", b"\n", b"-", b"--", B[:5], B, b"x", b"\x00", b"\xff"]))
PART = st.tuples(
    st.sampled_from(["files", "chatInput", "a b", "ñ"]),
    st.one_of(st.none(), st.sampled_from(["f.png", "", "x y.pdf"])),
    st.sampled_from(["", "image/png", "text/plain"]),
    DATA.map(b"".join),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PART, max_size=6), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_cutting_of_any_body_gives_what_was_encoded(parts: list[Part], cuts: list[int]) -> None:
    # Data made of boundary-like pieces: CR, LF, dashes, the boundary without its CRLF--.
    parts = [p for p in parts if b"\r\n--" + B not in p[3] + b"\r\n"]
    body = encode(parts)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert parse(pieces) == parts


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=5))
def test_arbitrary_bytes_are_parsed_or_refused_never_crash(body: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    try:
        parse(pieces, MultipartLimits(max_files=3, max_file_bytes=50, max_total_bytes=80))
    except ApiError as exc:
        assert exc.status in (400, 413)


def test_a_missing_final_boundary_is_a_bad_request() -> None:
    assert refusal([encode(SAMPLE, final=False)]) == (400, None)
    assert refusal([encode(SAMPLE)[:-8]]) == (400, None)  # cut inside the final delimiter
    assert refusal([b""]) == (400, None)


def test_the_epilogue_and_a_preamble_are_ignored() -> None:
    assert parse([b"preamble text\r\n" + encode(SAMPLE) + b"epilogue\r\n"]) == SAMPLE


def test_bytes_after_a_delimiter_other_than_crlf_or_dashes_are_refused() -> None:
    assert refusal([b"--" + B + b"X\r\n"]) == (400, None)


@pytest.mark.parametrize("cut", [1, 4096, 100_000])
def test_a_header_bomb_is_refused_before_it_is_read_whole(cut: int) -> None:
    limits = MultipartLimits(max_files=1, max_file_bytes=10, max_total_bytes=10)
    parser = MultipartParser(B, limits)
    bomb = b"--" + B + b"\r\nX-Pad: " + b"a" * 1_000_000
    with pytest.raises(ApiError) as caught:
        for i in range(0, len(bomb), cut):
            parser.feed(bomb[i : i + cut])
    assert caught.value.status == 400
    assert len(parser._buf) <= limits.max_header_bytes + cut + 4  # never held whole


def test_headers_up_to_the_limit_pass_one_byte_more_is_refused() -> None:
    limits = MultipartLimits(max_files=1, max_file_bytes=10, max_total_bytes=10)
    head = b'Content-Disposition: form-data; name="a"\r\nX: '
    fits = head + b"a" * (limits.max_header_bytes - len(head))
    body = b"--" + B + b"\r\n" + fits + b"\r\n\r\nv\r\n--" + B + b"--"
    for cut in (1, 7, len(body)):
        assert parse([body[i : i + cut] for i in range(0, len(body), cut)], limits)[0][3] == b"v"
    over = body.replace(b"X: ", b"X: a")
    for cut in (1, 7, len(over)):
        assert refusal([over[i : i + cut] for i in range(0, len(over), cut)], limits)[0] == 400


def test_a_long_preamble_is_refused() -> None:
    assert refusal([b"x" * 20_000 + encode(SAMPLE)]) == (400, None)


def test_a_thousand_tiny_parts_parse_and_the_count_limit_refuses_the_next() -> None:
    parts: list[Part] = [("files", f"{i}.txt", "text/plain", b"%d" % i) for i in range(1000)]
    body = encode(parts)
    limits = MultipartLimits(max_files=1000, max_file_bytes=10, max_total_bytes=10**6)
    assert parse([body[i : i + 997] for i in range(0, len(body), 997)], limits) == parts
    fewer = MultipartLimits(max_files=999, max_file_bytes=10, max_total_bytes=10**6)
    assert refusal([body], fewer) == (413, "too_many_files")


def test_too_many_plain_fields_are_refused() -> None:
    parts: list[Part] = [(f"f{i}", None, "", b"v") for i in range(17)]
    assert refusal([encode(parts)]) == (413, "too_many_fields")
    assert len(parse([encode(parts[:16])])) == 16


@pytest.mark.parametrize("cut", [1, 3, 10_000])
def test_file_size_limits_count_exactly(cut: int) -> None:
    limits = MultipartLimits(max_files=3, max_file_bytes=100, max_total_bytes=150)

    def pieces(parts: list[Part]) -> list[bytes]:
        body = encode(parts)
        return [body[i : i + cut] for i in range(0, len(body), cut)]

    exact: list[Part] = [("files", "a", "", b"a" * 100), ("files", "b", "", b"b" * 50)]
    assert parse(pieces(exact), limits) == exact
    assert refusal(pieces([("files", "a", "", b"a" * 101)]), limits) == (413, "file_too_large")
    over: list[Part] = [("files", "a", "", b"a" * 100), ("files", "b", "", b"b" * 51)]
    assert refusal(pieces(over), limits) == (413, "total_too_large")
    field: list[Part] = [("chatInput", None, "", b"x" * 65_537)]
    assert refusal(pieces(field), limits) == (413, "field_too_large")


def test_file_bytes_are_passed_on_as_they_come_not_held() -> None:
    parser = MultipartParser(B, WIDE)
    parser.feed(b"--" + B + b'\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n')
    events = parser.feed(b"z" * 100_000)
    assert sum(len(e.data) for e in events if isinstance(e, PartData)) >= 100_000 - len(B) - 4
    assert len(parser._buf) < len(B) + 4


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Type: text/plain",  # no Content-Disposition
        b"Content-Disposition: attachment; name=a",
        b"Content-Disposition: form-data; filename=a",  # no name
        b'Content-Disposition: form-data; name="a',  # unterminated quote
        b"Content-Disposition: form-data; name=a; name=b",
        b"Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b",
        b"Content-Disposition: form-data; name=\xff",
        b"no colon here",
    ],
)
def test_malformed_part_headers_are_a_bad_request(headers: bytes) -> None:
    body = b"--" + B + b"\r\n" + headers + b"\r\n\r\nv\r\n--" + B + b"--"
    assert refusal([body]) == (400, None)


def test_header_values_as_browsers_write_them() -> None:
    assert split_header_value('form-data; name="files"; filename="a;b \\"c\\".png"') == (
        "form-data",
        {"name": "files", "filename": 'a;b "c".png'},
    )
    body = b"--" + B + b"\r\n\r\nv\r\n--" + B + b"--"  # no headers at all
    assert refusal([body]) == (400, None)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b:c"', b"a b:c"),
        ("multipart/form-data", None),
        ("multipart/form-data; boundary=", None),
        ("multipart/form-data; boundary=" + "x" * 71, None),
        ("multipart/mixed; boundary=abc", None),
        ("application/json", None),
        (None, None),
    ],
)
def test_the_boundary_is_read_from_the_content_type(value: str | None, ok: bytes | None) -> None:
    if ok is None:
        with pytest.raises(ApiError) as caught:
            boundary_of(value)
        assert caught.value.status == 400
    else:
        assert boundary_of(value) == ok
