"""One command for the whole benchmark:

    .venv/bin/python -m bench.run --quick     # ~2-3 minutes
    .venv/bin/python -m bench.run             # full, ~15 minutes

Starts, each in its own process: the fast fake n8n (bench/fake_n8n.py), the proxy exactly as
shipped (`python -m quartproxy --bind ... --workers N`, hypercorn.toml of the repo, access log
on, written to a file), and for every scenario a load generator (bench/loadgen.py). Each
throughput/latency scenario runs against the proxy AND directly against the fake n8n in the
same invocation; the report gives the ratio and the added milliseconds.

CPU placement on the 2-core machine (Linux `taskset`): one proxy worker on CPU 0, fake n8n and
load generator on CPU 1, so the thing under test has a core of its own. With 2 workers nothing
is pinned. Every scenario also reports the CPU each process used, which shows who the
bottleneck was.

Results: bench/results/<UTC date-time>.json and bench/results/latest.md.
Traffic: 127.0.0.1 only, every scenario bounded in time (and turns).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ORIGIN = "http://bench.local"
HUGE = "1000000/second"


def nofile() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200_000, 200_000))
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def taskset(cpus: str | None) -> list[str]:
    if cpus is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", cpus]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError):
        return 0.0


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(x) for x in (task / "children").read_text().split()]
    return out


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    name: str

    def pids(self) -> list[int]:
        kids = children(self.popen.pid)
        return kids or [self.popen.pid]  # hypercorn's workers, else the process itself

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def rss(self) -> int:
        return sum(rss_bytes(p) for p in self.pids())

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.tmp = Path(tempfile.mkdtemp(prefix="qp-bench-"))
        self.results: list[dict[str, Any]] = []
        self.redis: subprocess.Popen[bytes] | None = None
        self.cluster: Any = None  # tests.redis_server.RedisCluster, for the stores part
        self.fake: Proc | None = None
        self.fake_port = 0

    # -- processes ---------------------------------------------------------------------------
    def start_fake(self) -> None:
        log = open(self.tmp / "fake.out", "w+b")  # noqa: SIM115 - lives as long as the process
        popen = subprocess.Popen(
            [*taskset("1"), PY, "-m", "bench.fake_n8n", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            preexec_fn=nofile,
        )
        assert popen.stdout is not None
        line = popen.stdout.readline().decode()
        self.fake_port = int(line.split()[1])
        self.fake = Proc(popen, "fake_n8n")

    def proxy_env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "N8N_", "JWT"))
        }
        env.update(
            {
                "JWT_SECRET_KEY": "bench-jwt-secret-0123456789-abcdefghijklmnop",
                "SESSION_SECRET_KEY": "bench-session-secret-0123456789-abcdefghijk",
                "N8N_WEBHOOK_URL": f"http://127.0.0.1:{self.fake_port}/webhook/chat",
                "ALLOWED_ORIGINS": ORIGIN,
                "DEPLOYMENT_MODE": "stateless",
                "RATE_LIMIT_IP": HUGE,
                "RATE_LIMIT_SESSION": HUGE,
                "RATE_LIMIT_ORIGIN": HUGE,
                "RATE_LIMIT_SESSION_CREATE": HUGE,
                "N8N_MAX_CONNECTIONS": "20000",
                "N8N_TIMEOUT_SECONDS": "600",
                "LOG_LEVEL": "WARNING",
                "SQLITE_PATH": str(self.tmp / "bench.db"),
            }
        )
        env.update(extra)
        return env

    def start_proxy(self, workers: int = 1, **env: str) -> tuple[Proc, int]:
        port = free_port()
        log = open(self.tmp / f"proxy-{port}.log", "wb")  # noqa: SIM115 - as long as the proxy
        cpus = "0" if workers == 1 else None
        popen = subprocess.Popen(
            [
                *taskset(cpus),
                PY,
                "-m",
                "quartproxy",
                "--bind",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
            ],
            cwd=ROOT,
            env=self.proxy_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=nofile,
        )
        wait_port(port)
        time.sleep(0.5 * workers)  # all workers bound (SO_REUSEPORT) and past startup
        return Proc(popen, "proxy"), port

    def start_redis(self) -> str | None:
        exe = shutil.which("redis-server")
        if exe is None:
            return None
        port = free_port()
        self.redis = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        return f"redis://127.0.0.1:{port}/0"

    def loadgen(
        self, port: int, mode: str, c: int, *, pin: str | None, **kw: Any
    ) -> dict[str, Any]:
        cmd = [*taskset(pin), PY, "-m", "bench.loadgen", "--port", str(port), "--mode", mode]
        cmd += ["-c", str(c)]
        for k, v in kw.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        out = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, timeout=900, preexec_fn=nofile, check=False
        )
        lines = out.stdout.decode().strip().splitlines()
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"loadgen failed: {out.stderr.decode()[-2000:]}")
        return dict(json.loads(lines[-1]))

    # -- scenarios ---------------------------------------------------------------------------
    def measure(
        self, proxy: Proc | None, port: int, mode: str, c: int, pin: str | None, **kw: Any
    ) -> dict[str, Any]:
        assert self.fake is not None
        watched = [p for p in (proxy, self.fake) if p is not None]
        before = [p.cpu() for p in watched]
        t0 = time.monotonic()
        res = self.loadgen(port, mode, c, pin=pin, **kw)
        wall = time.monotonic() - t0
        spent = [p.cpu() - b for p, b in zip(watched, before, strict=True)]
        # CPU shares over the whole loadgen run (setup and warm-up included)
        res["cpu_pct"] = {
            p.name: round(100 * s / wall, 1) for p, s in zip(watched, spent, strict=True)
        }
        res["cpu_pct"]["loadgen"] = res.pop("loadgen_cpu_pct")
        if proxy is not None and res["turns"]:
            measured = res["seconds"] + kw.get("warmup", 1.0)
            res["proxy_cpu_ms_per_turn"] = round(
                1000 * spent[0] / (res["turns_per_s"] * measured), 3
            )
        return res

    def pair(
        self, name: str, proxy: Proc, port: int, mode: str, c: int, message: str, **extra: Any
    ) -> None:
        q = self.a
        kw = {"duration": q.duration, "warmup": q.warmup, "message": message}
        pin = None if extra.get("workers", 1) > 1 else "1"
        via = self.measure(proxy, port, mode, c, pin, **kw)
        direct = self.measure(None, self.fake_port, "direct", c, pin, **kw)
        row = {"scenario": name, "mode": mode, "concurrency": c, "message": message, **extra}
        row["proxy"] = via
        row["direct"] = direct
        row["ratio"] = (
            round(via["turns_per_s"] / direct["turns_per_s"], 3) if direct["turns_per_s"] else None
        )
        row["added_ttfd_ms"] = {
            p: _sub(via["ttfd_ms"][p], direct["ttfd_ms"][p]) for p in ("50", "90", "99")
        }
        row["added_turn_ms"] = {
            p: _sub(via["turn_ms"][p], direct["turn_ms"][p]) for p in ("50", "99")
        }
        self.results.append(row)
        print(_line(row), flush=True)

    def throughput(self) -> None:
        proxy, port = self.start_proxy()
        try:
            self.loadgen(port, "sse", 10, pin="1", duration=1, warmup=0.5)  # warm the process
            for c in self.a.levels:
                self.pair("sse_turns", proxy, port, "sse", c, "bench:20:0")
            self.pair("ndjson_turns", proxy, port, "ndjson", 50, "bench:20:0")
            if self.ws_available(port):
                self.pair("ws_turns", proxy, port, "ws", 50, "bench:20:0")
            else:
                self.skip("ws_turns", "no /api/v1/chat/ws route in this build")
            self.pair("sse_paced_50tps", proxy, port, "sse", 50, "bench:20:50")
        finally:
            proxy.stop()

    def start_ceiling(self, variant: str, overrides: bool = False) -> tuple[Proc, int]:
        """bench/ceiling.py under the proxy's Hypercorn config, pinned like one proxy worker;
        `overrides`: with the gateway's framework overrides installed."""
        port = free_port()
        log = open(self.tmp / f"ceiling-{variant}-{port}.log", "wb")  # noqa: SIM115
        env = {
            **os.environ,
            "CEILING_VARIANT": variant,
            "CEILING_UPSTREAM": f"http://127.0.0.1:{self.fake_port}/webhook/chat",
            "CEILING_OVERRIDES": "1" if overrides else "0",
        }
        cmd = [*taskset("0"), PY, "-m", "hypercorn", "-c", "hypercorn.toml"]
        cmd += ["-b", f"127.0.0.1:{port}", "bench.ceiling:app"]
        popen = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=nofile
        )
        wait_port(port)
        return Proc(popen, "proxy"), port

    def ceiling(self) -> None:
        """The framework alone (bench/ceiling.py) under the same Hypercorn config, same pin,
        same load: what Quart on trio + Hypercorn can do at all for this exchange."""
        for variant in ("static", "relay"):
            proc, port = self.start_ceiling(variant)
            try:
                self.loadgen(port, "direct", 10, pin="1", duration=1, warmup=0.5)
                for c in (50, 200):
                    kw = {"duration": self.a.duration, "warmup": self.a.warmup}
                    res = self.measure(proc, port, "direct", c, "1", message="bench:20:0", **kw)
                    row = {"scenario": f"ceiling_{variant}", "mode": "direct", "concurrency": c}
                    row["proxy"] = res
                    self.results.append(row)
                    print(
                        f"{row['scenario']:<18} c={c:<4} {res['turns_per_s']:>8}/s  ttfd p50/p99"
                        f" {res['ttfd_ms']['50']}/{res['ttfd_ms']['99']} ms  cpu {res['cpu_pct']}",
                        flush=True,
                    )
            finally:
                proc.stop()

    def paced(self) -> None:
        """Concurrent paced streams stepped up until a limit breaks (bench/paced.py)."""
        from . import paced

        paced.paced(self)

    def delta_cost(self) -> None:
        """The worker's CPU per streamed delta, robust to other load (bench/paced.py)."""
        from . import paced

        paced.delta_cost(self)

    def ceiling_cost(self) -> None:
        """delta_cost for the framework alone (bench/ceiling.py, relay): its floor, stock and
        with the gateway's framework overrides."""
        from . import paced

        paced.delta_cost(self, ceiling="stock")
        paced.delta_cost(self, ceiling="overrides")

    def ws_available(self, port: int) -> bool:
        try:
            self.loadgen(port, "ws", 1, pin="1", duration=0.3, warmup=0.1)
            return True
        except RuntimeError:
            return False

    def skip(self, name: str, why: str) -> None:
        self.results.append({"scenario": name, "skipped": why})
        print(f"{name}: skipped ({why})", flush=True)

    def workers(self) -> None:
        for w in (1, 2):
            proxy, port = self.start_proxy(workers=w)
            try:
                self.loadgen(port, "sse", 10, pin=None, duration=1, warmup=0.5)
                self.pair(f"sse_workers_{w}", proxy, port, "sse", 100, "bench:20:0", workers=w)
            finally:
                proxy.stop()

    def stores(self) -> None:
        modes: list[tuple[str, dict[str, str]]] = [("memory", {})]
        if (ROOT / "quartproxy" / "store" / "sqlite").is_dir():
            modes.append(("sqlite", {"DEPLOYMENT_MODE": "sqlite"}))
        else:
            self.skip("limiter_sqlite", "store/sqlite/ not in this build")
        if (ROOT / "quartproxy" / "store" / "redis").is_dir():
            url = self.start_redis()
            if url:
                modes.append(("redis", {"DEPLOYMENT_MODE": "production", "REDIS_URL": url}))
                # the same load on a 3+3 Redis Cluster on this machine (docs/topologies.md)
                from tests.redis_server import RedisCluster

                self.cluster = RedisCluster(Path(tempfile.mkdtemp(prefix="bench-cluster-")))
                self.cluster.start()
                cluster = {"DEPLOYMENT_MODE": "production", "REDIS_URL": self.cluster.url}
                modes.append(("redis_cluster", cluster))
        else:
            self.skip("limiter_redis", "store/redis/ not in this build")
        for name, env in modes:
            proxy, port = self.start_proxy(**env)
            try:
                self.loadgen(port, "sse", 10, pin="1", duration=1, warmup=0.5)
                self.pair(f"store_{name}", proxy, port, "sse", 50, "bench:20:0", store=name)
            finally:
                proxy.stop()

    def idle(self) -> None:
        """Idle SSE streams: memory per stream, time to open them, heartbeat CPU.

        The proxy runs with the production heartbeat (15 s unless --idle-heartbeat): opening
        thousands of streams must not compete with pings of the streams already open, which is
        not what the opening costs in production either. The pings are measured while the
        streams are held: streams opened over several seconds ping at spread-out times, so any
        window of the hold sees about streams * hold / heartbeat of them."""
        hb = self.a.idle_heartbeat
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cap = (hard - 500) // 2  # the proxy holds two sockets per stream (client, n8n)
        for requested in self.a.idle:
            n = min(requested, cap)
            if n < requested:
                print(
                    f"idle_sse: {requested} streams need > {hard} fds (hard RLIMIT_NOFILE);"
                    f" running {n}",
                    flush=True,
                )
            proxy, port = self.start_proxy(HEARTBEAT_SECONDS=str(hb))
            try:
                self.loadgen(port, "sse", 10, pin="1", duration=1, warmup=0.2)
                time.sleep(0.5)
                rss0, cpu0 = proxy.rss(), proxy.cpu()
                cmd = [*taskset("1"), PY, "-m", "bench.loadgen", "--port", str(port)]
                cmd += ["--mode", "idle", "-c", str(n), "--message", "hang"]
                cmd += ["--duration", str(self.a.hold), "--open-concurrency", "200"]
                lg = subprocess.Popen(
                    cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=nofile
                )
                assert lg.stdout is not None
                opened = json.loads(lg.stdout.readline())
                # CPU over the hold only: from all open to the loadgen's "held" line, which it
                # prints before closing the streams (their disconnects are not heartbeat work)
                cpu1, t1 = proxy.cpu(), time.monotonic()
                time.sleep(0.5)
                rss1 = proxy.rss()
                load = os.getloadavg()
                pings = json.loads(lg.stdout.readline())["held_pings"]
                cpu2, t2 = proxy.cpu(), time.monotonic()
                out, _ = lg.communicate(timeout=600)
                res = json.loads(out.decode().strip().splitlines()[-1])
                res["pings"] = pings
                held = t2 - t1
                hold_cpu = 100 * (cpu2 - cpu1) / held
                row = {
                    "scenario": "idle_sse",
                    "requested": requested,
                    "fd_hard_limit": hard,
                    "streams": n,
                    "opened": opened["opened"],
                    "errors": res["errors"],
                    "error_kinds": res["error_kinds"],
                    "open_s": res["open_s"],
                    "open_cpu_s": round(cpu1 - cpu0, 2),  # sessions, turns, upstream connects
                    "rss_before_mb": round(rss0 / 2**20, 1),
                    "rss_open_mb": round(rss1 / 2**20, 1),
                    "rss_per_stream_kb": round((rss1 - rss0) / max(1, opened["opened"]) / 1024, 1),
                    "loadavg_at_rss": [round(x, 2) for x in load],
                    "heartbeat_s": hb,
                    "held_s": round(held, 1),
                    "pings": res["pings"],
                    "hold_cpu_pct": round(hold_cpu, 1),
                    "cpu_us_per_ping": round(1e6 * (cpu2 - cpu1) / res["pings"], 1)
                    if res["pings"]
                    else None,
                }
                # the same streams at the default 15 s heartbeat: this share of a core
                if row["cpu_us_per_ping"]:
                    row["cpu_pct_at_15s"] = round(
                        opened["opened"] / 15 * row["cpu_us_per_ping"] / 1e4, 2
                    )
                self.results.append(row)
                print(_idle_line(row), flush=True)
            finally:
                proxy.stop()

    # -- all ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.start_fake()
        try:
            for part in self.a.parts:
                getattr(self, part)()
        finally:
            if self.fake:
                self.fake.stop()
            if self.redis:
                self.redis.terminate()
                self.redis.wait()
            if self.cluster:
                self.cluster.stop()
        self.write()

    def write(self) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
        meta = machine()
        meta["command"] = " ".join(["python -m bench.run", *sys.argv[1:]])
        meta["commit"] = _git("rev-parse", "--short", "HEAD")
        doc = {"meta": meta, "results": self.results}
        (RESULTS / f"{stamp}.json").write_text(json.dumps(doc, indent=1))
        (RESULTS / "latest.md").write_text(markdown(doc))
        print(f"\nwrote bench/results/{stamp}.json and bench/results/latest.md")


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def _line(r: dict[str, Any]) -> str:
    p, d = r["proxy"], r["direct"]
    return (
        f"{r['scenario']:<18} c={r['concurrency']:<4} proxy {p['turns_per_s']:>8}/s "
        f"direct {d['turns_per_s']:>8}/s ratio {r['ratio']}  ttfd p50/p99 "
        f"{p['ttfd_ms']['50']}/{p['ttfd_ms']['99']} ms (+{r['added_ttfd_ms']['50']}/"
        f"+{r['added_ttfd_ms']['99']})  errors {p['errors']}  cpu {p['cpu_pct']}"
    )


def _idle_line(r: dict[str, Any]) -> str:
    return (
        f"idle_sse n={r['streams']} opened={r['opened']} ({r['errors']} errors) in "
        f"{r['open_s']}s  RSS {r['rss_before_mb']}->{r['rss_open_mb']} MB = "
        f"{r['rss_per_stream_kb']} KiB/stream (load {r['loadavg_at_rss'][0]})  "
        f"hb {r['heartbeat_s']}s: {r['hold_cpu_pct']}% CPU, {r['cpu_us_per_ping']} us/ping"
    )


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "?"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def markdown(doc: dict[str, Any]) -> str:
    m = doc["meta"]
    out = [
        f"# Benchmark results ({m['date']})",
        "",
        f"Command: `{m['command']}` at commit `{m['commit']}`  ",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"Linux {m['kernel']}, load average at start "
        f"{tuple(round(x, 2) for x in m['loadavg_at_start'])}",
        "",
        "Turns of 20 chunks. `direct` = the same load generator straight against the fake "
        "n8n, same run. ttfd = time to first delta. One worker pinned to CPU 0; fake n8n and load "
        "generator on CPU 1 (except the 2-worker rows: unpinned).",
        "",
        "| scenario | conc. | proxy turns/s | direct turns/s | ratio | ttfd p50 / p90 / p99 ms | "
        "added ttfd p50 / p99 ms | turn p50 / p99 ms | errors | CPU % proxy / fake / loadgen |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        if "proxy" not in r or "direct" not in r or r["scenario"] == "paced_capacity":
            continue
        p, d = r["proxy"], r["direct"]
        t, u = p["ttfd_ms"], p["turn_ms"]
        cpu = p["cpu_pct"]
        out.append(
            f"| {r['scenario']} | {r['concurrency']} | {p['turns_per_s']} | {d['turns_per_s']} | "
            f"{r['ratio']} | {t['50']} / {t['90']} / {t['99']} | "
            f"{r['added_ttfd_ms']['50']} / {r['added_ttfd_ms']['99']} | {u['50']} / {u['99']} | "
            f"{p['errors']} | {cpu.get('proxy')} / {cpu.get('fake_n8n')} / {cpu.get('loadgen')} |"
        )
    ceiling = [
        r for r in doc["results"] if r.get("scenario") in ("ceiling_static", "ceiling_relay")
    ]
    if ceiling:
        out += [
            "",
            "The framework alone (bench/ceiling.py: Quart on trio under the same Hypercorn config,"
            " same pinning; `static` streams a prebuilt answer, `relay` relays the fake n8n over a"
            " raw socket with no checks, parsing, JWT, store or metrics):",
            "",
            "| ceiling | conc. | turns/s | ttfd p50 / p99 ms | CPU ms per turn |",
            "|---|---|---|---|---|",
        ]
        for r in ceiling:
            p = r["proxy"]
            out.append(
                f"| {r['scenario']} | {r['concurrency']} | {p['turns_per_s']} | "
                f"{p['ttfd_ms']['50']} / {p['ttfd_ms']['99']} | {p.get('proxy_cpu_ms_per_turn')} |"
            )
    idle = [r for r in doc["results"] if r.get("scenario") == "idle_sse"]
    if idle:
        out += [
            "",
            "| idle SSE streams | opened (errors) | time to open s | proxy RSS before → open MB | "
            "RSS per stream KiB | load avg at RSS | heartbeat s | CPU % while held | "
            "CPU µs per ping | CPU % at 15 s heartbeat |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in idle:
            load = r.get("loadavg_at_rss")
            out.append(
                f"| {r['streams']} | {r['opened']} ({r['errors']}) | {r['open_s']} | "
                f"{r['rss_before_mb']} → {r['rss_open_mb']} | {r['rss_per_stream_kb']} | "
                f"{' / '.join(str(x) for x in load) if load else '?'} | {r['heartbeat_s']} | "
                f"{r['hold_cpu_pct']} | {r['cpu_us_per_ping']} | {r.get('cpu_pct_at_15s')} |"
            )
    from .paced import markdown as paced_markdown

    out += paced_markdown(doc["results"])
    skipped = [r for r in doc["results"] if "skipped" in r]
    if skipped:
        out += ["", "Skipped: " + "; ".join(f"{r['scenario']} ({r['skipped']})" for r in skipped)]
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short runs, fewer levels (~3 min)")
    p.add_argument(
        "--parts",
        default="throughput,ceiling,workers,stores,idle,paced,delta_cost,ceiling_cost",
        help="comma-separated subset of throughput,ceiling,workers,stores,idle,paced,delta_cost,"
        "ceiling_cost",
    )
    p.add_argument("--paced-levels", help="paced part: streams per step, e.g. 50,100,200,300")
    p.add_argument(
        "--paced-all", action="store_true", help="paced part: every level, past a broken limit"
    )
    p.add_argument("--paced-chunks", type=int, default=50, help="paced part: tokens per answer")
    p.add_argument("--cost-streams", type=int, default=50, help="delta_cost: concurrent streams")
    p.add_argument("--cost-rounds", type=int, default=2, help="delta_cost: alternated rounds")
    p.add_argument(
        "--cost-mode",
        choices=("memory", "sqlite", "production"),
        default="memory",
        help="delta_cost: the proxy's store (production: a local redis-server; Redis's round "
        "trips and CPU per delta are reported too)",
    )
    p.add_argument("--levels", help="concurrency levels, e.g. 1,10,50,200")
    p.add_argument("--idle", help="idle stream counts, e.g. 1000,5000,10000")
    p.add_argument("--duration", type=float, help="measured seconds per run")
    p.add_argument(
        "--idle-heartbeat",
        type=float,
        default=15.0,
        help="HEARTBEAT_SECONDS of the proxy in the idle part (default: production's 15)",
    )
    p.add_argument("--hold", type=float, help="seconds the idle streams are held (pings counted)")
    a = p.parse_args()
    a.parts = a.parts.split(",")
    a.warmup = 1.0
    a.levels = [int(x) for x in (a.levels or "1,10,50,200").split(",")]
    steps = a.paced_levels or "25,50,100,150,200,250,300,400,500,600"
    a.paced_levels = [int(x) for x in steps.split(",")]
    if a.quick:
        a.duration = a.duration or 3.0
        a.idle = [int(x) for x in (a.idle or "1000").split(",")]
        a.hold = a.hold or 5.0
    else:
        a.duration = a.duration or 8.0
        a.idle = [int(x) for x in (a.idle or "1000,5000,10000").split(",")]
        a.hold = a.hold or 15.0
    nofile()
    Bench(a).run()


if __name__ == "__main__":
    main()
