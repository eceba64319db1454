"""A fast fake n8n for benchmarks: raw HTTP/1.1 over trio sockets, keep-alive, chunked NDJSON.

Not the test fake (tests/support.py runs a Hypercorn ASGI app, which would itself be the
bottleneck here). What it answers is chosen by the chat message, so one proxy serves every
scenario:

    bench:<chunks>:<tokens_per_s>   begin, <chunks> items, end; items paced at tokens_per_s
                                    (> 0: one write per chunk, like n8n flushing each
                                    token; 0: the whole answer in one write, so the fake
                                    costs as little as possible and the proxy still parses
                                    and re-emits every chunk)
    hang                            headers, then nothing (an answer that is "thinking")
    anything else                   bench:20:0

`GET /healthz` answers ok. Usage: `python -m bench.fake_n8n --port 0` prints `PORT <n>` on
stdout once listening. Only binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys

import trio

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
HEALTH = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
    b'{"status":"ok"}'
)
META = {"nodeId": "n1", "nodeName": "Respond", "itemIndex": 0, "runIndex": 0}
_CMD = re.compile(rb"(bench:(\d+):(\d+(?:\.\d+)?)|hang)")
_CL = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def frame(payload: bytes) -> bytes:
    """One HTTP chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def line(kind: str, content: str | None = None) -> bytes:
    obj: dict[str, object] = {"type": kind}
    if content is not None:
        obj["content"] = content
    obj["metadata"] = META
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


BEGIN = frame(line("begin"))
END = frame(line("end"))
LAST = b"0\r\n\r\n"
_ITEMS: dict[int, list[bytes]] = {}


def items(n: int) -> list[bytes]:
    if n not in _ITEMS:
        _ITEMS[n] = [frame(line("item", f"tok{i} ")) for i in range(n)]
    return _ITEMS[n]


_WHOLE: dict[int, bytes] = {}


def _whole(n: int) -> bytes:
    if n not in _WHOLE:
        _WHOLE[n] = HEAD + BEGIN + b"".join(items(n)) + END + LAST
    return _WHOLE[n]


class Stats:
    requests = 0


async def handle(stream: trio.SocketStream) -> None:
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            m = _CL.search(head)
            length = int(m.group(1)) if m else 0
            while len(buf) < length:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
            Stats.requests += 1
            if head.startswith(b"GET /healthz"):
                await stream.send_all(HEALTH)
                continue
            cmd = _CMD.search(body)
            if cmd is not None and cmd.group(1) == b"hang":
                await stream.send_all(HEAD)
                await trio.sleep_forever()
            chunks, rate = (20, 0.0) if cmd is None else (int(cmd.group(2)), float(cmd.group(3)))
            await answer(stream, chunks, rate)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
        return
    finally:
        await stream.aclose()


async def answer(stream: trio.SocketStream, chunks: int, rate: float) -> None:
    parts = items(chunks)
    if rate <= 0:
        await stream.send_all(_whole(chunks))
        return
    gap = 1.0 / rate
    start = trio.current_time()
    await stream.send_all(HEAD + BEGIN + parts[0])
    for i, p in enumerate(parts[1:], 1):
        await trio.sleep_until(start + i * gap)
        await stream.send_all(p)
    await stream.send_all(END + LAST)


def raise_nofile(n: int = 200_000) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n), max(hard, n)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(port: int) -> None:
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1", backlog=4096)
    print("PORT", listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(handle, listeners)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    raise_nofile()
    try:
        trio.run(main, args.port)
    except KeyboardInterrupt:
        sys.exit(0)
