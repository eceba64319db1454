"""Paced streams: what one worker carries when answers come as an LLM streams them.

Two parts of `python -m bench.run` (`--parts paced,delta_cost`):

- `paced`: concurrent SSE streams at 50 tokens/s (`bench:<chunks>:50`, one upstream write per
  token), stepped up until a limit breaks: the worker's CPU over 80 % of its core, the added
  time to first delta over 20 ms p99, or a delta delayed over 20 ms p99 (how late each delta
  after the first arrives against the fake n8n's schedule, proxy minus direct). Each level runs
  against the proxy and directly against the fake n8n, back to back. The curve is
  streams → proxy CPU, added ttfd p50/p99, added delta delay p50/p99.
- `delta_cost`: the worker's CPU time per streamed delta, robust to other load on the machine:
  CPU seconds of the worker process (from /proc, so what other processes use is not counted)
  over the deltas the load generator received in the same window. Two answer lengths at the
  same pace and concurrency, alternated; the slope per extra streamed write is the marginal
  cost of one delta without the turn's fixed cost. Per write, not per delta: under load the
  fake n8n falls behind, several deltas then arrive in one read and leave in one write, at
  the cost of about one (the load generator counts both; `deltas_per_write` says how much).

The measured window is marked by the load generator (`--marks`): the driver samples the
worker's CPU at the marks, so session set-up and warm-up are not counted.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Bench, Proc

CPU_LIMIT = 80.0  # % of the worker's core
TTFD_LIMIT = 20.0  # added ms, p99
LATE_LIMIT = 20.0  # added ms, p99
RATE = 50  # tokens/s


def window(
    b: Bench,
    proxy: Proc | None,
    port: int,
    mode: str,
    c: int,
    message: str,
    duration: float,
    probe: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """One loadgen run; the worker's CPU (and `probe`'s counters, e.g. Redis's) sampled over
    the measured window only."""
    from .run import PY, ROOT, nofile, taskset

    cmd = [*taskset("1"), PY, "-m", "bench.loadgen", "--port", str(port), "--mode", mode]
    cmd += ["-c", str(c), "--message", message, "--duration", str(duration), "--marks"]
    cmd += ["--warmup", str(max(1.0, b.a.warmup))]
    popen = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=nofile
    )
    assert popen.stdout is not None
    marks: dict[str, tuple[float, float, float]] = {}
    probed: dict[str, dict[str, float]] = {}
    last = ""
    for raw in popen.stdout:
        last = raw.decode().strip()
        mark = json.loads(last).get("mark") if last.startswith('{"mark"') else None
        if mark:
            cpu = proxy.cpu() if proxy is not None else 0.0
            marks[mark] = (time.monotonic(), cpu, b.fake.cpu() if b.fake is not None else 0.0)
            if probe is not None:
                probed[mark] = probe()
    popen.wait(900)
    if popen.returncode != 0 or "stop" not in marks:
        err = popen.stderr.read().decode()[-2000:] if popen.stderr else ""
        raise RuntimeError(f"loadgen failed: {err}")
    res: dict[str, Any] = json.loads(last)
    (t0, c0, f0), (t1, c1, f1) = marks["start"], marks["stop"]
    # the other side's share: at the top of the curve it shows whether the fake n8n and the
    # load generator (sharing CPU 1) kept up
    res["fake_cpu_pct"] = round(100 * (f1 - f0) / (t1 - t0), 1)
    if proxy is not None:
        res["proxy_cpu_pct"] = round(100 * (c1 - c0) / (t1 - t0), 1)
        res["proxy_cpu_s"] = round(c1 - c0, 3)
        deltas, writes = res["deltas"], res["writes"]
        res["cpu_us_per_delta"] = round(1e6 * (c1 - c0) / deltas, 1) if deltas else None
        res["cpu_us_per_write"] = round(1e6 * (c1 - c0) / writes, 1) if writes else None
        res["deltas_per_write"] = round(deltas / writes, 3) if writes else None
    if probe is not None:
        res["probe"] = {k: probed["stop"][k] - probed["start"][k] for k in probed["stop"]}
    return res


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def paced(b: Bench) -> None:
    chunks = b.a.paced_chunks
    message = f"bench:{chunks}:{RATE}"
    proxy, port = b.start_proxy()
    try:
        b.loadgen(port, "sse", 10, pin="1", duration=1, warmup=0.5)  # warm the process
        for c in b.a.paced_levels:
            via = window(b, proxy, port, "sse", c, message, b.a.duration)
            direct = window(b, None, b.fake_port, "direct", c, message, b.a.duration)
            row: dict[str, Any] = {"scenario": "paced_capacity", "concurrency": c}
            row["message"] = message
            row["proxy"], row["direct"] = via, direct
            row["added_ttfd_ms"] = {
                p: _sub(via["ttfd_ms"][p], direct["ttfd_ms"][p]) for p in ("50", "99")
            }
            row["added_late_ms"] = {
                p: _sub(via["delta_late_ms"][p], direct["delta_late_ms"][p]) for p in ("50", "99")
            }
            broken = []
            if via["proxy_cpu_pct"] > CPU_LIMIT:
                broken.append(f"cpu {via['proxy_cpu_pct']} % > {CPU_LIMIT}")
            if (row["added_ttfd_ms"]["99"] or 0) > TTFD_LIMIT:
                broken.append(f"added ttfd p99 {row['added_ttfd_ms']['99']} ms > {TTFD_LIMIT}")
            if (row["added_late_ms"]["99"] or 0) > LATE_LIMIT:
                broken.append(f"added delta delay p99 {row['added_late_ms']['99']} ms")
            if via["errors"]:
                broken.append(f"{via['errors']} errors")
            row["broken"] = broken
            b.results.append(row)
            print(_paced_line(row), flush=True)
            if broken and not b.a.paced_all:
                break
    finally:
        proxy.stop()


def _redis_probe(url: str) -> Callable[[], dict[str, float]]:
    """Scripts Redis was sent (EVALSHA + EVAL: one per round trip of the store's appends, begin
    and finish) and its CPU seconds, from INFO (redis-cli: outside the worker's CPU)."""
    from tests.redis_server import cli

    port = int(url.rsplit(":", 1)[1].split("/")[0])

    def probe() -> dict[str, float]:
        out = {"scripts": 0.0, "redis_cpu_s": 0.0}
        for line in cli(port, "INFO", "all").splitlines():
            name, _, value = line.partition(":")
            if name in ("cmdstat_evalsha", "cmdstat_eval"):
                out["scripts"] += float(dict(f.split("=") for f in value.split(","))["calls"])
            elif name in ("used_cpu_user", "used_cpu_sys"):
                out["redis_cpu_s"] += float(value)
        return out

    return probe


def _cost_store(b: Bench) -> tuple[dict[str, str], Callable[[], dict[str, float]] | None]:
    """The proxy's environment for `--cost-mode`, and what to sample besides its CPU."""
    mode = b.a.cost_mode
    if mode == "memory":
        return {}, None
    if mode == "sqlite":
        return {"DEPLOYMENT_MODE": "sqlite"}, None
    url = b.start_redis()
    if url is None:
        raise RuntimeError("--cost-mode production needs redis-server (.ci/setup-redis.sh)")
    return {"DEPLOYMENT_MODE": "production", "REDIS_URL": url}, _redis_probe(url)


def delta_cost(b: Bench, ceiling: str = "") -> None:
    """CPU µs per delta at two answer lengths, alternated (short, long, short, long); with
    `--cost-mode production` also Redis's scripts (round trips) and CPU per delta.
    `ceiling` ("stock" or "overrides"): the same for the framework alone (bench/ceiling.py,
    `relay`: Quart on trio under the same Hypercorn config relaying the fake n8n's body as it
    comes, without or with the gateway's framework overrides), the floor any Quart app on this
    stack pays per streamed write."""
    short, long_ = 20, 80
    c = b.a.cost_streams
    if ceiling:
        proxy, port = b.start_ceiling("relay", overrides=ceiling == "overrides")
        probe, mode = None, "direct"
    else:
        env, probe = _cost_store(b)
        (proxy, port), mode = b.start_proxy(**env), "sse"
    try:
        b.loadgen(port, mode, 10, pin="1", duration=1, warmup=0.5)
        per_turn: dict[int, list[float]] = {short: [], long_: []}
        writes_per_turn: dict[int, list[float]] = {short: [], long_: []}
        per_delta: dict[int, list[float]] = {short: [], long_: []}
        scripts_per_turn: dict[int, list[float]] = {short: [], long_: []}
        redis_us: list[float] = []
        coalesced: list[float] = []
        for _ in range(b.a.cost_rounds):
            for n in (short, long_):
                res = window(b, proxy, port, mode, c, f"bench:{n}:{RATE}", b.a.duration, probe)
                # Turns in the window = deltas / n (partial turns at the edges count their
                # received deltas, which is what the CPU was spent on). On a loaded machine
                # the fake n8n falls behind and several deltas arrive in one read and leave in
                # one write, which costs the proxy about as much as one delta: the unit of
                # work is the write, so the slope is taken per write, not per delta.
                turns = res["deltas"] / n
                per_delta[n].append(res["proxy_cpu_s"] / res["deltas"])
                per_turn[n].append(res["proxy_cpu_s"] / turns)
                writes_per_turn[n].append(res["writes"] / turns)
                coalesced.append(res["deltas_per_write"])
                if "probe" in res:
                    scripts_per_turn[n].append(res["probe"]["scripts"] / turns)
                    redis_us.append(1e6 * res["probe"]["redis_cpu_s"] / res["deltas"])
        avg = {n: sum(v) / len(v) for n, v in per_turn.items()}
        wpt = {n: sum(v) / len(v) for n, v in writes_per_turn.items()}
        marginal = (avg[long_] - avg[short]) / (wpt[long_] - wpt[short])
        row = {
            "scenario": "ceiling_cost" if ceiling else "delta_cost",
            "store": f"framework, {ceiling}" if ceiling else b.a.cost_mode,
            "concurrency": c,
            "rate": RATE,
            "cpu_us_per_delta": {
                str(n): round(1e6 * sum(v) / len(v), 1) for n, v in per_delta.items()
            },
            "marginal_us_per_delta": round(1e6 * marginal, 1),
            "fixed_ms_per_turn": round(1e3 * (avg[short] - marginal * wpt[short]), 3),
            "deltas_per_write": round(max(coalesced), 3),
            "rounds": b.a.cost_rounds,
        }
        extra = ""
        if redis_us:
            spt = {n: sum(v) / len(v) for n, v in scripts_per_turn.items()}
            # the slope per extra write, as for the CPU: the turn's own begin/finish left out
            row["redis_round_trips_per_write"] = round(
                (spt[long_] - spt[short]) / (wpt[long_] - wpt[short]), 3
            )
            row["redis_cpu_us_per_delta"] = round(sum(redis_us) / len(redis_us), 1)
            extra = (
                f", Redis {row['redis_round_trips_per_write']} round trips/write, "
                f"{row['redis_cpu_us_per_delta']} µs Redis CPU/delta"
            )
        b.results.append(row)
        print(
            f"{row['scenario']} [{row['store']}] c={c} at {RATE}/s: all-in "
            f"{row['cpu_us_per_delta']} µs/delta, marginal {row['marginal_us_per_delta']} "
            f"µs/write, fixed {row['fixed_ms_per_turn']} ms/turn, up to "
            f"{row['deltas_per_write']} deltas/write" + extra,
            flush=True,
        )
    finally:
        proxy.stop()


def _paced_line(r: dict[str, Any]) -> str:
    p = r["proxy"]
    return (
        f"paced c={r['concurrency']:<4} cpu {p['proxy_cpu_pct']} % "
        f"({p['cpu_us_per_delta']} µs/delta, {p['cpu_us_per_write']} µs/write)  "
        f"added ttfd p50/p99 {r['added_ttfd_ms']['50']}/"
        f"{r['added_ttfd_ms']['99']} ms  added delay p50/p99 {r['added_late_ms']['50']}/"
        f"{r['added_late_ms']['99']} ms  errors {p['errors']}  fake/loadgen cpu "
        f"{p['fake_cpu_pct']}/{p['loadgen_cpu_pct']} %"
        + (f"  BROKEN: {', '.join(r['broken'])}" if r["broken"] else "")
    )


def markdown(results: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    rows = [r for r in results if r.get("scenario") == "paced_capacity"]
    if rows:
        out += [
            "",
            f"Paced capacity (SSE, n8n at {RATE} tokens/s; limits: CPU ≤ {CPU_LIMIT:.0f} %, added "
            f"ttfd ≤ {TTFD_LIMIT:.0f} ms p99, added delta delay ≤ {LATE_LIMIT:.0f} ms p99):",
            "",
            "| streams | proxy CPU % | CPU µs per delta / per write | added ttfd p50 / p99 ms | "
            "added delta delay p50 / p99 ms | errors | CPU % fake / loadgen | limit broken |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            p = r["proxy"]
            out.append(
                f"| {r['concurrency']} | {p['proxy_cpu_pct']} | {p['cpu_us_per_delta']} / "
                f"{p.get('cpu_us_per_write')} | "
                f"{r['added_ttfd_ms']['50']} / {r['added_ttfd_ms']['99']} | "
                f"{r['added_late_ms']['50']} / {r['added_late_ms']['99']} | {p['errors']} | "
                f"{p.get('fake_cpu_pct')} / {p.get('loadgen_cpu_pct')} | "
                f"{'; '.join(r['broken']) or '-'} |"
            )
    for r in results:
        if r.get("scenario") in ("delta_cost", "ceiling_cost"):
            who = (
                f"the framework alone (bench/ceiling.py relay, {r.get('store')})"
                if r["scenario"] == "ceiling_cost"
                else "the gateway"
            )
            out += [
                "",
                f"CPU per delta, {who} ({r['concurrency']} streams at {r['rate']} tokens/s, "
                f"worker CPU time / deltas received, {r['rounds']} alternated rounds): all-in "
                f"{r['cpu_us_per_delta']} µs by answer length; marginal "
                f"**{r['marginal_us_per_delta']} µs per streamed write** (a delta, or the "
                f"deltas of one upstream read; up to {r.get('deltas_per_write')} deltas per "
                f"write in this run), fixed {r['fixed_ms_per_turn']} ms per turn.",
            ]
    return out
