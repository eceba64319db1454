"""Load generator: trio with raw HTTP/1.1 (and a minimal WebSocket client), one keep-alive
connection per virtual user, one turn in flight per user. Prints one JSON object on stdout.

Modes
    sse      POST /api/v1/chat/message on the proxy (a session per user, made up front)
    ndjson   POST /api/v1/chat/stream on the proxy
    ws       WS /api/v1/chat/ws on the proxy (auth frame, then one message frame per turn)
    direct   POST straight to the fake n8n (same message, same answer): the baseline
    idle     open N SSE turns whose answer never comes, hold them, count heartbeats

Traffic is bounded by --duration and --max-turns, and only ever goes to 127.0.0.1.
Time to first delta (ttfd) is measured from just before the request is written to the first
byte of the first delta (SSE `event: delta`, NDJSON/WS `"type":"item"`/`"type":"delta"`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import resource
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

ORIGIN = "http://bench.local"
HOST = "127.0.0.1"
# What a browser widget sends, so the bot screen scores the load like real visitors.
BROWSER = {
    "Origin": ORIGIN,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}


class ProtocolError(Exception):
    pass


class Conn:
    """A buffered socket with just enough HTTP/1.1 to read our responses."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.s = stream
        self.buf = bytearray()

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(await trio.open_tcp_stream(HOST, port))

    async def fill(self) -> None:
        data = await self.s.receive_some(65536)
        if not data:
            raise ProtocolError("connection closed")
        self.buf += data

    async def head(self) -> tuple[int, bytes]:
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            await self.fill()
        head = bytes(self.buf[:i])
        del self.buf[: i + 4]
        return int(head[9:12]), head.lower()

    async def body_sized(self, head: bytes) -> bytes:
        k = head.find(b"content-length:")
        n = int(head[k + 15 : head.find(b"\r\n", k) if head.find(b"\r\n", k) > 0 else None])
        while len(self.buf) < n:
            await self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def chunks(
        self, first: bytes, on_first: list[float], arrivals: list[tuple[float, int]] | None = None
    ) -> bytes:
        """Read a chunked body to its end; note the time `first` is first seen, and in
        `arrivals` (when given) each HTTP chunk's arrival time with how many `first` it holds."""
        out = bytearray()
        seen = False
        while True:
            while True:
                i = self.buf.find(b"\r\n")
                if i >= 0:
                    break
                await self.fill()
            size = int(self.buf[:i].split(b";")[0], 16)
            while len(self.buf) < i + 2 + size + 2:
                await self.fill()
            if size == 0:
                del self.buf[: i + 4]
                return bytes(out)
            out += self.buf[i + 2 : i + 2 + size]
            if arrivals is not None:
                arrivals.append((time.perf_counter(), self.buf.count(first, i + 2, i + 2 + size)))
            del self.buf[: i + 2 + size + 2]
            if not seen and first in out:
                seen = True
                on_first.append(time.perf_counter())


@dataclass
class Result:
    turns: int = 0
    errors: int = 0
    ttfd: list[float] = field(default_factory=list)
    turn: list[float] = field(default_factory=list)
    # paced answers: how late each delta after the first came, against the fake's schedule
    # (first delta + k / rate); and every delta received while measuring
    late: list[float] = field(default_factory=list)
    deltas: int = 0
    writes: int = 0  # HTTP chunks holding deltas: the proxy's socket writes (its unit of work)
    error_kinds: dict[str, int] = field(default_factory=dict)
    # --dump: (start, ttfd, total, user, turn number on its connection) per measured turn,
    # to see whether slow turns cluster in time (a stall of the whole worker) or not
    log: list[tuple[float, float, float, int, int]] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.errors += 1
        self.error_kinds[why] = self.error_kinds.get(why, 0) + 1


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p / 100))] * 1000, 3)


def post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def make_session(conn: Conn) -> str:
    req = post(
        "/api/v1/session/create",
        b"{}",
        {**BROWSER, "Content-Type": "application/json"},
    )
    await conn.s.send_all(req)
    status, head = await conn.head()
    body = await conn.body_sized(head) if b"content-length:" in head else await conn.chunks(b"", [])
    if status != 201:
        raise ProtocolError(f"session create: {status} {body[:200]!r}")
    return str(json.loads(body)["token"])


# -- one virtual user ----------------------------------------------------------------------


class User:
    def __init__(self, args: argparse.Namespace, result: Result) -> None:
        self.a = args
        self.r = result
        self.conn: Conn | None = None
        self.req = b""
        self.opened = False
        self.n = 0
        self.build = lambda message: b""

    async def setup(self) -> None:
        a = self.a
        self.conn = await Conn.open(a.port)
        if a.mode == "direct":
            self.build = lambda m: post(
                "/webhook/chat",
                json.dumps(
                    {"action": "sendMessage", "sessionId": "s", "chatInput": m, "metadata": {}}
                ).encode(),
                {"Content-Type": "application/json", "Authorization": "Bearer x"},
            )
            self.req = self.build(a.message)
            return
        token = await make_session(self.conn)
        if a.mode == "ws":
            await self.ws_open(token)
            self.build = lambda m: ws_frame(json.dumps({"type": "message", "message": m}).encode())
            self.req = self.build(a.message)
            return
        path = "/api/v1/chat/stream" if a.mode == "ndjson" else "/api/v1/chat/message"
        headers = {
            **BROWSER,
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        }
        self.build = lambda m: post(path, json.dumps({"message": m}).encode(), headers)
        self.req = self.build(a.message)

    async def ws_open(self, token: str) -> None:
        assert self.conn is not None
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            "GET /api/v1/chat/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in BROWSER.items())
            + "\r\n"
        ).encode()
        await self.conn.s.send_all(req)
        status, _ = await self.conn.head()
        if status != 101:
            raise ProtocolError(f"ws upgrade: {status}")
        await self.conn.s.send_all(ws_frame(json.dumps({"type": "auth", "token": token}).encode()))

    async def turn(self) -> None:
        conn = self.conn
        assert conn is not None
        first: list[float] = []
        # every message differs (the spam screen refuses repeats); the fake n8n reads the
        # `bench:<chunks>:<rate>` part only
        self.n += 1
        self.req = self.build(f"{self.a.message} #{id(self) % 100000}-{self.n}")
        t0 = time.perf_counter()
        await conn.s.send_all(self.req)
        if self.a.mode == "ws":
            ok = await self.ws_turn(first)
        else:
            status, head = await conn.head()
            if status != 200:
                if b"content-length:" in head:
                    await conn.body_sized(head)
                self.r.fail(f"http_{status}")
                return
            marker = b"event: delta" if self.a.mode == "sse" else b'"type":"item"'
            arrivals: list[tuple[float, int]] = []
            body = await conn.chunks(marker, first, arrivals)
            if self.a.measuring:
                self.count(arrivals)
            end = b"event: end" if self.a.mode == "sse" else b'"type":"end"'
            ok = end in body
            if b"\r\nconnection: close" in head:
                # Hypercorn closes a keep-alive connection after keep_alive_max_requests (1000
                # by default); a browser opens a new one, and so do we.
                await conn.s.aclose()
                self.conn = await Conn.open(self.a.port)
        t1 = time.perf_counter()
        if not ok or not first:
            self.r.fail("no_end" if not ok else "no_delta")
            return
        if self.a.measuring:
            self.r.turns += 1
            self.r.ttfd.append(first[0] - t0)
            self.r.turn.append(t1 - t0)
            if self.a.dump:
                self.r.log.append((t0, first[0] - t0, t1 - t0, id(self) % 100000, self.n))

    def count(self, arrivals: list[tuple[float, int]]) -> None:
        self.r.deltas += sum(n for _, n in arrivals)
        self.r.writes += sum(1 for _, n in arrivals if n)
        if not self.a.gap:
            return
        k, t0 = 0, None
        for t, n in arrivals:
            for _ in range(n):
                if t0 is None:
                    t0 = t
                else:
                    self.r.late.append(max(0.0, t - t0 - k * self.a.gap))
                k += 1

    async def ws_turn(self, first: list[float]) -> bool:
        assert self.conn is not None
        while True:
            payload = await ws_read(self.conn)
            if b'"type":"delta"' in payload:
                if not first:
                    first.append(time.perf_counter())
            elif b'"type":"end"' in payload:
                return True
            elif b'"type":"error"' in payload:
                return False


def ws_frame(payload: bytes) -> bytes:
    """A masked client text frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def ws_read(conn: Conn) -> bytes:
    while len(conn.buf) < 2:
        await conn.fill()
    op, n = conn.buf[0] & 0x0F, conn.buf[1] & 0x7F
    off = 2
    if n == 126:
        while len(conn.buf) < 4:
            await conn.fill()
        n = struct.unpack("!H", conn.buf[2:4])[0]
        off = 4
    elif n == 127:
        while len(conn.buf) < 10:
            await conn.fill()
        n = struct.unpack("!Q", conn.buf[2:10])[0]
        off = 10
    while len(conn.buf) < off + n:
        await conn.fill()
    payload = bytes(conn.buf[off : off + n])
    del conn.buf[: off + n]
    if op == 8:
        raise ProtocolError(f"ws closed: {payload[:2]!r}")
    return payload


# -- runs ----------------------------------------------------------------------------------


async def run_turns(a: argparse.Namespace) -> dict[str, Any]:
    result = Result()
    a.measuring = False
    users = [User(a, result) for _ in range(a.concurrency)]
    t_setup = time.perf_counter()
    async with trio.open_nursery() as n:
        for u in users:
            n.start_soon(u.setup)
    setup_s = time.perf_counter() - t_setup
    stop_at = trio.current_time() + a.warmup + a.duration
    budget = [a.max_turns]

    # Paced answers take chunks/rate seconds; users that all start at once stay in lockstep
    # and every turn then queues behind 49 others started in the same millisecond. Real
    # visitors arrive spread out: start each user at a random point of one answer's length
    # (during the warm-up, so the measured window is the steady state). Same for direct.
    paced = re.fullmatch(r"bench:(\d+):(\d+(?:\.\d+)?)", a.message)
    stagger = int(paced[1]) / float(paced[2]) if paced and float(paced[2]) > 0 else 0.0
    a.gap = 1 / float(paced[2]) if stagger else 0.0
    rng = random.Random(1)

    async def loop(u: User) -> None:
        if stagger:
            await trio.sleep(rng.uniform(0, min(stagger, a.warmup)))
        while trio.current_time() < stop_at and budget[0] > 0:
            budget[0] -= 1
            try:
                await u.turn()
            except (ProtocolError, OSError, trio.BrokenResourceError) as exc:
                result.fail(type(exc).__name__)
                return

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    async with trio.open_nursery() as n:
        for u in users:
            n.start_soon(loop, u)
        await trio.sleep(a.warmup)
        a.measuring = True
        if a.marks:  # the driver samples the proxy's CPU at the marks (bench/paced.py)
            print(json.dumps({"mark": "start"}), flush=True)
        t0 = time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.perf_counter() - t0
    if a.marks:
        print(json.dumps({"mark": "stop"}), flush=True)
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    del cpu0
    for u in users:
        if u.conn is not None:
            await u.conn.s.aclose()
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    if a.dump:  # written by main() once the run is over
        a.dump_lines = [json.dumps([round(r[0] - t0, 6), *r[1:]]) for r in sorted(result.log)]
    return {
        "mode": a.mode,
        "concurrency": a.concurrency,
        "message": a.message,
        "turns": result.turns,
        "errors": result.errors,
        "error_kinds": result.error_kinds,
        "seconds": round(elapsed, 3),
        "turns_per_s": round(result.turns / elapsed, 1) if elapsed else 0,
        "ttfd_ms": {p: pct(result.ttfd, p) for p in (50, 90, 99)},
        "turn_ms": {p: pct(result.turn, p) for p in (50, 99)},
        "deltas": result.deltas,
        "writes": result.writes,
        "delta_late_ms": {p: pct(result.late, p) for p in (50, 99)},
        "loadgen_cpu_pct": round(100 * cpu / elapsed, 1) if elapsed else None,
        "setup_s": round(setup_s, 2),
    }


def drain(conn: Conn) -> None:
    """Drop what the socket has already received, without waiting (it is non-blocking)."""
    conn.buf.clear()
    fd = conn.s.socket.fileno()
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass


async def run_idle(a: argparse.Namespace) -> dict[str, Any]:
    """Open N SSE turns that never get an answer; report when all have their `start`, then
    hold them for --duration counting heartbeats, then close them all."""
    result = Result()
    opened = [0]
    pings = [0]
    all_open = trio.Event()
    go = trio.Event()
    a.measuring = True
    # Bound the connect storm: at most this many streams being opened at once (connect, session,
    # message, up to the `start` event), well under the proxy's listen backlog (hypercorn.toml).
    sem = trio.Semaphore(a.open_concurrency)

    def settled() -> None:
        if opened[0] + result.errors >= a.concurrency:
            all_open.set()

    async def one(u: User) -> None:
        try:
            await _open(u)
        finally:
            settled()
        if u.conn is None or not u.opened:
            return
        await go.wait()
        try:
            drain(u.conn)  # pings sent while other streams were still opening: not the hold's
            while True:
                await u.conn.fill()
                pings[0] += u.conn.buf.count(b": ping")
                u.conn.buf.clear()
        except (ProtocolError, OSError, trio.BrokenResourceError):
            return

    async def _open(u: User) -> None:
        async with sem:
            try:
                await u.setup()
                assert u.conn is not None
                await u.conn.s.send_all(u.req)
                status, _ = await u.conn.head()
                if status != 200:
                    result.fail(f"http_{status}")
                    return
                while b"event: start" not in u.conn.buf:
                    await u.conn.fill()
                u.conn.buf.clear()
            except (ProtocolError, OSError, trio.BrokenResourceError) as exc:
                result.fail(type(exc).__name__)
                return
        u.opened = True
        opened[0] += 1

    t0 = time.perf_counter()
    users = [User(a, result) for _ in range(a.concurrency)]
    async with trio.open_nursery() as n:
        for u in users:
            n.start_soon(one, u)
        with trio.move_on_after(a.open_timeout):
            await all_open.wait()
        open_s = time.perf_counter() - t0
        # tell the driver the streams are open; it samples the proxy's RSS now
        print(json.dumps({"opened": opened[0], "errors": result.errors}), flush=True)
        go.set()
        await trio.sleep(a.duration)
        # the hold is over (the driver stops its CPU window here, before the streams close)
        print(json.dumps({"held_pings": pings[0]}), flush=True)
        n.cancel_scope.cancel()
    for u in users:
        if u.conn is not None:
            u.conn.s.socket.close()
    return {
        "mode": "idle",
        "streams": a.concurrency,
        "opened": opened[0],
        "errors": result.errors,
        "error_kinds": result.error_kinds,
        "open_s": round(open_s, 2),
        "held_s": a.duration,
        "pings": pings[0],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["sse", "ndjson", "ws", "direct", "idle"], default="sse")
    p.add_argument("--concurrency", "-c", type=int, default=10)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--max-turns", type=int, default=1_000_000)
    p.add_argument("--message", default="bench:20:0")
    p.add_argument("--open-timeout", type=float, default=120.0)
    p.add_argument("--open-concurrency", type=int, default=200, help="idle: opening at once")
    p.add_argument("--marks", action="store_true", help="print start/stop of the measured window")
    p.add_argument("--dump", help="write one JSON line per measured turn to this file")
    a = p.parse_args()
    from bench.fake_n8n import raise_nofile

    raise_nofile()
    out = trio.run(run_idle if a.mode == "idle" else run_turns, a)
    if a.dump:
        Path(a.dump).write_text("".join(line + "\n" for line in getattr(a, "dump_lines", [])))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
