"""Hypercorn's connection reader without trio's receive machinery held while a connection waits.

Library: Hypercorn, verified against 0.17.x and 0.18.x (0.18.0); on any other version this is
not applied (a loud warning, Hypercorn's own reader serves: overrides/versions.py). Replaced:
`hypercorn.trio.tcp_server.TCPServer._read_data`, on plain TCP with no `read_timeout` (ours:
hypercorn.toml leaves it unset); TLS and a set `read_timeout` go to the original.
tests/unit/test_overrides.py fingerprints it. Upstream proposal, ready to send:
docs/upstream/hypercorn-trio-lean-idle-read.md.

Why: every connection spends nearly all its life waiting in `_read_data` (an open SSE answer
waits there for minutes, for the client's next bytes or its going away). Hypercorn waits inside
`trio.fail_after(read_timeout or inf)` (a cancel scope that never fires here) around
`SocketStream.receive_some` → `socket.recv` → `_nonblocking_helper`: two context managers, three
coroutine frames, a cancel scope and its status, and the previous read's bytes (the request)
still bound to `data` while it waits. ≈ 3 KB per open connection (bench/memory_profile.py).
Here: one `read(2)` of the descriptor and, when it has nothing, `trio.lowlevel.wait_readable`
(the wait trio's own recv does underneath), with nothing of the last read kept.

Same behaviour: the same checkpoints as trio's recv (a cancel check before, a shielded yield
after a read that did not wait), the same 64 KiB reads, and the same ends: EOF is handed to the
protocol as `RawData(b"")` then `Closed()`; a closed or failed socket (trio's
ClosedResourceError / BrokenResourceError, here EBADF, ECONNRESET... or `notify_closing` while
waiting) ends the loop with `Closed()` as the original's `except` does.
"""

from __future__ import annotations

import os
from typing import Any

import trio

TESTED_VERSIONS = ("0.17.", "0.18.")
_MARK = "_quartproxy_lean_read"
ORIGINALS: dict[str, Any] = {}


def install() -> bool:
    """Idempotent; called by the app factory (every worker). False when not applied."""
    from hypercorn.events import Closed, RawData
    from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

    from .versions import supported

    if getattr(TCPServer._read_data, _MARK, False):
        return True
    if os.name != "posix" or not supported(
        "hypercorn", TESTED_VERSIONS, "hypercorn_read.py", required=False
    ):
        return False
    original = ORIGINALS["TCPServer._read_data"] = TCPServer._read_data

    async def _read_data(self: Any) -> None:
        if type(self.stream) is not trio.SocketStream or self.config.read_timeout:
            await original(self)
            return
        sock = self.stream.socket
        while True:
            data = await read_some(sock, MAX_RECV)
            if data is None:
                break
            await self.protocol.handle(RawData(data))
            if not data:
                break
            data = None  # not kept while the next read waits
        await self.protocol.handle(Closed())

    setattr(_read_data, _MARK, True)
    _read_data.__wrapped__ = original  # type: ignore[attr-defined]
    TCPServer._read_data = _read_data  # type: ignore[method-assign]
    return True


async def read_some(sock: trio.socket.SocketType, size: int) -> bytes | None:
    """Up to `size` bytes, b"" at EOF, None when the socket is closed or failed. trio's recv,
    checkpoints included (`_nonblocking_helper`), without its wrappers: a cancel check, one
    read; if nothing is there, wait for readability and read again; a read that did not wait
    yields once, shielded, as trio's does."""
    await trio.lowlevel.checkpoint_if_cancelled()
    waited = False
    while True:
        try:
            data = os.read(sock.fileno(), size)
            break
        except BlockingIOError:
            pass
        except OSError:  # EBADF (closed here), ECONNRESET...: trio's Closed/BrokenResourceError
            return None
        waited = True
        try:
            await trio.lowlevel.wait_readable(sock)
        except trio.ClosedResourceError:  # closed by another task while waiting
            return None
    if not waited:
        await trio.lowlevel.cancel_shielded_checkpoint()
    return data
