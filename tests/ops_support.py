"""Support for operations tests: reading /metrics, and the proxy as a real server process
(`python -m quartproxy`, or plain Hypercorn) on a socket the test bound itself.

The test binds and listens on 127.0.0.1:0 and hands the socket to the server (`fd://N`), so
clients can connect at once: the kernel queues them until the server accepts, and nothing has
to wait for a "ready" line. Server logs (JSON, one object a line) are read as they come;
`wait_log` blocks until a matching line arrives.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.support import FINGERPRINT, JWT_SECRET, ORIGIN, SESSION_SECRET

ROOT = Path(__file__).resolve().parent.parent
Sample = tuple[str, frozenset[tuple[str, str]]]


def parse_metrics(text: str) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Sample, float]:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse_metrics(r.text)


def value(metrics: Mapping[Sample, float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def delta(
    before: Mapping[Sample, float], after: Mapping[Sample, float], name: str, **labels: str
) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def server_env(n8n_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMETHEUS_", "DEBUG", "LOG_", "RATE_LIMIT"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "JWT_SECRET_KEY": JWT_SECRET,
            "SESSION_SECRET_KEY": SESSION_SECRET,
            "N8N_WEBHOOK_URL": n8n_url,
            "ALLOWED_ORIGINS": ORIGIN,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    proc: trio.Process
    url: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    async def wait_log(
        self, match: Callable[[dict[str, Any]], bool], count: int = 1
    ) -> list[dict[str, Any]]:
        """Lines matching `match`, once there are `count` of them (or the process ended)."""
        while True:
            found = [line for line in self.lines if match(line)]
            if len(found) >= count:
                return found
            if self.proc.returncode is not None and self._changed.is_set():
                raise AssertionError(f"server exited; log:\n{''.join(self.raw)[-4000:]}")
            self._changed = trio.Event()
            await self._changed.wait()

    async def _read(self, stream: Any) -> None:
        buffer = b""
        async for data in stream:
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                text = raw.decode(errors="replace")
                self.raw.append(text + "\n")
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = {"msg": text}
                self.lines.append(obj if isinstance(obj, dict) else {"msg": text})
            self._changed.set()
        await self.proc.wait()
        self._changed.set()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@asynccontextmanager
async def server_process(
    env: dict[str, str],
    *,
    workers: int = 1,
    graceful: float = 30.0,
    cwd: Path | None = None,
    stock_hypercorn: bool = False,
    args: Sequence[str] = (),
    sock: socket.socket | None = None,
) -> AsyncIterator[ServerProcess]:
    """`python -m quartproxy` (or plain `python -m hypercorn` with `stock_hypercorn`) serving on
    a socket bound here, or on `sock`, which the caller keeps open: connections arriving while
    no process serves it wait in its backlog for the next one (a restart on the same port).
    `args` are added to the command line (`--certfile`, `--keyfile`: the url is then https)."""
    own = sock is None
    sock = sock or listening_socket()
    fd = sock.fileno()
    port = sock.getsockname()[1]
    if stock_hypercorn:
        argv = [
            sys.executable,
            "-m",
            "hypercorn",
            "-k",
            "trio",
            "-w",
            str(workers),
            "--graceful-timeout",
            str(graceful),
            "--bind",
            f"fd://{fd}",
            "--error-logfile",
            "-",
            "quartproxy:app",
        ]
    else:
        argv = [
            sys.executable,
            "-m",
            "quartproxy",
            "--bind",
            f"fd://{fd}",
            "--workers",
            str(workers),
            "--graceful-timeout",
            str(graceful),
        ]
    argv += list(args)
    proc = await trio.lowlevel.open_process(
        argv,
        env=env,
        cwd=str(cwd or ROOT),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(fd,),
    )
    if own:
        sock.close()  # the server holds it now; when it exits, connections are refused
    scheme = "https" if "--certfile" in args else "http"
    server = ServerProcess(proc, f"{scheme}://127.0.0.1:{port}")
    assert proc.stdout is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server._read, proc.stdout)
        try:
            yield server
        finally:
            if proc.returncode is None:
                _kill_children(proc.pid)  # before the parent: orphans would be reparented
                proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()


def _kill_children(pid: int) -> None:
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return
    for child in out.split():
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(child), signal.SIGKILL)


def worker_pids(pid: int) -> set[int]:
    """The serving workers a supervisor (`python -m quartproxy`) has spawned right now."""
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=", "-o", "args=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line}


def serving_pid(server_port: int, client_port: int) -> int:
    """The process holding the server side of one established connection: the worker that
    accepted it (workers share the listening socket, accepted sockets are their own)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established",
         f"( sport = :{server_port} and dport = :{client_port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pids = {int(p) for p in re.findall(r"pid=(\d+)", out)}
    assert len(pids) == 1, out
    return pids.pop()


# -- a visitor of a real server process: its session and the headers of its requests --------


def headers(session: dict[str, str]) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Authorization": f"Bearer {session['token']}",
        "X-Chat-Fingerprint": FINGERPRINT,
    }


async def new_session(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post(
        "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers={"Origin": ORIGIN}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())
