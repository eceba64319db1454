"""The Hypercorn guards (quartproxy/overrides/hypercorn_guards.py) replace private methods of
Hypercorn: this fails loudly when Hypercorn changes any method they replace or rely on, so the
guards are re-read before a new Hypercorn is trusted. Their behaviour is tested through real
sockets in tests/integration/test_edge_protocols.py and test_nginx.py."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version
from pathlib import Path

import pytest
from hypercorn.config import Config
from hypercorn.protocol import h11 as hyper_h11
from hypercorn.protocol import ws_stream

from quartproxy.config import Settings
from quartproxy.overrides import hypercorn_guards

# sha256[:16] of the source of each method, per Hypercorn version the guards were checked on.
READ = {
    "0.18.0": {
        "check_protocol": "f95f6b38f43c62aa",
        "create_stream": "a2338a57ab343908",
        "buffer_extend": "b10bdcb6f21b967d",
        "handle_events": "b90f3f595ff9fd47",
        "handshake_accept": "e163533bf7919793",
        # not replaced, relied on: requests go through _check_protocol, then _create_stream;
        # the handshake keeps the offered extensions in `extensions`
        "H11Protocol._handle_events": "bd4a76b2837e8722",
        "Handshake.__init__": "2340bc6044f1de62",
    }
}


def fingerprint(func: object) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_the_replaced_hypercorn_methods_are_the_ones_that_were_read() -> None:
    found = version("hypercorn")
    if found not in READ:
        pytest.fail(
            f"Hypercorn {found}: re-read the methods named in hypercorn_guards.TARGETS (and "
            "H11Protocol._handle_events, Handshake.__init__), then record their fingerprints here"
        )
    seen = {key: fingerprint(hypercorn_guards.original(key)) for key in hypercorn_guards.TARGETS}
    seen["H11Protocol._handle_events"] = fingerprint(hyper_h11.H11Protocol._handle_events)
    seen["Handshake.__init__"] = fingerprint(ws_stream.Handshake.__init__)
    assert seen == READ[found]


def test_the_installed_version_is_checked() -> None:
    assert hypercorn_guards.check_hypercorn() == version("hypercorn")


def test_an_untested_hypercorn_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypercorn_guards, "version", lambda name: "0.19.0")
    with pytest.raises(RuntimeError, match="written for Hypercorn"):
        hypercorn_guards.check_hypercorn()


def test_install_is_idempotent_and_reversible() -> None:
    was = hypercorn_guards.installed()
    hypercorn_guards.install()
    hypercorn_guards.install()
    assert hyper_h11.H11Protocol._check_protocol is hypercorn_guards._check_protocol
    hypercorn_guards.uninstall()
    assert hyper_h11.H11Protocol._check_protocol is hypercorn_guards.original("check_protocol")
    if was:
        hypercorn_guards.install()


def test_the_shipped_hypercorn_toml_bounds_websocket_messages_by_the_body_limit() -> None:
    shipped = Config.from_toml(str(Path(__file__).resolve().parents[2] / "hypercorn.toml"))
    assert shipped.websocket_max_message_size == Settings.max_body_bytes == 64 * 1024
