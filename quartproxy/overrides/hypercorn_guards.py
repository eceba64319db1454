"""Three guards on Hypercorn's own connection handling, where no setting exists. Installed by
`install()` when the app is built (create_app), i.e. in every worker before it serves, however it
is started (`python -m quartproxy`, plain `hypercorn -c hypercorn.toml quartproxy:app`, tests).

1. No h2c upgrade, ever. Hypercorn's HTTP/1.1 protocol (hypercorn/protocol/h11.py,
   `H11Protocol._check_protocol`) answers any body-less request carrying `Upgrade: h2c` with
   `101 Switching Protocols` and speaks HTTP/2 from then on. Behind a reverse proxy that relays
   upgrades that is a raw HTTP/2 tunnel past the proxy: every tunnelled request arrives from the
   trusted hop, so its X-Forwarded-For is believed (per-IP limits bypassed) and the proxy's deny
   rules (/metrics) never see it. Here the `Upgrade: h2c` header is ignored, as RFC 9110 §7.8
   allows, and the request is answered over HTTP/1.1 like any other. HTTP/2 stays available
   through TLS (ALPN h2). Prior knowledge (`PRI * HTTP/2.0`) is left as Hypercorn has it.
2. Ambiguous request framing is refused. h11 reads a request with both Content-Length and
   Transfer-Encoding as chunked and keeps the connection open, so a pipelined request after it
   is served; RFC 9112 §6.1 requires closing. Transfer-Encoding in an HTTP/1.0 request is
   faulty framing too (§6.1). Such a request gets `400` and the connection is closed.
3. WebSocket messages are bounded before they are buffered. Hypercorn's `WebsocketBuffer`
   appends a frame's data and only then compares with `websocket_max_message_size`, and after
   its 1009 close it keeps appending whatever the peer still sends (the buffer is never cleared),
   so memory grows with a peer that ignores the close. Here a message that would pass the limit
   is dropped before it is stored, the 1009 close is sent once, and everything the peer sends
   after it is discarded until its close arrives. permessage-deflate is not negotiated: wsproto
   inflates a frame without an output bound (a 64 KiB read can become ~64 MiB), and chat frames
   are a few KiB of text.

Upstream reports, ready to send: docs/upstream/hypercorn-h2c-and-websocket-limits.md (1, 3)
and docs/upstream/h11-cl-te-keep-alive.md (2). Each guard replaces or wraps one method, checked
against the Hypercorn versions it was written for (tests/unit/test_hypercorn_guards.py fails
when Hypercorn changes those methods; the behaviour is tested through real sockets in
tests/integration/test_edge_protocols.py and test_nginx.py). Obs-fold and bare LF, which h11
also accepts (both within RFC 9112), are left to the reverse proxy: docs/threat-model.md.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import version
from typing import Any

import h11
from hypercorn.protocol import h11 as hyper_h11
from hypercorn.protocol import ws_stream
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

log = logging.getLogger("quartproxy.overrides")

TESTED_VERSIONS = ("0.17.", "0.18.")  # requirements.txt: hypercorn>=0.17,<0.19

_installed = False
_originals: dict[str, Any] = {}


# -- 1 and 2: HTTP/1.1 requests -----------------------------------------------------------------


def _header_values(request: h11.Request, name: bytes) -> list[bytes]:
    return [value for key, value in request.headers if key == name]  # h11 lower-cases names


def asks_h2c(request: h11.Request) -> bool:
    return any(
        token.strip().lower() == b"h2c"
        for value in _header_values(request, b"upgrade")
        for token in value.split(b",")
    )


def ambiguous_framing(request: h11.Request) -> bool:
    """Both Content-Length and Transfer-Encoding, or Transfer-Encoding in HTTP/1.0."""
    if not _header_values(request, b"transfer-encoding"):
        return False
    return bool(_header_values(request, b"content-length")) or request.http_version < b"1.1"


async def _check_protocol(self: Any, event: h11.Request) -> None:
    if ambiguous_framing(event):
        self._qp_refused = True
        return
    if asks_h2c(event):
        return  # answered over HTTP/1.1: the Upgrade header is ignored (RFC 9110 §7.8)
    await _originals["check_protocol"](self, event)


_LOG_EVERY_SECONDS = 60.0
_last_logged = -_LOG_EVERY_SECONDS
_unlogged = 0


def _log_refusal() -> None:
    """One line a minute at most (a client can send such requests in a loop; each costs it a
    new connection, but the log should not be its lever), with the count since the last."""
    global _last_logged, _unlogged
    _unlogged += 1
    now = time.monotonic()
    if now - _last_logged < _LOG_EVERY_SECONDS:
        return
    log.warning(
        "refused %d request(s) with ambiguous framing (Content-Length with Transfer-Encoding, "
        "or Transfer-Encoding in HTTP/1.0) and closed their connections",
        _unlogged,
        extra={"event": "framing_refused", "count": _unlogged},
    )
    _last_logged, _unlogged = now, 0


async def _create_stream(self: Any, request: h11.Request) -> None:
    if getattr(self, "_qp_refused", False):
        _log_refusal()
        # What Hypercorn itself does with a request h11 cannot parse: 400, close. The body
        # and anything pipelined after it are never read (no stream is created).
        await self._send_error_response(400)
        await self.send(hyper_h11.Closed())
        return
    await _originals["create_stream"](self, request)


# -- 3: WebSocket messages ----------------------------------------------------------------------


def _buffer_extend(self: Any, event: Message) -> None:
    if self.length + len(event.data) > self.max_length:
        self.clear()  # nothing of this message is kept
        raise ws_stream.FrameTooLargeError()
    _originals["buffer_extend"](self, event)


async def _handle_events(self: Any) -> None:
    """Hypercorn's WSStream._handle_events, except that after a message over the limit it
    closes with 1009 once and drops every later message (Hypercorn buffers them and stops
    reading the batch, which can leave the peer's close frame unread)."""
    for event in self.connection.events():
        if isinstance(event, Message):
            if getattr(self, "_qp_too_big", False):
                continue
            try:
                self.buffer.extend(event)
            except ws_stream.FrameTooLargeError:
                self._qp_too_big = True
                await self._send_wsproto_event(CloseConnection(code=CloseReason.MESSAGE_TOO_BIG))
                continue
            if event.message_finished:
                await self.app_put(self.buffer.to_message())
                self.buffer.clear()
        elif isinstance(event, Ping):
            await self._send_wsproto_event(event.response())
        elif isinstance(event, CloseConnection):
            if self.connection.state == ConnectionState.REMOTE_CLOSING:
                await self._send_wsproto_event(event.response())
            await self.send(ws_stream.StreamClosed(stream_id=self.stream_id))


def _handshake_accept(self: Any, subprotocol: Any, additional_headers: Any) -> Any:
    self.extensions = None  # no permessage-deflate: see the module docstring
    return _originals["handshake_accept"](self, subprotocol, additional_headers)


# -- installation -------------------------------------------------------------------------------

TARGETS = {
    "check_protocol": (hyper_h11.H11Protocol, "_check_protocol", _check_protocol),
    "create_stream": (hyper_h11.H11Protocol, "_create_stream", _create_stream),
    "buffer_extend": (ws_stream.WebsocketBuffer, "extend", _buffer_extend),
    "handle_events": (ws_stream.WSStream, "_handle_events", _handle_events),
    "handshake_accept": (ws_stream.Handshake, "accept", _handshake_accept),
}


def check_hypercorn() -> str:
    """The installed Hypercorn version, if it is one these guards were written for; otherwise
    RuntimeError (the app refuses to start rather than serve without them)."""
    found = version("hypercorn")
    if not found.startswith(TESTED_VERSIONS):
        raise RuntimeError(
            f"quartproxy's Hypercorn guards (quartproxy/overrides/hypercorn_guards.py) were "
            f"written for Hypercorn {', '.join(v + 'x' for v in TESTED_VERSIONS)}; found {found}. "
            "Re-read the replaced methods, update the guards and TESTED_VERSIONS."
        )
    missing = [
        f"{cls.__name__}.{name}" for cls, name, _ in TARGETS.values() if not hasattr(cls, name)
    ]
    if missing or not hasattr(ws_stream, "FrameTooLargeError"):
        raise RuntimeError(f"Hypercorn {found} lacks {missing}: the guards cannot be installed")
    return found


def install() -> None:
    """Idempotent."""
    global _installed
    if _installed:
        return
    check_hypercorn()
    for key, (cls, name, replacement) in TARGETS.items():
        _originals[key] = getattr(cls, name)
        setattr(cls, name, replacement)
    _installed = True


def uninstall() -> None:
    """For tests that show what happens without the guards."""
    global _installed
    if not _installed:
        return
    for key, (cls, name, _) in TARGETS.items():
        setattr(cls, name, _originals.pop(key))
    _installed = False


def installed() -> bool:
    return _installed


def original(key: str) -> Any:
    """Hypercorn's own method behind a guard (for the test that notices when it changes)."""
    cls, name, _ = TARGETS[key]
    return _originals[key] if _installed else getattr(cls, name)
