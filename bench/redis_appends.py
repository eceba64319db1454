"""Redis store: round trips and CPU per streamed delta at N paced streams, grouped or alone.

Drives the store as the turn runner does (begin_turn, one buffer_append per delta, finish_turn)
in one process against a local redis-server (tests/redis_server.py), without HTTP, so the
figures are the store's own and robust to other load: the process's CPU time, Redis's own CPU
(INFO cpu) and the scripts Redis was sent (INFO commandstats: EVALSHA + EVAL, one per round
trip of appends) over the appends. `alone` sends each append in its own round trip, as before
the grouping (and as in a cluster: RedisStore._append_alone); `grouped` is buffer_append on
one Redis. The two variants alternate, `--rounds` times each. Pacing: each stream sends a delta
every 1/rate s (sleep_until its schedule), so `lag` says whether the store kept up.

    python -m bench.redis_appends --streams 50 300 --deltas 100 --rate 50 --rounds 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import trio

from quartproxy.store.redis import RedisStore
from tests.redis_server import RedisServer, cli

NOW = 1_700_000_000.0


def _counters(port: int) -> tuple[float, float]:
    """(scripts sent, Redis CPU seconds) so far."""
    scripts = cpu = 0.0
    for line in cli(port, "INFO", "all").splitlines():
        name, _, value = line.partition(":")
        if name in ("cmdstat_evalsha", "cmdstat_eval"):
            scripts += float(dict(f.split("=") for f in value.split(","))["calls"])
        elif name in ("used_cpu_user", "used_cpu_sys"):
            cpu += float(value)
    return scripts, cpu


async def run(
    server: RedisServer, variant: str, streams: int, deltas: int, rate: float, text: str
) -> dict[str, float | str]:
    async with RedisStore(server.url, prefix=f"b{uuid.uuid4().hex[:8]}:") as store:
        append = store.buffer_append if variant == "grouped" else store._append_alone
        await store.ping()
        lags: list[float] = []
        appends = 0

        async def stream(i: int) -> None:
            nonlocal appends
            sid, mid = f"s{i}", f"m{i}"
            await store.begin_turn(
                sid, mid, [(0, {"type": "start"})], [], busy_ttl=60, buffer_ttl=300, now=NOW
            )
            start = trio.current_time() + (i % 50) / (50 * rate)  # spread the phases
            for seq in range(1, deltas + 1):
                due = start + seq / rate
                await trio.sleep_until(due)
                await append(mid, sid, [(seq, {"type": "delta", "text": text})], 300, NOW)
                appends += 1
                lags.append(trio.current_time() - due)
            end = {"type": "end", "text": text * deltas}
            await store.finish_turn(sid, mid, [(deltas + 1, end)], [], buffer_ttl=300, now=NOW)

        scripts0, rcpu0 = _counters(server.port)
        cpu0, t0 = time.process_time(), time.monotonic()
        async with trio.open_nursery() as nursery:
            for i in range(streams):
                nursery.start_soon(stream, i)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        scripts1, rcpu1 = _counters(server.port)
        lags.sort()
        # begin and finish are one script each
        append_scripts = scripts1 - scripts0 - 2 * streams
        return {
            "variant": variant,
            "streams": streams,
            "deltas": appends,
            "round_trips_per_delta": append_scripts / appends,
            "cpu_us_per_delta": cpu / appends * 1e6,
            "redis_cpu_us_per_delta": (rcpu1 - rcpu0) / appends * 1e6,
            "wall_s": wall,
            "lag_p50_ms": lags[len(lags) // 2] * 1000,
            "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[50, 300])
    ap.add_argument("--deltas", type=int, default=100, help="deltas per answer")
    ap.add_argument("--rate", type=float, default=50.0, help="deltas per second per stream")
    ap.add_argument("--text", default="token ", help="each delta's text")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two variants")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            for n in a.streams:
                for _ in range(a.rounds):
                    for variant in ("alone", "grouped"):
                        r = trio.run(run, server, variant, n, a.deltas, a.rate, a.text)
                        print(
                            " ".join(
                                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in r.items()
                            ),
                            flush=True,
                        )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
