"""SQLite store: commits per streamed delta and WAL bytes per answer, at N paced streams.

Drives the store as the turn runner does (begin_turn, one buffer_append per delta, finish_turn)
in one process, without HTTP, so the figures are the store's own and not noisy wall-clock:
write transactions counted with SQLite's trace hook, WAL bytes from the WAL file's size with
automatic checkpoints off (every frame written stays in the file). Pacing: each stream sends a
delta every 1/rate s (sleep_until its schedule), so `lag` says whether the store kept up.

    python -m bench.sqlite_commits --streams 50 200 --deltas 100 --rate 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio

from quartproxy.store.sqlite import SqliteStore

NOW = 1_700_000_000.0


async def run(streams: int, deltas: int, rate: float, text: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        path = Path(tmp) / "store.db"
        async with SqliteStore(path) as store:
            conn = store._conn
            assert conn is not None
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # keep every frame in the WAL
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            commits = 0
            writing = False

            def trace(statement: str) -> None:
                nonlocal commits, writing
                statement = statement.strip().upper()
                if statement.startswith("BEGIN"):
                    writing = statement == "BEGIN IMMEDIATE"
                elif statement == "COMMIT" and writing:
                    commits += 1
                    writing = False

            conn.set_trace_callback(trace)
            lags: list[float] = []

            async def stream(i: int) -> None:
                sid, mid = f"s{i}", f"m{i}"
                await store.begin_turn(
                    sid, mid, [(0, {"type": "start"})], [], busy_ttl=60, buffer_ttl=300, now=NOW
                )
                start = trio.current_time() + (i % 50) / (50 * rate)  # spread the phases
                for seq in range(1, deltas + 1):
                    due = start + seq / rate
                    await trio.sleep_until(due)
                    await store.buffer_append(
                        mid, sid, [(seq, {"type": "delta", "text": text})], 300, NOW
                    )
                    lags.append(trio.current_time() - due)
                end = {"type": "end", "text": text * deltas}
                await store.finish_turn(sid, mid, [(deltas + 1, end)], [], buffer_ttl=300, now=NOW)

            cpu0, t0 = time.process_time(), time.monotonic()
            async with trio.open_nursery() as nursery:
                for i in range(streams):
                    nursery.start_soon(stream, i)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
            wal = Path(f"{path}-wal").stat().st_size  # noqa: ASYNC240 (after the run)
            # begin and finish are one transaction each (the sweep, 1 per 2048 writes, stays in)
            appends = commits - 2 * streams
            lags.sort()
            return {
                "streams": streams,
                "deltas": streams * deltas,
                "append_commits": appends,
                "commits_per_delta": appends / (streams * deltas),
                "wal_kb_per_answer": wal / streams / 1024,
                "cpu_us_per_delta": cpu / (streams * deltas) * 1e6,
                "wall_s": wall,
                "lag_p50_ms": lags[len(lags) // 2] * 1000,
                "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000,
            }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--deltas", type=int, default=100, help="deltas per answer")
    ap.add_argument("--rate", type=float, default=50.0, help="deltas per second per stream")
    ap.add_argument("--text", default="token ", help="each delta's text")
    a = ap.parse_args()
    for n in a.streams:
        r = trio.run(run, n, a.deltas, a.rate, a.text)
        print(
            " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        )


if __name__ == "__main__":
    main()
