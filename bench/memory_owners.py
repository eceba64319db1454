"""Who owns the bytes of an idle stream: tracemalloc tracebacks grouped by owner and by task.

Used by bench/memory_profile.py (--trace N, N ≥ 10), or on its dumped snapshots:

    .venv/bin/python -m bench.memory_profile --steps 200,600 --trace 30 --dump /tmp/mp
    .venv/bin/python -m bench.memory_owners /tmp/mp

Owner: the newest frame of an allocation's traceback that is not trio, the standard library
or generated code (attrs, dataclasses), mapped to the part of the stack it belongs to. So a
cancel scope, a task or a wait is charged to whoever opened it, and the "trio" column says how
much of each owner's bytes are trio's own objects (tasks, cancel scopes and their status,
coroutine frames of trio's waits, epoll registrations). Task: the coroutine a trio task was
started with (the frame after trio's run loop), i.e. which of a stream's tasks holds it.
"""

from __future__ import annotations

import collections
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

# (file path fragment, owner), first match wins; checked against the owner frame's filename
OWNERS: tuple[tuple[str, str], ...] = (
    ("quartproxy/overrides/quart_trio_connection.py", "quart-trio: request nursery, listener"),
    ("quartproxy/overrides/werkzeug_headers.py", "Quart: request, response, headers"),
    ("overrides/hypercorn_", "Hypercorn: connection, h11, scope"),
    ("/hypercorn/", "Hypercorn: connection, h11, scope"),
    ("trio/_highlevel_serve_listeners", "Hypercorn: connection, h11, scope"),  # its accept loop
    ("/h11/", "Hypercorn: connection, h11, scope"),
    ("/quart_trio/", "quart-trio: request nursery, listener"),
    ("/quart/", "Quart: request, response, headers"),
    ("/werkzeug/", "Quart: request, response, headers"),
    ("quartproxy/upstream/", "ours: upstream call (socket, httpx, parser)"),
    ("quartproxy/core/http1.py", "ours: upstream call (socket, httpx, parser)"),
    ("quartproxy/core/n8n_parse.py", "ours: upstream call (socket, httpx, parser)"),
    ("/httpx/", "ours: upstream call (socket, httpx, parser)"),
    ("trio/_highlevel_open_tcp_stream", "ours: upstream call (socket, httpx, parser)"),
    ("quartproxy/turns/", "ours: turn (runner, LiveTurn, follow)"),
    ("quartproxy/http/", "ours: routes, ASGI wrappers"),
    ("quartproxy/", "ours: session, limits, screen, token cache"),
    ("bench/", "the profiler itself"),
)
# trio's own code, and generated code ("<attrs generated ...>", "<string>" of dataclasses)
NOT_OWNERS = ("-packages/trio/", "-packages/outcome/", "-packages/sniffio/", "<")
TRIO = ("-packages/trio/", "-packages/outcome/", "<attrs generated methods trio.")


def _stdlib(filename: str) -> bool:
    return "/lib/python3" in filename and "-packages/" not in filename


def _task_start(filenames: Sequence[str]) -> int:
    """Index of the frame a trio task started in: the first one after trio's run loop."""
    i = 0
    while i < len(filenames) and not filenames[i].endswith("trio/_core/_run.py"):
        i += 1
    while i < len(filenames) and filenames[i].endswith("trio/_core/_run.py"):
        i += 1
    return i


def _owner(filename: str) -> str:
    for fragment, owner in OWNERS:
        if fragment in filename:
            return owner
    return f"other: {filename.rsplit('/', 1)[-1]}"


def owner_of(filenames: Sequence[str]) -> tuple[str, bool]:
    """(owner, made by trio) for one traceback's filenames, oldest first. Only the frames of
    the task are looked at (not the profiler's trio.run below them); a task whose frames are
    all trio's (the listener's handler spawns) is owned by what its first frame serves."""
    newest = filenames[-1] if filenames else ""
    by_trio = any(t in newest for t in TRIO)
    start = _task_start(filenames)
    for name in reversed(filenames[start:]):
        if _stdlib(name) or any(x in name for x in NOT_OWNERS):
            continue
        return _owner(name), by_trio
    if start < len(filenames):
        return _owner(filenames[start]), by_trio
    return "trio run loop, stdlib", by_trio


def task_of(frames: Sequence[tracemalloc.Frame]) -> str:
    """The frame a trio task started in (file:line)."""
    i = _task_start([f.filename for f in frames])
    if i >= len(frames):
        return "(outside a task)"
    f = frames[i]
    return f"{f.filename.split('-packages/')[-1].split('/wt/')[-1]}:{f.lineno}"


def report(a: tracemalloc.Snapshot, b: tracemalloc.Snapshot, n: int, top: int = 12) -> None:
    """Per stream (n more streams in `b` than in `a`): bytes by owner (with trio's share) and
    by task."""
    owners: collections.Counter[str] = collections.Counter()
    trio_part: collections.Counter[str] = collections.Counter()
    tasks: collections.Counter[str] = collections.Counter()
    for stat in b.compare_to(a, "traceback"):
        frames = list(stat.traceback)  # oldest first
        owner, by_trio = owner_of([f.filename for f in frames])
        owners[owner] += stat.size_diff
        if by_trio:
            trio_part[owner] += stat.size_diff
        tasks[task_of(frames)] += stat.size_diff
    total = sum(owners.values())
    print(f"\nby owner, bytes per stream (of which trio's objects), total {total / n:.0f} B:")
    for owner, size in owners.most_common():
        if abs(size / n) >= 1:
            print(f"{size / n:9.0f} B ({trio_part[owner] / n:6.0f} B trio)  {owner}")
    print("\nby task (the coroutine each task started in), bytes per stream:")
    for task, size in tasks.most_common(top):
        print(f"{size / n:9.0f} B  {task}")


if __name__ == "__main__":
    prefix = sys.argv[1]
    first, last = (int(x) for x in Path(f"{prefix}-n").read_text().split())
    report(
        tracemalloc.Snapshot.load(f"{prefix}-a.snap"),
        tracemalloc.Snapshot.load(f"{prefix}-b.snap"),
        last - first,
    )
