"""GOAWAY before Hypercorn closes an idle HTTP/2 connection (library workaround).

Measured (Hypercorn 0.18, trio worker): when the server closes an HTTP/2 connection that has no
open stream - on shutdown, after the drain, and when `keep_alive_timeout` expires - it just
closes the socket. RFC 9113 §6.8 asks for a GOAWAY first: it tells the client the close was
deliberate and which streams were processed, so a request the browser sent as the server was
closing is retried safely instead of failing with a connection error. Hypercorn sends GOAWAY
only when the *last stream* of a connection ends after shutdown began; our drain finishes every
stream before that, so without this no HTTP/2 client ever saw a GOAWAY on SIGTERM.

The fix belongs upstream: docs/upstream/hypercorn-h2-goaway-on-idle-close.md. Until then
`install()` wraps `TCPServer._initiate_server_close` (the one path of that idle close) to send
GOAWAY(NO_ERROR, last processed stream) first, bounded in time, then close as before.
"""

from __future__ import annotations

from typing import Any

import trio

GOAWAY_SEND_SECONDS = 1.0  # a peer that stopped reading must not hold the close up
_MARK = "_quartproxy_goaway"


async def send_goaway(server: Any) -> None:
    """GOAWAY on the HTTP/2 connection of this Hypercorn TCPServer, if it is one and is open."""
    import h2.exceptions
    from hypercorn.protocol.h2 import H2Protocol

    protocol = getattr(getattr(server, "protocol", None), "protocol", None)
    if not isinstance(protocol, H2Protocol) or protocol.closed:
        return
    try:
        protocol.connection.close_connection()  # last_stream_id: the highest one processed
    except h2.exceptions.ProtocolError:
        return  # the connection is already closing (a GOAWAY was sent or received)
    data = protocol.connection.data_to_send()
    # Straight to the stream with a deadline: Hypercorn's own send path is shielded and would
    # wait forever for a peer that does not read.
    with trio.move_on_after(GOAWAY_SEND_SECONDS):
        try:
            async with server.send_lock:
                await server.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass


def install() -> None:
    """Idempotent; called by the app factory, so it applies in every worker process."""
    from hypercorn.trio.tcp_server import TCPServer

    original = TCPServer._initiate_server_close
    if getattr(original, _MARK, False):
        return

    async def _initiate_server_close(self: Any) -> None:
        await send_goaway(self)
        await original(self)

    setattr(_initiate_server_close, _MARK, True)
    TCPServer._initiate_server_close = _initiate_server_close  # type: ignore[method-assign]
