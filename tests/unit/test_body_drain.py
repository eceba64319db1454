"""core/body_drain.py: which early answers read the rest of a request body first (to keep an
HTTP/1.x connection), and how much of it at most."""

from __future__ import annotations

import pytest

from quartproxy.core.body_drain import DRAIN_MAX_BYTES, DRAIN_SECONDS, drain_budget


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_a_small_declared_body_is_read_to_its_length(version: str) -> None:
    assert drain_budget(version, [(b"content-length", b"255")]) == 255
    assert drain_budget(version, [(b"Content-Length", b" 1 ")]) == 1  # raw header names too
    assert drain_budget(version, [(b"content-length", b"65536")]) == DRAIN_MAX_BYTES


def test_a_body_declared_bigger_than_the_bound_is_not_read() -> None:
    assert drain_budget("1.1", [(b"content-length", b"65537")]) is None
    assert drain_budget("1.1", [(b"content-length", b"9" * 40)]) is None
    assert drain_budget("1.1", [(b"content-length", b"1" * 5000)]) is None  # no ValueError


def test_a_client_can_hold_an_early_answer_one_second_at_most() -> None:
    """The bound docs/operations.md and the threat model state (a body declared and not sent)."""
    assert 0 < DRAIN_SECONDS <= 1.0


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json")],
        [(b"content-length", b"0")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"1e3")],
        [(b"content-length", b"")],
        [(b"content-length", b"\xd9\xa1")],  # a non-ASCII digit
    ],
)
def test_no_body_or_an_unreadable_length_is_not_waited_for(
    headers: list[tuple[bytes, bytes]],
) -> None:
    assert drain_budget("1.1", headers) is None


def test_a_chunked_body_is_read_up_to_the_bound() -> None:
    assert drain_budget("1.1", [(b"transfer-encoding", b"chunked")]) == DRAIN_MAX_BYTES
    assert drain_budget("1.1", [(b"Transfer-Encoding", b" Chunked ")]) == DRAIN_MAX_BYTES
    assert drain_budget("1.1", [(b"transfer-encoding", b"gzip")]) is None


@pytest.mark.parametrize("version", ["2", "3", "", "0.9"])
def test_other_http_versions_are_left_alone(version: str) -> None:
    """An HTTP/2 stream ends without closing its connection: nothing to keep."""
    assert drain_budget(version, [(b"content-length", b"10")]) is None
    assert drain_budget(version, [(b"transfer-encoding", b"chunked")]) is None
