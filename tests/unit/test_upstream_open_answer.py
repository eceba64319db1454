"""What an open answer stream keeps of its upstream call: the transport's byte stream (closed at
the end, exactly once), not the httpx response with its headers (it may stream for minutes,
thousands at once per worker)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio
import trio.testing

from quartproxy.core.events import Delta, TurnEvent
from quartproxy.upstream import N8nClient
from tests.support import settings_for


class Gate(httpx.AsyncByteStream):
    """One NDJSON chunk, then nothing until `release` is set."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.closed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"type":"begin"}\n{"type":"item","content":"hi"}\n'
        await self.release.wait()
        yield b'{"type":"end"}\n'

    async def aclose(self) -> None:
        self.closed += 1


class Transport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.gate = Gate()
        self.response: weakref.ref[httpx.Response] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = httpx.Response(
            200, headers={"content-type": "application/x-ndjson"}, stream=self.gate
        )
        self.response = weakref.ref(response)
        return response


async def test_an_open_answer_keeps_its_stream_not_the_response() -> None:
    transport = Transport()
    client = N8nClient(settings_for("http://127.0.0.1:9/webhook"), transport)
    got: list[TurnEvent] = []
    first = trio.Event()

    async def keep(events: list[TurnEvent]) -> None:
        got.extend(events)
        first.set()

    call: dict[str, Any] = {
        "session_id": "s",
        "origin": "https://site.example",
        "message_id": "m",
        "message": "hello",
        "metadata": {},
        "request_id": "req-00000001",
    }
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: client.stream_answer(keep, **call))
                await first.wait()
                await trio.testing.wait_all_tasks_blocked()
                gc.collect()
                assert transport.response is not None
                assert transport.response() is None  # the answer waits; its response is gone
                assert transport.gate.closed == 0
                transport.gate.release.set()
    finally:
        await client.aclose()
    assert got == [Delta("hi")]
    assert transport.gate.closed == 1  # closed at the end, once
