"""overrides/hypercorn_app_queue.py and the listener hand-over of quart_trio_connection.py.

AppQueue must behave as the trio memory channel Hypercorn used (FIFO, a waiting receiver handed
the message, a full queue making `put` wait, a cancelled put or get leaving nothing behind); and
once a request's body is complete, quart-trio's listener task ends and an `http.disconnect` put
by Hypercorn still cancels the request's nursery (a client that leaves is noticed)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from quartproxy.overrides import hypercorn_app_queue
from quartproxy.overrides.hypercorn_app_queue import AppQueue, app_queue_of
from quartproxy.overrides.quart_trio_connection import HTTPConnection

BODY = {"type": "http.request", "body": b"{}", "more_body": False}
LEFT = {"type": "http.disconnect"}


async def test_fifo_within_the_bound() -> None:
    q = AppQueue(3)
    for i in range(3):
        await q.put({"type": "http.request", "n": i})
    assert [(await q.get())["n"] for _ in range(3)] == [0, 1, 2]


async def test_a_waiting_receiver_is_handed_the_message() -> None:
    q = AppQueue(1)
    got: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:

        async def receive() -> None:
            got.append(await q.get())

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        await q.put(BODY)
    assert got == [BODY]


async def test_a_full_queue_makes_put_wait_until_a_get_and_keeps_the_order() -> None:
    q = AppQueue(1)
    await q.put({"n": 0})
    done = trio.Event()
    async with trio.open_nursery() as nursery:

        async def put() -> None:
            await q.put({"n": 1})
            done.set()

        nursery.start_soon(put)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()  # backpressure: the queue is full
        assert (await q.get())["n"] == 0
        await done.wait()
    assert (await q.get())["n"] == 1


async def cancelled_while_waiting(wait: Any) -> None:
    """Run `wait` until it blocks, then cancel it (the abort path, not the first checkpoint)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def test_a_cancelled_put_or_get_leaves_nothing_behind() -> None:
    q = AppQueue(1)
    await cancelled_while_waiting(q.get)  # nothing to get
    await q.put({"n": 0})
    await cancelled_while_waiting(lambda: q.put({"n": 1}))  # full: never queued
    assert (await q.get())["n"] == 0
    await q.put({"n": 2})  # neither the cancelled getter nor the cancelled put is in the way
    assert (await q.get())["n"] == 2
    with trio.CancelScope() as scope:
        scope.cancel()
        await q.get()  # empty: would wait, is cancelled
    assert scope.cancelled_caught


async def test_disconnect_calls_back_now_or_when_put_and_forgetting_stops_it() -> None:
    q = AppQueue(2)
    calls: list[str] = []
    q.when_disconnected(lambda: calls.append("later"))
    await q.put(BODY)
    assert calls == []
    await q.put(LEFT)
    assert calls == ["later"]
    q2 = AppQueue(2)
    await q2.put(LEFT)
    q2.when_disconnected(lambda: calls.append("queued"))  # already there: at once
    assert calls == ["later", "queued"]
    q3 = AppQueue(2)
    q3.when_disconnected(lambda: calls.append("forgotten"))
    q3.when_disconnected(None)
    await q3.put(LEFT)
    assert calls == ["later", "queued"]


class Body:
    """quart-trio 0.12's body interface (append, set_complete); 0.13's `put` is the other."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.complete = False

    def append(self, data: bytes) -> None:
        self.data.append(data)

    def set_complete(self) -> None:
        self.complete = True


class Request:
    def __init__(self) -> None:
        self.body = Body()


async def test_the_listener_ends_with_the_body_and_a_disconnect_still_cancels() -> None:
    """The saving and its protection: quart-trio's listener would wait in receive() for the
    whole response; here it returns once the body is complete, and Hypercorn's put of
    http.disconnect cancels the request's nursery all the same."""
    q = AppQueue(10)
    request = Request()
    conn = HTTPConnection.__new__(HTTPConnection)
    await q.put({"type": "http.request", "body": b"ab", "more_body": True})
    await q.put(BODY)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await conn.handle_messages(nursery, request, q.get)  # returns: no listener left
            assert request.body.data == [b"ab", b"{}"] and request.body.complete
            assert not nursery.cancel_scope.cancel_called
            await q.put(LEFT)  # Hypercorn: the client went away
            assert nursery.cancel_scope.cancel_called
            await trio.sleep_forever()  # the response being sent: cancelled


async def test_a_disconnect_before_the_body_ends_the_listener_and_cancels() -> None:
    q = AppQueue(10)
    await q.put({"type": "http.request", "body": b"ab", "more_body": True})
    await q.put(LEFT)
    conn = HTTPConnection.__new__(HTTPConnection)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await conn.handle_messages(nursery, Request(), q.get)
            assert nursery.cancel_scope.cancel_called


def test_the_app_installs_it_for_http_only() -> None:
    assert hypercorn_app_queue.install()
    assert app_queue_of(AppQueue(1).get) is not None
    assert app_queue_of(trio.open_memory_channel[Any](1)[1].receive) is None
