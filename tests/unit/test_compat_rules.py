"""The @n8n/chat endpoint's pure rules: its body, the derived conversation key, Accept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy import guard
from quartproxy.core import messages
from quartproxy.core.messages import InputLimits
from quartproxy.errors import ApiError
from quartproxy.http.compat import wants_stream
from tests.support import ORIGIN, settings_for


class FakeServices:
    settings = settings_for("http://127.0.0.1:9/webhook/chat")


SVC: Any = FakeServices()


def parse(obj: Any) -> Any:
    return messages.parse_n8n_chat_body(
        json.dumps(obj).encode(), "application/json", InputLimits.from_settings(SVC.settings)
    )


def test_send_message_body() -> None:
    body = parse(
        {"action": "sendMessage", "sessionId": " abc ", "chatInput": " hi ", "metadata": {"a": 1}}
    )
    assert (body.action, body.session_id, body.message, body.metadata) == (
        "sendMessage",
        "abc",
        "hi",
        {"a": 1},
    )


def test_load_previous_session_body_needs_no_chat_input() -> None:
    body = parse({"action": "loadPreviousSession", "sessionId": "abc"})
    assert (body.action, body.session_id, body.message) == ("loadPreviousSession", "abc", None)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "body"),
        ({"sessionId": "a", "chatInput": "x"}, "action"),
        ({"action": "SendMessage", "sessionId": "a", "chatInput": "x"}, "action"),
        ({"action": "sendMessage", "chatInput": "x"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": "", "chatInput": "x"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": "a" * 129, "chatInput": "x"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": "a\u0000b", "chatInput": "x"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": 7, "chatInput": "x"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": "a"}, "chatInput"),
        ({"action": "sendMessage", "sessionId": "a", "chatInput": ""}, "body"),
        ({"action": "sendMessage", "sessionId": "a", "chatInput": "x" * 4001}, "body"),
        (
            {"action": "sendMessage", "sessionId": "a", "chatInput": "x", "metadata": "m"},
            "metadata",
        ),
    ],
)
def test_bad_bodies(obj: Any, field: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse(obj)
    assert refused.value.status == 400
    assert refused.value.code == "bad_request"
    if field != "body":
        assert field in refused.value.message


def test_the_derived_key() -> None:
    key = guard.widget_session_key(ORIGIN, "visitor-1")
    assert key == guard.widget_session_key(ORIGIN, "visitor-1")  # returning visitors
    assert key != guard.widget_session_key("https://other.example.org", "visitor-1")
    assert key != guard.widget_session_key(ORIGIN, "visitor-2")
    assert len(key) == 33 and key.startswith("w")
    assert "visitor" not in key


@given(st.text(min_size=1, max_size=128))
def test_a_derived_key_never_looks_like_a_proxy_session(widget_id: str) -> None:
    key = guard.widget_session_key(ORIGIN, widget_id)
    assert key.startswith("w") and "-" not in key  # proxy sessions are uuid4 (with dashes)
    assert key != widget_id


@pytest.mark.parametrize(
    ("accept", "stream"),
    [
        ("text/plain", True),
        ("text/plain, application/json", True),
        ("application/json;q=0.9, TEXT/PLAIN", True),
        ("text/plain;charset=utf-8", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("text/html", False),
        ("text/plain;q=0", False),
    ],
)
def test_streaming_is_chosen_by_accept(accept: str, stream: bool) -> None:
    assert wants_stream(accept) is stream
