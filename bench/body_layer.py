"""CPU per streamed body chunk from Hypercorn's `HTTPStream.app_send` down to `protocol_send`.

    .venv/bin/python -m bench.body_layer            # stock and fast path, alternated

Hypercorn's HTTP/1.1 protocol and h11 connection, in this process, a response started with no
Content-Length (h11's chunked writer), then N `http.response.body` messages with `more_body`
through `app_send`, the protocol's send a no-op: the layers overrides/hypercorn_body.py
replaces, with and without it (`time.process_time`, so other load on the machine hardly
matters). No socket, no scheduler: the rest of a delta's cost is elsewhere (bench.run
--parts delta_cost measures the whole worker).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream

from quartproxy.overrides import hypercorn_body

DELTA = b'event: delta\ndata: {"text": "hello"}\n\n'


class _Context:
    event_class = trio.Event

    def __init__(self) -> None:
        self.terminated = trio.Event()

    async def mark_request(self) -> None:
        pass


async def _run(chunks: int, rounds: int) -> None:
    sent: list[Any] = []

    async def send(event: Any) -> None:
        sent.append(event)

    config = Config()
    protocol = H11Protocol(None, config, _Context(), None, None, False, None, None, send)  # type: ignore[arg-type]
    connection = protocol.connection
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    connection.next_event()
    connection.next_event()
    stream = HTTPStream(None, config, _Context(), None, False, None, None, protocol.stream_send, 1)  # type: ignore[arg-type]
    stream.scope = {"method": "GET", "http_version": "1.1"}  # type: ignore[typeddict-item]
    await stream.app_send({"type": "http.response.start", "status": 200, "headers": []})
    message = {"type": "http.response.body", "body": DELTA, "more_body": True}
    was_installed = bool(hypercorn_body.ORIGINALS)
    try:
        for _ in range(rounds):
            for label in ("stock", "fast"):
                if label == "fast":
                    assert hypercorn_body.install()
                else:
                    hypercorn_body.uninstall()
                start = time.process_time()
                for _ in range(chunks):
                    await stream.app_send(message)  # type: ignore[arg-type]
                per_chunk = (time.process_time() - start) / chunks * 1e6
                print(f"{label}: {per_chunk:.2f} µs CPU per chunk ({chunks} chunks)", flush=True)
                sent.clear()
    finally:
        if was_installed:
            hypercorn_body.install()
        else:
            hypercorn_body.uninstall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trio.run(_run, args.chunks, args.rounds)


if __name__ == "__main__":
    main()
