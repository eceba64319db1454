"""http/keepalive.RequestBody: the body an early answer reads to its end, through the same
`receive` the app has. Trio's virtual clock (autojump) tells what ended a drain: the body's end
(at time 0) or the time bound (at DRAIN_SECONDS), with no real waiting."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from quartproxy.core.body_drain import DRAIN_SECONDS
from quartproxy.http.keepalive import RequestBody


def channel() -> tuple[trio.MemorySendChannel[Any], RequestBody]:
    send, receive = trio.open_memory_channel[Any](10)
    return send, RequestBody(receive.receive, budget=100)


def part(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_the_rest_of_the_body_is_read_to_its_end(autojump_clock: Any) -> None:
    send, body = channel()
    await send.send(part(b"ab"))
    await send.send(part(b"cd", more=False))
    await body.drain()
    assert (body.ended, body.seen, trio.current_time()) == (True, 4, 0)


async def test_the_drain_stops_when_the_apps_own_reader_takes_the_end(autojump_clock: Any) -> None:
    """quart-trio's reader waits in `receive` for the whole request: it may be handed the end
    while the drain waits too; the drain must stop then, not at its time bound."""
    send, body = channel()
    async with trio.open_nursery() as nursery:

        async def app_reader() -> None:
            while (await body())["type"] != "http.disconnect":
                pass

        nursery.start_soon(app_reader)
        await trio.testing.wait_all_tasks_blocked()  # the app's reader is first in line
        nursery.start_soon(body.drain)
        await trio.testing.wait_all_tasks_blocked()
        await send.send(part(b"end", more=False))  # goes to the app's reader
        await trio.testing.wait_all_tasks_blocked()
        assert body.draining is None and trio.current_time() == 0
        await send.send({"type": "http.disconnect"})
    assert body.ended


async def test_a_body_that_does_not_come_is_waited_for_drain_seconds_at_most(
    autojump_clock: Any,
) -> None:
    send, body = channel()
    await send.send(part(b"a"))
    await body.drain()
    assert not body.ended and trio.current_time() == DRAIN_SECONDS


async def test_the_drain_stops_past_its_byte_budget(autojump_clock: Any) -> None:
    send, body = channel()
    await send.send(part(b"x" * 60))
    await send.send(part(b"x" * 60))  # 120 > budget 100, and no end in sight
    await body.drain()
    assert (body.ended, body.seen, trio.current_time()) == (False, 120, 0)


async def test_a_disconnect_ends_the_drain(autojump_clock: Any) -> None:
    send, body = channel()
    await send.send({"type": "http.disconnect"})
    await body.drain()
    assert body.ended and trio.current_time() == 0


async def test_a_body_already_read_past_its_budget_is_not_waited_for(autojump_clock: Any) -> None:
    send, body = channel()
    await send.send(part(b"x" * 101))
    await body()  # the app read it, then answered
    await body.drain()
    assert (body.ended, body.seen, trio.current_time()) == (False, 101, 0)
