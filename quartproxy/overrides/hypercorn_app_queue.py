"""An HTTP request's ASGI receive queue without a trio memory channel, and a client that leaves
noticed without a task waiting for it.

Library: Hypercorn, verified against 0.18.0; on any other version this is not applied (a loud
warning, Hypercorn's own queue serves: overrides/versions.py). Replaced:
`hypercorn.trio.task_group.TaskGroup.spawn_app`, for `http` scopes only (WebSocket and the rest
go to the original). tests/unit/test_overrides.py fingerprints it. Upstream proposal, ready to
send: docs/upstream/hypercorn-trio-lean-request-queue.md.

Why: per request, Hypercorn opens `trio.open_memory_channel(max_app_queue_size)`: a state with
a 64-slot deque and two OrderedDicts, two channel objects with a set each (≈ 1.7 KB), and the
framework needs a task parked in `receive()` for the whole response only to hear
`http.disconnect` (quart-trio's listener: a task, its context and four frames, ≈ 1.8 KB). For a
long answer stream that is ≈ 3.5 KB of its ≈ 48 KiB.

`AppQueue` is the same bounded FIFO with the channel's semantics (a waiting receiver is handed
the message directly; a full queue makes `put` wait; the same checkpoints; a cancelled `put` or
`get` leaves nothing behind), plus `when_disconnected(callback)`: once the request body is
complete, overrides/quart_trio_connection.py ends its listener and registers the cancel of the
request's nursery instead, called by Hypercorn's own `put` of `http.disconnect`. A client that
leaves is noticed at the same moment, by the same event, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import outcome
import trio

TESTED_VERSIONS = ("0.18.",)
_MARK = "_quartproxy_app_queue"
ORIGINALS: dict[str, Any] = {}

Message = dict[str, Any]


class AppQueue:
    """A bounded FIFO of ASGI messages between Hypercorn (`put`) and the app (`get`)."""

    __slots__ = ("_getters", "_items", "_on_disconnect", "_putters", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: list[Message] = []
        self._getters: list[trio.lowlevel.Task] = []
        self._putters: list[tuple[trio.lowlevel.Task, Message]] = []
        self._on_disconnect: Callable[[], None] | None = None

    def when_disconnected(self, callback: Callable[[], None] | None) -> None:
        """`callback` is called (in the putting task, synchronously) when `http.disconnect` is
        put; at once if one is already queued. None: forget it (the request is over)."""
        self._on_disconnect = callback
        if callback is not None and any(m.get("type") == "http.disconnect" for m in self._items):
            callback()

    async def put(self, message: Message) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._on_disconnect is not None and message.get("type") == "http.disconnect":
            self._on_disconnect()
        if self._getters:
            trio.lowlevel.reschedule(self._getters.pop(0), outcome.Value(message))
        elif len(self._items) < self._size:
            self._items.append(message)
        else:
            task = trio.lowlevel.current_task()
            entry = (task, message)
            self._putters.append(entry)

            def abort(_: Any) -> trio.lowlevel.Abort:
                self._putters.remove(entry)
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            return
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def get(self) -> Message:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._putters:  # a full queue: the first waiting put moves in
            task, waiting = self._putters.pop(0)
            self._items.append(waiting)
            trio.lowlevel.reschedule(task)
        if self._items:
            message = self._items.pop(0)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return message
        task = trio.lowlevel.current_task()
        self._getters.append(task)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._getters.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        handed: Message = await trio.lowlevel.wait_task_rescheduled(abort)
        return handed


def app_queue_of(receive: Callable[[], Awaitable[Any]]) -> AppQueue | None:
    """The AppQueue behind an ASGI `receive`, if it is one (None: Hypercorn's own channel)."""
    queue = getattr(receive, "__self__", None)
    return queue if isinstance(queue, AppQueue) else None


def install() -> bool:
    """Idempotent; called by the app factory (every worker). False when not applied."""
    from hypercorn.trio import task_group

    from .versions import supported

    if getattr(task_group.TaskGroup.spawn_app, _MARK, False):
        return True
    if not supported("hypercorn", TESTED_VERSIONS, "hypercorn_app_queue.py", required=False):
        return False
    original = ORIGINALS["TaskGroup.spawn_app"] = task_group.TaskGroup.spawn_app
    handle = task_group._handle

    async def spawn_app(self: Any, app: Any, config: Any, scope: Any, send: Any) -> Any:
        if scope["type"] != "http":
            return await original(self, app, config, scope, send)
        queue = AppQueue(config.max_app_queue_size)
        self._nursery.start_soon(
            handle,
            app,
            config,
            scope,
            queue.get,
            send,
            trio.to_thread.run_sync,
            trio.from_thread.run,
        )
        return queue.put

    setattr(spawn_app, _MARK, True)
    spawn_app.__wrapped__ = original  # type: ignore[attr-defined]
    task_group.TaskGroup.spawn_app = spawn_app  # type: ignore[method-assign]
    return True
