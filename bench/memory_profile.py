"""Where the memory of idle SSE streams goes.

    .venv/bin/python -m bench.memory_profile --steps 500,1500            # RSS, objects
    .venv/bin/python -m bench.memory_profile --steps 500,1500 --trace 1  # + tracemalloc by line
    .venv/bin/python -m bench.memory_profile --steps 200,600 --trace 30  # + tracebacks, owners

Serves the real app (create_app, the repo's hypercorn.toml, DEPLOYMENT_MODE=stateless, the
bench's settings) under Hypercorn in this process, next to the bench's fake n8n in its own
process. At each step a load generator process (bench/loadgen.py, mode idle, message `hang`)
opens more idle SSE streams and keeps them open; once they are all open this process collects
garbage and records its RSS, the bytes tracemalloc sees, and live objects by type. The report
gives each per stream, as the difference between the last two steps (warm-up and one-off
allocations fall out), and with --trace the lines (or tracebacks) that allocated it; with
tracebacks (--trace 30) also by owner (Hypercorn, quart-trio, Quart, our upstream call, our
turn...: bench/memory_owners.py) and by task.

What RSS counts: the process's resident pages, i.e. the Python heap (pymalloc arenas and
malloc'd blocks) with its fragmentation and allocator headers, which is why RSS per stream is a
few KiB above what tracemalloc traces. Not counted: the kernel's side of each socket (socket,
file and epoll structures, and the receive/send buffers holding unread or unsent bytes: slab
and skb memory, see /proc/net/sockstat), two sockets per stream here.

RSS with tracemalloc on includes tracemalloc's own bookkeeping (tens of bytes per block):
compare RSS against a run without --trace. Bench-only; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import trio

from bench import memory_owners
from bench.fake_n8n import raise_nofile
from bench.run import HUGE, ORIGIN, PAGE, ROOT, free_port

PY = sys.executable


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def env_for(fake_port: int, tmp: str, heartbeat: float) -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": "bench-jwt-secret-0123456789-abcdefghijklmnop",
        "SESSION_SECRET_KEY": "bench-session-secret-0123456789-abcdefghijk",
        "N8N_WEBHOOK_URL": f"http://127.0.0.1:{fake_port}/webhook/chat",
        "ALLOWED_ORIGINS": ORIGIN,
        "DEPLOYMENT_MODE": "stateless",
        "RATE_LIMIT_IP": HUGE,
        "RATE_LIMIT_SESSION": HUGE,
        "RATE_LIMIT_ORIGIN": HUGE,
        "RATE_LIMIT_SESSION_CREATE": HUGE,
        "N8N_MAX_CONNECTIONS": "20000",
        "N8N_TIMEOUT_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
        "HEARTBEAT_SECONDS": str(heartbeat),
        "SQLITE_PATH": str(Path(tmp) / "bench.db"),
    }


def type_counts() -> tuple[collections.Counter[str], collections.Counter[str]]:
    """gc-tracked objects by type: (count, shallow bytes). Shallow: a dict's table counts, its
    values (str, bytes, int: not gc-tracked) do not; a coroutine counts with its frame."""
    counts: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    for o in gc.get_objects():
        name = f"{type(o).__module__}.{type(o).__qualname__}"
        if isinstance(o, types.CoroutineType):
            code = o.cr_code
        elif isinstance(o, types.GeneratorType):
            code = o.gi_code
        elif isinstance(o, types.AsyncGeneratorType):
            code = o.ag_code
        else:
            code = None
        if code is not None:
            # not Path(...).name: pathlib interns each part, and the interned-string table
            # growing here showed up as ~4.8 KB "per stream" in tracemalloc (our artefact)
            name = f"{name} {code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]})"
        counts[name] += 1
        sizes[name] += sys.getsizeof(o)
    return counts, sizes


def malloc_trim() -> None:
    """Give freed heap back to the OS, so RSS counts what is live (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Sample:
    def __init__(self, streams: int, trace: bool) -> None:
        gc.collect()
        self.streams = streams
        self.rss = rss()
        malloc_trim()
        self.rss_trimmed = rss()
        self.types, self.sizes = type_counts()
        self.snapshot = tracemalloc.take_snapshot() if trace else None
        self.traced = tracemalloc.get_traced_memory()[0] if trace else 0


async def open_streams(port: int, n: int, hold: float, procs: list[trio.Process]) -> dict[str, Any]:
    proc = await trio.lowlevel.open_process(
        [
            PY,
            "-m",
            "bench.loadgen",
            "--port",
            str(port),
            "--mode",
            "idle",
            "-c",
            str(n),
            "--message",
            "hang",
            "--duration",
            str(hold),
            "--open-timeout",
            "600",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    procs.append(proc)
    assert proc.stdout is not None
    buf = b""
    while b"\n" not in buf:
        data = await proc.stdout.receive_some(4096)
        if not data:
            raise RuntimeError("load generator ended before the streams were open")
        buf += data
    return dict(json.loads(buf.split(b"\n", 1)[0]))


def report(a: Sample, b: Sample, top: int, frames: int) -> None:
    n = b.streams - a.streams
    print(f"\n=== per stream, from {a.streams} to {b.streams} open streams ({n} more) ===")
    print(f"RSS            {(b.rss - a.rss) / n / 1024:8.1f} KiB")
    print(f"RSS trimmed    {(b.rss_trimmed - a.rss_trimmed) / n / 1024:8.1f} KiB  (malloc_trim)")
    if a.snapshot is not None and b.snapshot is not None:
        print(f"tracemalloc    {(b.traced - a.traced) / n / 1024:8.1f} KiB")
        key = "traceback" if frames > 1 else "lineno"
        stats = b.snapshot.compare_to(a.snapshot, key)
        print(f"\ntop {top} allocation sites, bytes (blocks) per stream:")
        for s in stats[:top]:
            print(f"{s.size_diff / n:9.0f} B ({s.count_diff / n:5.2f})", end="  ")
            if frames > 1:
                print()
                for line in s.traceback.format(limit=frames, most_recent_first=True):
                    print("      " + line)
            else:
                print(s.traceback[0])
        if frames > 1:
            memory_owners.report(a.snapshot, b.snapshot, n, top)
        by_file = b.snapshot.compare_to(a.snapshot, "filename")
        print("\nby file, bytes per stream:")
        for s in by_file[:top]:
            print(f"{s.size_diff / n:9.0f} B ({s.count_diff / n:5.2f})  {s.traceback[0].filename}")
    diff = b.types.copy()
    diff.subtract(a.types)
    size = b.sizes.copy()
    size.subtract(a.sizes)
    print("\nlive objects per stream (gc-tracked, by type): count, shallow bytes")
    for name, nbytes in size.most_common(top):
        print(f"{diff[name] / n:7.2f} {nbytes / n:8.0f} B  {name}")
    print(
        f"{sum(diff.values()) / n:7.2f} {sum(size.values()) / n:8.0f} B  (all gc-tracked objects)"
    )


async def main(args: argparse.Namespace) -> None:
    procs: list[trio.Process] = []
    try:
        await profile(args, procs)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()


async def profile(args: argparse.Namespace, procs: list[trio.Process]) -> None:
    tmp = tempfile.mkdtemp(prefix="qp-memprof-")
    fake = await trio.lowlevel.open_process(
        [PY, "-m", "bench.fake_n8n", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE
    )
    procs.append(fake)
    assert fake.stdout is not None
    line = b""
    while b"\n" not in line:
        line += await fake.stdout.receive_some(100)
    fake_port = int(line.split()[1])
    os.environ.update(env_for(fake_port, tmp, args.heartbeat))

    from hypercorn.trio import serve

    from quartproxy.__main__ import hypercorn_config
    from quartproxy.config import environment, load_settings
    from quartproxy.factory import create_app
    from quartproxy.logs import setup_logging

    settings = load_settings(environment())
    setup_logging(settings)
    port = free_port()
    config = hypercorn_config([f"127.0.0.1:{port}"], 1)
    config.accesslog = None
    app = create_app(settings)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))
        await trio.sleep(1.0)
        warm = await trio.run_process(
            [PY, "-m", "bench.loadgen", "--port", str(port), "-c", "10", "--duration", "1"],
            cwd=ROOT,
            capture_stdout=True,
            check=False,
        )
        if warm.returncode != 0:
            raise RuntimeError("warm-up failed")
        if args.trace:
            tracemalloc.start(args.trace)
        samples = [Sample(0, bool(args.trace))]
        print(f"0 streams: RSS {samples[0].rss / 2**20:.1f} MiB", flush=True)
        total = 0
        for step in args.steps:
            t0 = time.monotonic()
            opened = await open_streams(port, step - total, 3600, procs)
            total += opened["opened"]
            await trio.sleep(0.5)
            s = Sample(total, bool(args.trace))
            samples.append(s)
            print(
                f"{total} streams ({opened['errors']} errors) in {time.monotonic() - t0:.1f}s: "
                f"RSS {s.rss / 2**20:.1f} MiB (trimmed {s.rss_trimmed / 2**20:.1f}), "
                f"traced {s.traced / 2**20:.1f} MiB, load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        a, b = samples[-2], samples[-1]
        if args.dump and a.snapshot is not None and b.snapshot is not None:
            a.snapshot.dump(f"{args.dump}-a.snap")
            b.snapshot.dump(f"{args.dump}-b.snap")
            await trio.Path(f"{args.dump}-n").write_text(f"{a.streams} {b.streams}")
        report(samples[0], b, args.top, args.trace)
        if len(samples) > 2:
            report(a, b, args.top, args.trace)
        stop.set()


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.memory_profile", description=__doc__)
    p.add_argument("--steps", default="500,1500", help="open streams at each sample")
    p.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--dump", help="write the last two snapshots to DUMP-a.snap, DUMP-b.snap")
    p.add_argument("--heartbeat", type=float, default=15.0)
    a = p.parse_args()
    a.steps = [int(x) for x in a.steps.split(",")]
    raise_nofile()
    trio.run(main, a)
