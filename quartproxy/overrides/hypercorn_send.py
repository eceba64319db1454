"""Hypercorn's socket write without a trip through trio's scheduler when the kernel takes it.

Library: Hypercorn, verified against 0.17.x and 0.18.x (0.18.0); on any other version this is
not applied (a loud warning, Hypercorn's own `protocol_send` serves: overrides/versions.py).
Replaced: `hypercorn.trio.tcp_server.TCPServer.protocol_send`, for `RawData` on plain TCP only;
everything else (TLS, `Closed`, `Updated`, a write the kernel does not take whole) goes to the
original. tests/unit/test_overrides.py fingerprints it. Upstream proposal, ready to send:
docs/upstream/hypercorn-trio-send-fast-path.md.

Why: every body chunk of a streamed answer (one per delta) went through `send_lock` (a
`trio.Lock`: one yield to the scheduler), a shielded cancel scope, and `SocketStream.send_all`
(a conflict detector, a memoryview, `send(2)`, then a second yield). Two scheduler passes per
delta for a write the kernel accepts at once nearly always (a chat delta is ~100 bytes against a
socket buffer of hundreds of KiB). Here the write is tried once, directly, when no other write of
the connection is in progress (`send_lock` free, checked and written with no await between, so
no other task can interleave); whatever the kernel did not take, and every error, goes through
the original path, which waits for writability and reports a closed peer as before. The send
was shielded before (never cancelled mid-write) and stays so: there is no await in the fast path.
Measured: docs/benchmarks.md, "CPU per delta".
"""

from __future__ import annotations

import os
from typing import Any

import trio

TESTED_VERSIONS = ("0.17.", "0.18.")
_MARK = "_quartproxy_send_fast_path"
ORIGINALS: dict[str, Any] = {}


def install() -> bool:
    """Idempotent; called by the app factory (every worker). False when not applied."""
    from hypercorn.events import RawData
    from hypercorn.trio.tcp_server import TCPServer

    from .versions import supported

    if getattr(TCPServer.protocol_send, _MARK, False):
        return True
    if os.name != "posix" or not supported(
        "hypercorn", TESTED_VERSIONS, "hypercorn_send.py", required=False
    ):
        return False
    original = ORIGINALS["TCPServer.protocol_send"] = TCPServer.protocol_send

    async def protocol_send(self: Any, event: Any) -> None:
        plain = type(self.stream) is trio.SocketStream
        if type(event) is RawData and plain and not self.send_lock.locked():
            data = event.data
            sent = write_now(self.stream, data)
            if sent == len(data):
                # One pass through the scheduler all the same (the original made two): without
                # it an app that answers before its request body was read ran to its end in one
                # step, ahead of the connection's reader, and Hypercorn closed the keep-alive
                # connection (the client's next request: "Server disconnected"). Shielded, as
                # the original send was: a write that happened is never reported cancelled.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            if sent:
                # the rest must follow, even if this task is cancelled meanwhile (the original
                # could be cancelled taking the lock, leaving half a chunk on the wire)
                with trio.CancelScope(shield=True):
                    await original(self, RawData(data=data[sent:]))
                return
        await original(self, event)

    setattr(protocol_send, _MARK, True)
    protocol_send.__wrapped__ = original  # type: ignore[attr-defined]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
    return True


def installed() -> bool:
    from hypercorn.trio.tcp_server import TCPServer

    return bool(getattr(TCPServer.protocol_send, _MARK, False))


def write_now(stream: trio.SocketStream, data: bytes) -> int:
    """One non-blocking write(2) of `data` (trio's sockets are non-blocking): how much the
    kernel took, 0 when it took nothing or failed (the caller's slow path then reports it)."""
    try:
        return os.write(stream.socket.fileno(), data)
    except OSError:  # BlockingIOError, a closed descriptor, a reset peer
        return 0
