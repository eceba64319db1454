"""A full garbage collection with a busy stateless worker's answer buffers in memory.

`python -m bench.gc_pause [ANSWERS]` fills a MemoryStore as a worker at 250 turns/s holds it
after STREAM_BUFFER_SECONDS (300 s): 75,000 finished 20-delta answers by default, then reports
the objects the cyclic collector tracks and the CPU time of one full collection. Every stream of
the worker stalls for that long when one runs (Python's default thresholds start one whenever
the long-lived objects grew by a quarter: about once a minute at that rate). In process; run it
at the base commit and at yours to compare (docs/benchmarks.md, "Garbage collection").
"""

from __future__ import annotations

import gc
import sys
import time

import trio

from quartproxy.core.events import Delta, End, Start, to_record
from quartproxy.store.memory import MemoryStore


async def fill(store: MemoryStore, answers: int, now: float) -> None:
    session = "s" * 36
    for i in range(answers):
        mid = f"{i:036d}"
        await store.buffer_append(mid, session, [(0, to_record(Start(mid, session)))], 300, now)
        for k in range(1, 21):
            await store.buffer_append(mid, session, [(k, to_record(Delta(f"tok{k} ")))], 300, now)
        await store.buffer_append(mid, session, [(21, to_record(End(mid, "x" * 100)))], 300, now)


def main() -> None:
    answers = int(sys.argv[1]) if len(sys.argv) > 1 else 75_000
    store = MemoryStore()
    trio.run(fill, store, answers, time.time())
    for _ in range(3):  # what the collector's young passes would have done by then
        gc.collect()
    started = time.thread_time()
    gc.collect()
    took = time.thread_time() - started
    print(
        f"{answers} buffered answers: {len(gc.get_objects())} objects tracked, "
        f"a full collection {took * 1e3:.0f} ms of CPU"
    )


if __name__ == "__main__":
    main()
