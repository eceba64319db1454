"""HTTP/2 rows for the benchmark (docs/http2.md):

    .venv/bin/python -m bench.h2 --duration 10 --concurrency 50

The proxy exactly as shipped (`python -m quartproxy`, hypercorn.toml) terminating TLS itself
with a trustme certificate, the fast fake n8n (bench/fake_n8n.py), and in this process an httpx
load generator, the same client code for every row:

    h2, 1 connection      C users' turns multiplexed over ONE HTTP/2 connection
    h1.1+TLS, C conns     C users, one HTTP/1.1 keep-alive connection each, same TLS
    h1.1 plain, C conns   the same without TLS (the proxy-terminated deployment's hop)

Each row: turns/s, time to first delta (p50/p95, from just before the request to the first
`event: delta`), and the proxy's CPU seconds per 1000 turns (what the Python stack costs, less
sensitive than turns/s to a busy machine). Then resident memory per idle answer stream (turns
whose answer never comes), N on one HTTP/2 connection vs N HTTP/1.1 connections.

Results: bench/results/h2-<UTC date-time>.json, and markdown rows on stdout.
Traffic: 127.0.0.1 only; every scenario bounded in time and in turns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import trustme

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "http://bench.local"
HUGE = "100000000/minute"
BROWSER = {
    "Origin": ORIGIN,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def client(base: str, ctx: ssl.SSLContext, *, http2: bool, conns: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        http2=http2,
        http1=not http2,
        verify=ctx,
        timeout=120,
        headers=BROWSER,
        limits=httpx.Limits(max_connections=conns, max_keepalive_connections=conns),
    )


async def session(c: httpx.AsyncClient) -> str:
    r = await c.post("/api/v1/session/create", json={"fingerprint": "bench"})
    r.raise_for_status()
    return str(r.json()["token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Chat-Fingerprint": "bench"}


async def turns(
    base: str, ctx: ssl.SSLContext, pid: int, *, http2: bool, users: int, duration: float
) -> dict[str, Any]:
    ttfd: list[float] = []
    done = 0
    failed = 0
    async with client(base, ctx, http2=http2, conns=1 if http2 else users) as c:
        tokens = [await session(c) for _ in range(users)]
        await c.get("/health")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        deadline = t0 + duration

        async def user(token: str) -> None:
            nonlocal done, failed
            while time.monotonic() < deadline:
                start = time.monotonic()
                first = None
                async with c.stream(
                    "POST", "/api/v1/chat/message", json={"message": "bench:20:0"},
                    headers=auth(token),
                ) as r:  # fmt: skip
                    body = ""
                    async for text in r.aiter_text():
                        if first is None and "event: delta" in text:
                            first = time.monotonic() - start
                        body += text
                if r.status_code == 200 and "event: end" in body and first is not None:
                    done += 1
                    ttfd.append(first * 1000)
                else:
                    failed += 1

        async with trio.open_nursery() as nursery:
            for token in tokens:
                nursery.start_soon(user, token)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
    return {
        "turns": done,
        "failed": failed,
        "turns_per_s": round(done / elapsed, 1),
        "ttfd_p50_ms": round(pct(ttfd, 0.5) or 0, 1),
        "ttfd_p95_ms": round(pct(ttfd, 0.95) or 0, 1),
        "proxy_cpu_s_per_1000_turns": round(1000 * cpu / max(1, done), 2),
    }


async def idle(
    base: str, ctx: ssl.SSLContext, pid: int, *, http2: bool, streams: int
) -> dict[str, Any]:
    """`streams` answers that never come (fake n8n `hang`), held open; the proxy's RSS growth."""
    async with client(base, ctx, http2=http2, conns=1 if http2 else streams) as c:
        tokens = [await session(c) for _ in range(streams)]
        before = rss_kib(pid)
        opened = trio.Semaphore(0)
        async with trio.open_nursery() as nursery:

            async def hold(token: str) -> None:
                async with c.stream(
                    "POST", "/api/v1/chat/message", json={"message": "hang"}, headers=auth(token)
                ) as r:
                    async for text in r.aiter_text():
                        if "event: start" in text:
                            opened.release()
                        # stays here: the answer never comes

            for token in tokens:
                nursery.start_soon(hold, token)
            with trio.fail_after(60):
                for _ in range(streams):
                    await opened.acquire()
            after = rss_kib(pid)
            nursery.cancel_scope.cancel()
    return {"streams": streams, "rss_kib_per_stream": round((after - before) / streams, 1)}


def start(
    tmp: Path, fake_port: int, tls: tuple[str, str] | None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "N8N_"))}
    env.update(
        {
            "JWT_SECRET_KEY": "bench-jwt-secret-0123456789-abcdefghijklmnop",
            "SESSION_SECRET_KEY": "bench-session-secret-0123456789-abcdefghijk",
            "N8N_WEBHOOK_URL": f"http://127.0.0.1:{fake_port}/webhook/chat",
            "ALLOWED_ORIGINS": ORIGIN,
            "RATE_LIMIT_IP": HUGE,
            "RATE_LIMIT_SESSION": HUGE,
            "RATE_LIMIT_ORIGIN": HUGE,
            "RATE_LIMIT_SESSION_CREATE": HUGE,
            "N8N_MAX_CONNECTIONS": "20000",
            "N8N_TIMEOUT_SECONDS": "600",
            "BOT_ENFORCE": "false",
            "SPAM_ENFORCE": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    argv = [sys.executable, "-m", "quartproxy", "--bind", f"127.0.0.1:{port}"]
    if tls:
        argv += ["--certfile", tls[0], "--keyfile", tls[1]]
    log = open(tmp / f"proxy-{port}.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}"


async def ready(base: str, ctx: ssl.SSLContext) -> None:
    async with httpx.AsyncClient(verify=ctx, timeout=2) as c:
        for _ in range(300):  # bounded: 300 tries
            try:
                if (await c.get(base + "/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await trio.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-h2-"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "both.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    fake = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-m", "bench.fake_n8n", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert fake.stdout is not None
    fake_port = int(fake.stdout.readline().split()[1])
    out: dict[str, Any] = {"concurrency": args.concurrency, "duration_s": args.duration}
    try:
        for name, tls, http2 in (
            ("h2, 1 connection", True, True),
            (f"HTTP/1.1 + TLS, {args.concurrency} connections", True, False),
            (f"HTTP/1.1 plain, {args.concurrency} connections", False, False),
        ):
            proc, base = start(
                tmp, fake_port, (str(tmp / "cert.pem"), str(tmp / "key.pem")) if tls else None
            )
            try:
                await ready(base, ctx)
                row = await turns(
                    base, ctx, proc.pid, http2=http2, users=args.concurrency, duration=args.duration
                )
                row["idle"] = await idle(base, ctx, proc.pid, http2=http2, streams=args.idle)
                out[name] = row
                print(name, json.dumps(row), flush=True)
            finally:  # idle answers are still open: a second signal ends the drain at once
                proc.terminate()
                try:
                    proc.wait(2)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    proc.wait(30)
    finally:
        fake.terminate()
        fake.wait(10)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--concurrency", "-c", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--idle", type=int, default=90, help="idle streams (h2: under 100 per conn)")
    args = p.parse_args()
    result = trio.run(run, args)
    result["when"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    path = ROOT / "bench" / "results" / f"h2-{result['when']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    head = (
        "| transport | turns/s | ttfd p50 / p95 ms | proxy CPU s / 1000 turns | RSS / idle stream |"
    )
    print("\n" + head)
    print("|---|---|---|---|---|")
    for name, row in result.items():
        if isinstance(row, dict):
            print(
                f"| {name} | {row['turns_per_s']} | {row['ttfd_p50_ms']} / {row['ttfd_p95_ms']} "
                f"| {row['proxy_cpu_s_per_1000_turns']} | {row['idle']['rss_kib_per_stream']} KiB |"
            )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
