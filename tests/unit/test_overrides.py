"""One smoke test per override of library internals (quartproxy/overrides/): each fails loudly
when the library changes the code the override copies, replaces or relies on, so the override
is re-read before a new version is trusted. (The Hypercorn guards have their own:
test_hypercorn_guards.py.) Behaviour is tested elsewhere: test_lean.py, test_fast_headers.py,
tests/integration/test_http2*.py, test_idle_streams.py, test_chat.py, test_hypercorn_read.py."""

from __future__ import annotations

import hashlib
import inspect
import logging
from importlib.metadata import version

import httpx
import pytest
from hypercorn.protocol import h2 as hypercorn_h2
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from quart.asgi import ASGIHTTPConnection
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers import TrioRequest, TrioWebsocket
from werkzeug.datastructures import Headers

from quartproxy.overrides import httpx_stream, quart_trio_connection, versions, werkzeug_headers
from quartproxy.overrides import hypercorn_h2 as h2_fixes


def fingerprint(func: object) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def read(library: str, seen: dict[str, str], known: dict[str, dict[str, str]]) -> None:
    found = version(library)
    if found not in known:
        pytest.fail(
            f"{library} {found}: re-read {sorted(seen)} and the override, then record "
            "their fingerprints here"
        )
    assert seen == known[found], f"{library} {found} changed code an override relies on"


def test_hypercorn_h2_methods_are_the_ones_that_were_read() -> None:
    close = TCPServer._initiate_server_close
    seen = {key: fingerprint(func) for key, func in h2_fixes.ORIGINALS.items()}
    seen["TCPServer._initiate_server_close"] = fingerprint(getattr(close, "__wrapped__", close))
    seen["StreamBuffer.push"] = fingerprint(hypercorn_h2.StreamBuffer.push)  # pauses at 32 KiB
    known = {
        "StreamBuffer.pop": "9eb73c8833891346",
        "H2Protocol.handle": "c67e89eb79af9032",
        "H2Protocol.__init__": "d577a96e2eb647a4",
        "TCPServer._initiate_server_close": "7c1b548a65adc8b1",
        "StreamBuffer.push": "4ca8ee7b0fec5200",
    }
    read("hypercorn", seen, {"0.18.0": known})


def test_quart_trio_connection_call_is_the_one_that_was_copied() -> None:
    seen = {"TrioASGIHTTPConnection.__call__": fingerprint(TrioASGIHTTPConnection.__call__)}
    read(
        "quart-trio",
        seen,
        {
            "0.12.0": {"TrioASGIHTTPConnection.__call__": "98802020652fd68b"},
            "0.13.0": {"TrioASGIHTTPConnection.__call__": "f502fbff800c2a64"},
        },
    )


def test_werkzeug_headers_lookups_are_the_ones_that_were_replaced() -> None:
    assert isinstance(Headers()._list, list)  # the attribute FastHeaders reads
    seen = {
        "Headers.get": fingerprint(Headers.get),
        "Headers.__contains__": fingerprint(Headers.__contains__),
    }
    known = {"Headers.get": "090076cdf314aab6", "Headers.__contains__": "01c1a82cd572e39a"}
    read("werkzeug", seen, {"3.1.9": known})


def test_httpx_aiter_raw_is_the_one_that_was_bypassed() -> None:
    seen = {"Response.aiter_raw": fingerprint(httpx.Response.aiter_raw)}
    read("httpx", seen, {"0.28.1": {"Response.aiter_raw": "f8662c5e6a82e0ee"}})


def test_an_unverified_version_refuses_a_protection_and_skips_a_saving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(versions, "version", lambda name: "99.0")
    monkeypatch.setattr(versions, "_warned", set())
    monkeypatch.setattr(httpx_stream, "_verified", None)
    with pytest.raises(RuntimeError, match="verified against hypercorn"):
        h2_fixes.install()
    with caplog.at_level(logging.WARNING, "quartproxy.overrides"):
        assert quart_trio_connection.connection_class() is TrioASGIHTTPConnection
        assert werkzeug_headers.request_classes() == (TrioRequest, TrioWebsocket)
        response = httpx.Response(200, stream=httpx.ByteStream(b""))
        assert httpx_stream.take_raw_stream(response) is None
    assert len([r for r in caplog.records if "Not applied" in r.getMessage()]) == 3


def test_the_verified_versions_apply_every_override() -> None:
    assert quart_trio_connection.connection_class() is quart_trio_connection.HTTPConnection
    assert werkzeug_headers.request_classes() == (
        werkzeug_headers.Request,
        werkzeug_headers.Websocket,
    )
    response = httpx.Response(200, stream=httpx.ByteStream(b"raw"))
    assert httpx_stream.take_raw_stream(response) is response.stream
    assert response.is_stream_consumed


def test_hypercorn_protocol_send_is_the_one_that_was_bypassed() -> None:
    send = TCPServer.protocol_send  # the original, whether or not the override is installed
    seen = {"TCPServer.protocol_send": fingerprint(getattr(send, "__wrapped__", send))}
    read("hypercorn", seen, {"0.18.0": {"TCPServer.protocol_send": "225856426bff7be0"}})


def test_hypercorn_and_h11_body_path_is_the_one_that_was_bypassed() -> None:
    """overrides/hypercorn_body.py frames a chunk itself because, for a Data event in chunked
    SEND_BODY, h11 changes no state and Hypercorn adds nothing but the framing: re-read these
    (and the override's docstring argument) before trusting another version."""
    import h11
    from h11 import _state, _writers
    from hypercorn import utils
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.http_stream import HTTPStream

    send = HTTPStream.app_send  # the original, whether or not the override is installed
    hyper = {
        "HTTPStream.app_send": fingerprint(getattr(send, "__wrapped__", send)),
        "H11Protocol.stream_send": fingerprint(H11Protocol.stream_send),
        "H11Protocol._send_h11_event": fingerprint(H11Protocol._send_h11_event),
        "suppress_body": fingerprint(utils.suppress_body),
    }
    read(
        "hypercorn",
        hyper,
        {
            "0.18.0": {
                "HTTPStream.app_send": "c806044b99736985",
                "H11Protocol.stream_send": "56a36254a368d71a",
                "H11Protocol._send_h11_event": "5e40283daa303ec7",
                "suppress_body": "21eb6cd69f3c0cd7",
            }
        },
    )
    state = _state.ConnectionState
    seen = {
        "Connection.send_with_data_passthrough": h11.Connection.send_with_data_passthrough,
        "Connection._process_event": h11.Connection._process_event,
        "Connection._respond_to_state_changes": h11.Connection._respond_to_state_changes,
        "ConnectionState.process_event": state.process_event,
        "ConnectionState.process_error": state.process_error,
        "ConnectionState.start_next_cycle": state.start_next_cycle,
        "ConnectionState._fire_state_triggered_transitions": (
            state._fire_state_triggered_transitions
        ),
        "BodyWriter.__call__": _writers.BodyWriter.__call__,
        "ChunkedWriter.send_data": _writers.ChunkedWriter.send_data,
    }
    read(
        "h11",
        {name: fingerprint(func) for name, func in seen.items()},
        {
            "0.16.0": {
                "Connection.send_with_data_passthrough": "e8332d21fb1a2963",
                "Connection._process_event": "34a61e13cd672ae1",
                "Connection._respond_to_state_changes": "b2a6461c234de46b",
                "ConnectionState.process_event": "cf17ddff4b02ae70",
                "ConnectionState.process_error": "22e2a6297e97bd95",
                "ConnectionState.start_next_cycle": "0f778bb3984a1d2e",
                "ConnectionState._fire_state_triggered_transitions": "09f0fcf0cee957e0",
                "BodyWriter.__call__": "f8d0c6746a6fdd9a",
                "ChunkedWriter.send_data": "0fbc8fb565f7029f",
            }
        },
    )
    # a Data event leaves the server in SEND_BODY (no transition to follow)
    assert _state.EVENT_TRIGGERED_TRANSITIONS[h11.SERVER][h11.SEND_BODY][h11.Data] is h11.SEND_BODY


def test_the_body_fast_path_is_not_applied_on_an_unverified_h11(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hypercorn.protocol.http_stream import HTTPStream

    from quartproxy.overrides import hypercorn_body

    was_installed = bool(hypercorn_body.ORIGINALS)
    hypercorn_body.uninstall()
    stock = HTTPStream.app_send
    monkeypatch.setattr(versions, "version", lambda name: "99.0" if name == "h11" else "0.18.0")
    monkeypatch.setattr(versions, "_warned", set())
    with caplog.at_level(logging.WARNING, "quartproxy.overrides"):
        assert not hypercorn_body.install()
    assert HTTPStream.app_send is stock
    assert "verified against h11 0.16.x; found 99.0" in caplog.text
    monkeypatch.undo()
    assert hypercorn_body.install()
    assert HTTPStream.app_send is not stock
    if not was_installed:
        hypercorn_body.uninstall()


def test_hypercorn_read_data_is_the_one_that_was_replaced() -> None:
    read_data = TCPServer._read_data  # the original, whether or not the override is installed
    seen = {"TCPServer._read_data": fingerprint(getattr(read_data, "__wrapped__", read_data))}
    read("hypercorn", seen, {"0.18.0": {"TCPServer._read_data": "7ca747d922c65cf1"}})


def test_hypercorn_spawn_app_is_the_one_that_was_replaced() -> None:
    spawn = TaskGroup.spawn_app  # the original, whether or not the override is installed
    seen = {"TaskGroup.spawn_app": fingerprint(getattr(spawn, "__wrapped__", spawn))}
    read("hypercorn", seen, {"0.18.0": {"TaskGroup.spawn_app": "b4c1131427529801"}})


def test_the_request_listener_steps_are_the_ones_that_were_copied() -> None:
    """quart_trio_connection.HTTPConnection.handle_messages repeats the per-message steps of
    quart-trio 0.13 (its own loop) and 0.12 (Quart's loop, which it calls)."""
    seen = {
        "TrioASGIHTTPConnection.handle_messages": fingerprint(
            TrioASGIHTTPConnection.handle_messages
        )
    }
    read(
        "quart-trio",
        seen,
        {
            "0.12.0": {"TrioASGIHTTPConnection.handle_messages": "8d994a7d28dcac9d"},
            "0.13.0": {"TrioASGIHTTPConnection.handle_messages": "a7d08002145014e6"},
        },
    )
    quart = {"ASGIHTTPConnection.handle_messages": fingerprint(ASGIHTTPConnection.handle_messages)}
    read(
        "quart",
        quart,
        {
            "0.22.0": {"ASGIHTTPConnection.handle_messages": "c69dd49dbf636109"},
            "0.23.1": {"ASGIHTTPConnection.handle_messages": "08d5fa00920c5ba4"},
        },
    )
