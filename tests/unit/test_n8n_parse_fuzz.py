"""Fuzz pass over the n8n answer parser: arbitrary bytes in arbitrary pieces never raise, and
how a valid stream is cut into pieces never changes what comes out."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from quartproxy.core.events import Delta, Error
from quartproxy.core.n8n_parse import N8nAnswerParser

CTYPES = st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, prev = [], 0
    for p in points:
        pieces.append(data[prev:p])
        prev = p
    pieces.append(data[prev:])
    return pieces


def parse(pieces: list[bytes], ctype: str = "application/json") -> list[object]:
    parser = N8nAnswerParser(ctype)
    events: list[object] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    assert parser.close() == []  # closing twice is harmless
    return events


def well_formed(events: list[object]) -> None:
    assert all(isinstance(e, Delta | Error) for e in events)
    errors = [i for i, e in enumerate(events) if isinstance(e, Error)]
    assert len(errors) <= 1
    if errors:
        assert errors[0] == len(events) - 1  # nothing after an error


NOISE = st.one_of(
    st.binary(max_size=400),
    st.lists(
        st.sampled_from(
            [
                b'{"type":"begin","metadata":{"nodeId":"a"}}\n',
                b'{"type":"item","content":"hi"}\n',
                b'{"type":"item","content":{"x":1}}\n',
                b'{"type":"end","metadata":{"nodeId":"a"}}\n',
                b'{"type":"error","content":"boom"}\n',
                b'{"output":"whole"}',
                b"[" * 50,
                b"\xff\xfe",
                b"\n",
                b"not json\n",
                b'{"type":',
            ]
        ),
        max_size=12,
    ).map(b"".join),
)


@settings(max_examples=300)
@given(NOISE, st.lists(st.integers(min_value=0), max_size=8), CTYPES)
def test_arbitrary_bytes_never_raise_and_split_does_not_matter(
    data: bytes, cuts: list[int], ctype: str
) -> None:
    whole = parse([data], ctype)
    well_formed(whole)
    assert parse(split(data, cuts), ctype) == whole


ITEM = st.text(max_size=20).filter(bool)
GROUPS = st.lists(st.lists(ITEM, max_size=5), min_size=1, max_size=3)


def ndjson(groups: list[list[str]]) -> bytes:
    lines = []
    for n, items in enumerate(groups):
        meta = {"nodeId": f"node-{n}", "runIndex": 0, "itemIndex": 0}
        lines.append({"type": "begin", "metadata": meta})
        lines.extend({"type": "item", "content": text, "metadata": meta} for text in items)
        lines.append({"type": "end", "metadata": meta})
    return b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines)


@given(GROUPS, st.lists(st.integers(min_value=0), max_size=12))
def test_valid_streams_give_the_same_deltas_however_they_are_cut(
    groups: list[list[str]], cuts: list[int]
) -> None:
    data = ndjson(groups)
    expected = [Delta(t) for items in groups for t in items]
    assert parse([data]) == expected
    assert parse(split(data, cuts)) == expected
    assert parse([bytes([b]) for b in data]) == expected  # one byte at a time


@given(GROUPS, st.integers(min_value=1))
def test_a_stream_cut_inside_a_group_ends_in_one_error(groups: list[list[str]], cut: int) -> None:
    data = ndjson(groups)
    head = data[: cut % len(data)]
    events = parse([head])
    well_formed(events)
    # What the parser can know: the lines that arrived whole (the last one may lack only "\n").
    kinds = []
    for line in head.split(b"\n"):
        with contextlib.suppress(ValueError):
            kinds.append(json.loads(line)["type"])
    complete = "end" in kinds and kinds.count("begin") == kinds.count("end")
    assert (
        isinstance(events[-1], Error)
        if not complete
        else not any(isinstance(e, Error) for e in events)
    )
    deltas = [e for e in events if isinstance(e, Delta)]
    assert deltas == [Delta(t) for t in [t for items in groups for t in items][: len(deltas)]]


@given(
    st.text(max_size=50),
    st.sampled_from(["output", "text", "message"]),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_whole_json_answers_are_cut_invariant(text: str, key: str, cuts: list[int]) -> None:
    data = json.dumps({key: text}).encode()
    events = parse(split(data, cuts))
    if text:
        assert events == [Delta(text)]
    else:
        assert len(events) == 1 and isinstance(events[0], Error)
