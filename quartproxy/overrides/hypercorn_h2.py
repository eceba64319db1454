"""Fixes to Hypercorn's HTTP/2 (library workarounds; `install()` applies them all).

Library: Hypercorn, verified against 0.18.0 (the versions of hypercorn_guards.TESTED_VERSIONS
are accepted; any other refuses to start: overrides/versions.py). The replaced methods are
fingerprinted in tests/unit/test_overrides.py. Upstream reports: docs/upstream/hypercorn-h2-*.md.

1. Backpressure for a stream whose flow-control window is shut
   (docs/upstream/hypercorn-h2-flow-control-backpressure.md).
   Hypercorn pauses an app's `send` once a stream's buffer holds 32 KiB, and resumes it from
   `StreamBuffer.pop` whenever the popped chunk is small - including the *empty* pop made when
   the client grants no window. So a client that advertises a zero window (or simply stops
   reading one stream) lets the app push its whole response into memory: measured, 100 MiB
   buffered for a client that had received 0 bytes. Over HTTP/1.1, TCP backpressure stops the
   app; over HTTP/2 each connection carries up to h2_max_concurrent_streams such streams. The
   fix resumes the writer only once the *buffer* has drained below the low-water mark.

   Same report: when the connection closes, Hypercorn never releases the stream buffers, so a
   `send` waiting for window (or for the buffer to drain at the end of a response) waits for
   ever. With the final send shielded (http/keepalive.py) that was a task per stalled stream
   leaked for the life of the worker, and a shutdown that never finished (measured: a client
   that shuts a stream's window, waits for the answer's end, then disconnects). The fix closes
   every stream buffer of a connection when the connection closes.

2. GOAWAY before an idle HTTP/2 connection is closed
   (docs/upstream/hypercorn-h2-goaway-on-idle-close.md).
   When the server closes an HTTP/2 connection that has no open stream - on shutdown, after
   the drain, and when `keep_alive_timeout` expires - Hypercorn just closes the socket.
   RFC 9113 §6.8 asks for a GOAWAY first: it tells the client the close was deliberate and which
   streams were processed, so a request the browser sent as the server was closing is retried
   safely instead of failing with a connection error. Hypercorn sends GOAWAY only when the
   *last stream* of a connection ends after shutdown began; our drain finishes every stream
   before that, so without this no HTTP/2 client ever saw a GOAWAY on SIGTERM. The fix wraps
   `TCPServer._initiate_server_close` (the one path of that idle close) to send
   GOAWAY(NO_ERROR, last processed stream) first, bounded in time, then close as before.

3. `h2_max_header_list_size` enforced (docs/upstream/hypercorn-h2-settings-not-enforced.md).
   Hypercorn advertises it in SETTINGS but h2's HPACK decoder keeps its own default (64 KiB):
   h2 copies the setting to the decoder only when an acknowledged SETTINGS *changes* it, and
   Hypercorn installs it as the initial value. The fix sets the decoder's limit as each
   connection starts. (`h2_max_inbound_frame_size` is not applied either: frames stay at h2's
   16 KiB, which is the value hypercorn.toml sets, so nothing to fix for us.)
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.protocol import h2 as hypercorn_h2

GOAWAY_SEND_SECONDS = 1.0  # a peer that stopped reading must not hold the close up
_MARK = "_quartproxy_goaway"


async def pop(self: hypercorn_h2.StreamBuffer, max_length: int) -> bytes:
    """StreamBuffer.pop, resuming a paused writer only when the buffer has drained below the
    low-water mark (not whenever the popped chunk was small, as a zero-window pop is)."""
    length = min(len(self.buffer), max_length)
    data = bytes(self.buffer[:length])
    del self.buffer[:length]
    if len(self.buffer) < hypercorn_h2.BUFFER_LOW_WATER:
        await self._paused.set()
    if len(self.buffer) == 0:
        await self._is_empty.set()
    return data


async def handle(self: hypercorn_h2.H2Protocol, event: Any) -> None:
    """H2Protocol.handle, then, once the connection is closed, release every writer still
    waiting on one of its stream buffers (push or drain): nothing will ever be sent."""
    from hypercorn.events import Closed

    await _original_handle(self, event)
    if isinstance(event, Closed):
        for buffer in list(self.stream_buffers.values()):
            await buffer.close()


_original_handle = hypercorn_h2.H2Protocol.handle
_original_init = hypercorn_h2.H2Protocol.__init__
# Hypercorn's own methods as imported, for the test that notices when they change
ORIGINALS: dict[str, Any] = {
    "StreamBuffer.pop": hypercorn_h2.StreamBuffer.pop,
    "H2Protocol.handle": _original_handle,
    "H2Protocol.__init__": _original_init,
}


def init(self: hypercorn_h2.H2Protocol, *args: Any, **kwargs: Any) -> None:
    """H2Protocol.__init__, then the header-list limit it advertises is the one it enforces."""
    _original_init(self, *args, **kwargs)
    self.connection.decoder.max_header_list_size = self.config.h2_max_header_list_size


async def send_goaway(server: Any) -> None:
    """GOAWAY on the HTTP/2 connection of this Hypercorn TCPServer, if it is one and is open."""
    import h2.exceptions

    protocol = getattr(getattr(server, "protocol", None), "protocol", None)
    if not isinstance(protocol, hypercorn_h2.H2Protocol) or protocol.closed:
        return
    try:
        protocol.connection.close_connection()  # last_stream_id: the highest one processed
    except h2.exceptions.ProtocolError:
        return  # the connection is already closing (a GOAWAY was sent or received)
    data = protocol.connection.data_to_send()
    # Straight to the stream with a deadline: Hypercorn's own send path is shielded and would
    # wait for ever for a peer that does not read.
    with trio.move_on_after(GOAWAY_SEND_SECONDS):
        try:
            async with server.send_lock:
                await server.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass


def install() -> None:
    """Idempotent; called by the app factory, so it applies in every worker process."""
    from hypercorn.trio.tcp_server import TCPServer

    from .hypercorn_guards import TESTED_VERSIONS
    from .versions import supported

    supported("hypercorn", TESTED_VERSIONS, "hypercorn_h2.py", required=True)

    hypercorn_h2.StreamBuffer.pop = pop  # type: ignore[method-assign]
    hypercorn_h2.H2Protocol.handle = handle  # type: ignore[method-assign]
    hypercorn_h2.H2Protocol.__init__ = init  # type: ignore[method-assign]
    original = TCPServer._initiate_server_close
    if getattr(original, _MARK, False):
        return

    async def _initiate_server_close(self: Any) -> None:
        await send_goaway(self)
        await original(self)

    setattr(_initiate_server_close, _MARK, True)
    _initiate_server_close.__wrapped__ = original  # type: ignore[attr-defined]
    TCPServer._initiate_server_close = _initiate_server_close  # type: ignore[method-assign]
