"""The proxy as a real `hypercorn -k trio` subprocess (several workers, kill -9, restarts).

Readiness is Hypercorn's own "Running on" log line from every worker, never a sleep. The access
log carries each worker's pid, so a test can tell which worker served which request.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from tests.support import JWT_SECRET, ORIGIN, SESSION_SECRET

ROOT = Path(__file__).resolve().parent.parent
ACCESS = "ACCESS pid=%(p)s %(m)s %(U)s %(s)s from=%(h)s"


@dataclass
class ProxyProcess:
    url: str
    proc: trio.Process
    output: bytearray = field(default_factory=bytearray)
    changed: list[trio.Event] = field(default_factory=lambda: [trio.Event()])

    def access(self) -> list[tuple[str, str, str, str]]:
        """(pid, method, path, status) of every finished request so far."""
        pattern = r"ACCESS pid=<?(\d+)>? (\S+) (\S+) (\d+)"
        return re.findall(pattern, self.output.decode(errors="replace"))

    async def wait_access(self, method: str, path: str, count: int = 1) -> None:
        """Until `count` requests `method path` have finished (their access lines are written
        after the response, so they can trail what the client saw)."""
        while sum(1 for _, m, p, _ in self.access() if m == method and p == path) < count:
            await self.changed[0].wait()

    async def worker_of(self, client_addr: tuple[str, int]) -> str:
        """The pid of the worker that answered a request from this client address."""
        pattern = (
            rf"ACCESS pid=<?(\d+)>? \S+ \S+ \d+ from={re.escape(client_addr[0])}:{client_addr[1]}\b"
        )
        while not (found := re.findall(pattern, self.output.decode(errors="replace"))):
            await self.changed[0].wait()
        return str(found[0])

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)


@asynccontextmanager
async def proxy_process(
    n8n_url: str,
    workers: int = 1,
    *,
    preexec_fn: Callable[[], None] | None = None,  # e.g. a resource limit (tests/faults)
    **env: str,
) -> AsyncIterator[ProxyProcess]:
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "JWT_SECRET_KEY": JWT_SECRET,
        "SESSION_SECRET_KEY": SESSION_SECRET,
        "N8N_WEBHOOK_URL": n8n_url,
        "ALLOWED_ORIGINS": ORIGIN,
        "LOG_FORMAT": "text",
        **env,
    }
    cmd = [
        sys.executable, "-m", "hypercorn", "-k", "trio", "-w", str(workers),
        "-b", "127.0.0.1:0", "--error-logfile", "-", "--access-logfile", "-",
        "--access-logformat", ACCESS, "--graceful-timeout", "2",
        "quartproxy:app",
    ]  # fmt: skip
    proc = await trio.lowlevel.open_process(
        cmd, env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill9() reaches master and workers
        preexec_fn=preexec_fn,
    )  # fmt: skip
    output = bytearray()
    changed = [trio.Event()]
    ready = trio.Event()
    port: list[str] = []

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.receive_some():
            output.extend(chunk)
            changed[0].set()
            changed[0] = trio.Event()
            found = re.findall(rb"Running on http://127\.0\.0\.1:(\d+)", output)
            if len(found) >= max(1, workers) and not ready.is_set():
                port.append(found[0].decode())
                ready.set()
        ready.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump)
            with trio.fail_after(60):
                await ready.wait()
            if not port:
                raise AssertionError(f"the proxy did not start:\n{output.decode()[-3000:]}")
            try:
                yield ProxyProcess(f"http://127.0.0.1:{port[0]}", proc, output, changed)
            except BaseException:
                # The server's own log says what it was doing when a test failed inside.
                print(f"--- proxy output (port {port[0]}) ---\n{output.decode(errors='replace')}")
                raise
            finally:
                if proc.returncode is None:
                    with trio.CancelScope(shield=True):
                        proc.terminate()
                        with trio.move_on_after(15):
                            await proc.wait()
                nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await proc.wait()
