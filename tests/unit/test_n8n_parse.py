"""The n8n answer parser: every shape n8n answers in, split at every byte boundary."""

from __future__ import annotations

import json

import pytest

from quartproxy.core.events import Delta, Error
from quartproxy.core.n8n_parse import (
    EMPTY_ANSWER,
    STREAM_CUT,
    UNREADABLE,
    WORKFLOW_FAILED,
    N8nAnswerParser,
    answer_text,
    langchain_message,
    parse_history,
)

M = {"nodeId": "a", "nodeName": "Agent", "itemIndex": 0, "runIndex": 0, "timestamp": 1}


def line(kind: str, content: str | None = None, **meta: object) -> bytes:
    obj: dict[str, object] = {"type": kind, "metadata": {**M, **meta}}
    if content is not None:
        obj["content"] = content
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def run(body: bytes, splits: int | None = None, content_type: str = "application/json") -> list:
    p = N8nAnswerParser(content_type)
    out = []
    if splits is None:
        out += p.feed(body)
    else:
        for i in range(0, len(body), splits):
            out += p.feed(body[i : i + splits])
    out += p.close()
    return out


STREAM = (
    line("begin") + line("item", "Hel") + line("item", "lo ") + line("item", "wörld") + line("end")
)


@pytest.mark.parametrize("size", [None, 1, 2, 3, 7, 64])
def test_stream_split_anywhere_gives_same_deltas(size: int | None) -> None:
    assert run(STREAM, size) == [Delta("Hel"), Delta("lo "), Delta("wörld")]


def test_utf8_split_inside_a_character() -> None:
    body = line("begin") + line("item", "é😀") + line("end")
    cut = body.index("😀".encode()) + 1
    p = N8nAnswerParser()
    out = p.feed(body[:cut]) + p.feed(body[cut:]) + p.close()
    assert out == [Delta("é😀")]


def test_several_groups_are_one_answer() -> None:
    body = (
        line("begin")
        + line("item", "a")
        + line("end")
        + line("begin", nodeId="b")
        + line("item", "b", nodeId="b")
        + line("end", nodeId="b")
    )
    p = N8nAnswerParser()
    assert p.feed(body) + p.close() == [Delta("a"), Delta("b")]
    assert p.text == "ab"


def test_error_chunk_stops_the_answer() -> None:
    body = line("begin") + line("item", "x") + line("error", "secret detail") + line("item", "y")
    out = run(body)
    assert out == [Delta("x"), Error("upstream_error", WORKFLOW_FAILED)]
    assert "secret detail" not in repr(out)


def test_missing_end_is_a_cut_stream() -> None:
    assert run(line("begin") + line("item", "x")) == [
        Delta("x"),
        Error("upstream_error", STREAM_CUT),
    ]


def test_end_of_one_group_but_another_still_open() -> None:
    body = line("begin") + line("end") + line("begin", runIndex=1) + line("item", "z", runIndex=1)
    assert run(body)[-1] == Error("upstream_error", STREAM_CUT)


def test_last_line_without_newline() -> None:
    assert run(STREAM.rstrip(b"\n")) == [Delta("Hel"), Delta("lo "), Delta("wörld")]


def test_garbage_lines_are_counted_and_skipped() -> None:
    p = N8nAnswerParser()
    out = p.feed(
        line("begin") + b"not json\n" + b'{"type":"weird"}\n' + line("item", "ok") + line("end")
    )
    out += p.close()
    assert out == [Delta("ok")]
    assert p.garbage_lines == 2


def test_empty_items_and_non_string_content() -> None:
    body = (
        line("begin")
        + line("item", "")
        + line("item")
        + b'{"type":"item","content":42}\n'
        + line("end")
    )
    assert run(body) == [Delta("42")]


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        ({"output": "o"}, "o"),
        ({"text": "t"}, "t"),
        ({"message": "m"}, "m"),
        ({"output": "o", "text": "t"}, "o"),
        ([{"output": "listed"}], "listed"),
        ([{"json": {"output": "item form"}}], "item form"),
        ({"output": 12}, "12"),
    ],
)
def test_single_json_answers(obj: object, text: str) -> None:
    body = json.dumps(obj, indent=2).encode()  # pretty-printed: spans several lines
    assert run(body) == [Delta(text)]
    assert run(body, 5) == [Delta(text)]


@pytest.mark.parametrize("body", [b"", b"   \n", b"{}", b'{"output": ""}'])
def test_empty_answers(body: bytes) -> None:
    out = run(body)
    assert len(out) == 1 and isinstance(out[0], Error)
    assert out[0].message in (EMPTY_ANSWER, UNREADABLE)


@pytest.mark.parametrize("body", [b"<html>502</html>", b"[1, 2]", b'{"other": 1}', b"\xff\xfe"])
def test_unreadable_answers(body: bytes) -> None:
    assert run(body) == [Error("upstream_error", UNREADABLE)]


def test_plain_text_answer_with_text_content_type() -> None:
    assert run(b"Just text", content_type="text/plain; charset=utf-8") == [Delta("Just text")]


def test_feed_after_close_or_failure_is_ignored() -> None:
    p = N8nAnswerParser()
    p.feed(line("begin") + line("error"))
    assert p.failed
    assert p.feed(line("item", "late")) == []
    assert p.close() == []
    assert p.close() == []


def test_answer_text_priority() -> None:
    assert answer_text({"text": "t", "message": "m"}) == "t"
    assert answer_text({"output": {"nested": 1}, "text": "t"}) == "t"
    assert answer_text(None) is None
    assert answer_text([{"output": "a"}, {"output": "b"}]) is None


def test_history_from_langchain_messages() -> None:
    data = {"data": [langchain_message("user", "hi"), langchain_message("assistant", "hello")]}
    assert parse_history(data) == [("user", "hi"), ("assistant", "hello")]
    assert parse_history([data]) == [("user", "hi"), ("assistant", "hello")]
    assert parse_history(data["data"]) == [("user", "hi"), ("assistant", "hello")]


@pytest.mark.parametrize(
    "junk", [None, {}, {"data": None}, {"data": [1, "x", {"kwargs": {}}]}, "str", [[]]]
)
def test_history_junk_is_empty(junk: object) -> None:
    assert parse_history(junk) == []


def test_history_role_forms() -> None:
    data = [
        {"type": "human", "content": "a"},
        {"role": "assistant", "text": "b"},
        {"type": "system", "content": "c"},
    ]
    assert parse_history(data) == [("user", "a"), ("assistant", "b")]
