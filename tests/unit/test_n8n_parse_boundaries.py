"""Exact edges of the n8n answer parser: the 8-MiB answer and 1-MiB line limits, the form of
the history messages it writes, and the parser's state after each kind of answer. Each case was
a surviving mutant of core/n8n_parse.py."""

from __future__ import annotations

import json

import pytest

from quartproxy.core.events import Delta, Error
from quartproxy.core.n8n_parse import (
    ANSWER_KEYS,
    CHUNK_TYPES,
    EMPTY_ANSWER,
    MAX_BODY_BYTES,
    MAX_LINE_BYTES,
    STREAM_CUT,
    UNREADABLE,
    WORKFLOW_FAILED,
    N8nAnswerParser,
    answer_text,
    langchain_message,
    parse_history,
)


def chunk(kind: str, content: object = None, node: str = "a", run: int = 0) -> bytes:
    obj: dict[str, object] = {"type": kind, "metadata": {"nodeId": node, "runIndex": run}}
    if content is not None:
        obj["content"] = content
    return json.dumps(obj).encode() + b"\n"


def parse(*parts: bytes, content_type: str = "application/json") -> tuple[list, N8nAnswerParser]:
    p = N8nAnswerParser(content_type)
    out: list = []
    for part in parts:
        out += p.feed(part)
    out += p.close()
    return out, p


def test_limits() -> None:
    assert (MAX_BODY_BYTES, MAX_LINE_BYTES) == (8 * 1024 * 1024, 1024 * 1024)
    assert {"begin", "item", "end", "error"} == CHUNK_TYPES
    assert ANSWER_KEYS == ("output", "text", "message")


def test_a_whole_answer_of_exactly_8_mib_is_read_and_one_byte_more_is_refused() -> None:
    head, tail = b'{"output": "', b'"}'
    at = head + b"x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(at) == MAX_BODY_BYTES
    out, p = parse(at[:1000], at[1000:])
    assert out == [Delta("x" * (MAX_BODY_BYTES - len(head) - len(tail)))]
    assert not p.failed
    over, p = parse(at[:1000], at[1000:] + b" ")
    assert over == [Error("upstream_error", UNREADABLE)]
    assert p.failed


def test_a_streamed_line_of_up_to_1_mib_is_waited_for_and_a_longer_one_fails() -> None:
    p = N8nAnswerParser()
    assert p.feed(chunk("begin")) == []
    assert p.feed(b"x" * MAX_LINE_BYTES) == []
    assert not p.failed
    assert p.feed(b"x") == [Error("upstream_error", UNREADABLE)]
    assert p.failed


def test_a_long_first_line_of_a_whole_answer_is_not_a_streaming_failure() -> None:
    body = b'{"output": "' + b"y" * (MAX_LINE_BYTES + 10) + b'"}'
    out, _ = parse(body[:100], body[100:])
    assert out == [Delta("y" * (MAX_LINE_BYTES + 10))]


def test_a_stream_keeps_its_text_and_counts_its_garbage() -> None:
    out, p = parse(chunk("begin") + b"junk\n\n  \n" + chunk("item", "a") + chunk("item", {"k": 1}))
    assert out[:2] == [Delta("a"), Delta('{"k": 1}')]
    assert out[2:] == [Error("upstream_error", STREAM_CUT)]
    assert p.text == 'a{"k": 1}' and p.garbage_lines == 1 and p.failed


def test_every_group_must_end() -> None:
    whole = chunk("begin", node="a") + chunk("begin", node="b") + chunk("item", "t", node="b")
    ok, p = parse(whole + chunk("end", node="b") + chunk("end", node="a"))
    assert ok == [Delta("t")] and not p.failed
    cut, _ = parse(whole + chunk("end", node="b"))
    assert cut[-1] == Error("upstream_error", STREAM_CUT)
    other_run, _ = parse(whole + chunk("end", node="b") + chunk("end", node="a", run=1))
    assert other_run[-1] == Error("upstream_error", STREAM_CUT)
    only_begin, _ = parse(chunk("begin"))
    assert only_begin == [Error("upstream_error", STREAM_CUT)]


def test_an_end_without_begin_completes_a_stream() -> None:
    out, p = parse(chunk("item", "t") + chunk("end"))
    assert out == [Delta("t")] and not p.failed


def test_an_error_chunk_stops_everything_after_it() -> None:
    out, p = parse(chunk("begin") + chunk("error") + chunk("item", "late"), chunk("end"))
    assert out == [Error("upstream_error", WORKFLOW_FAILED)]
    assert p.failed and p.text == ""


def test_the_last_line_without_newline_is_read_at_close() -> None:
    out, p = parse(chunk("begin") + chunk("item", "a") + chunk("end").rstrip(b"\n"))
    assert out == [Delta("a")] and not p.failed
    out, _ = parse(chunk("begin") + chunk("item", "a").rstrip(b"\n"))
    assert out == [Delta("a"), Error("upstream_error", STREAM_CUT)]


@pytest.mark.parametrize(
    ("body", "content_type", "events"),
    [
        (b'{"output": "o"}', "application/json", [Delta("o")]),
        (b'"bare"', "application/json", [Delta("bare")]),
        (b"plain", "text/plain", [Delta("plain")]),
        (b"plain", "TEXT/PLAIN; charset=utf-8", [Delta("plain")]),
        (b"plain", "application/json", [Error("upstream_error", UNREADABLE)]),
        (b"\xff", "text/plain", [Error("upstream_error", UNREADABLE)]),
        (b"   ", "text/plain", [Error("upstream_error", EMPTY_ANSWER)]),
        (b'""', "application/json", [Error("upstream_error", EMPTY_ANSWER)]),
        (b'{"output": null}', "application/json", [Error("upstream_error", UNREADABLE)]),
        (b'{"output": false}', "application/json", [Delta("False")]),
    ],
)
def test_whole_answers(body: bytes, content_type: str, events: list) -> None:
    out, p = parse(body, content_type=content_type)
    assert out == events
    assert p.failed == isinstance(events[0], Error)
    assert p.text == ("" if p.failed else events[0].text)


def test_answer_text_reads_like_the_widget() -> None:
    assert answer_text([{"output": "one"}]) == "one"
    assert answer_text([]) is None
    assert answer_text(["a", "b"]) is None
    assert answer_text(["only"]) == "only"
    assert answer_text({"json": {"text": "t"}}) == "t"
    assert answer_text({"json": "x", "output": "o"}) == "o"
    assert answer_text({"output": [1], "message": 0}) == "0"


def test_langchain_messages_are_the_form_the_widget_reads() -> None:
    assert langchain_message("user", "hi") == {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain_core", "messages", "HumanMessage"],
        "kwargs": {"content": "hi", "additional_kwargs": {}, "response_metadata": {}},
    }
    assert langchain_message("assistant", "yo")["id"] == ["langchain_core", "messages", "AIMessage"]


def test_history_forms() -> None:
    lc = [langchain_message("user", "q"), langchain_message("assistant", "a")]
    assert parse_history({"data": lc}) == [("user", "q"), ("assistant", "a")]
    assert parse_history([{"data": lc}]) == [("user", "q"), ("assistant", "a")]
    assert parse_history([{"data": lc}, {"data": lc}]) == []
    assert parse_history(lc) == [("user", "q"), ("assistant", "a")]
    roles = [
        {"type": "HumanMessage", "content": "1"},
        {"type": "human", "content": "2"},
        {"role": "user", "content": "3"},
        {"type": "AIMessage", "content": "4"},
        {"type": "ai", "text": "5"},
        {"role": "ASSISTANT", "content": "6"},
        {"id": [], "type": "user", "content": "7"},
        {"id": ["x", "AIMessage"], "kwargs": {"content": "8"}},
        {"kwargs": {"content": "9"}, "type": "human"},
        {"type": "human", "content": 10},
    ]
    assert parse_history(roles) == [
        ("user", "1"),
        ("user", "2"),
        ("user", "3"),
        ("assistant", "4"),
        ("assistant", "5"),
        ("assistant", "6"),
        ("user", "7"),
        ("assistant", "8"),
        ("user", "9"),
    ]


def test_a_stream_that_never_ends_is_cut_even_without_groups() -> None:
    out, p = parse(chunk("item", "t"))
    assert out == [Delta("t"), Error("upstream_error", STREAM_CUT)] and p.failed


def test_nothing_after_a_failure_even_a_last_line_without_newline() -> None:
    out, p = parse(chunk("begin") + chunk("error") + b'{"type": "item", "content": "late"}')
    assert out == [Error("upstream_error", WORKFLOW_FAILED)]
    assert p.text == ""


def test_structured_content_is_forwarded_as_utf8_json() -> None:
    out, _ = parse(chunk("begin") + chunk("item", {"k": "é"}) + chunk("end"))
    assert out == [Delta('{"k": "é"}')]


@pytest.mark.parametrize("body", [b"", b" \r\n "])
def test_an_empty_whole_answer_is_empty_not_unreadable(body: bytes) -> None:
    out, _ = parse(body)
    assert out == [Error("upstream_error", EMPTY_ANSWER)]
