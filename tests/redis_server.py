"""A real redis-server on a free loopback port, for tests (no persistence, own directory).

Missing redis-server is a test failure, not a skip: run `.ci/setup-redis.sh` (Debian package
redis-server). The server never starts a system service and never touches another port.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.persistent = persistent  # AOF in workdir: data survives stop()/start(), as in prod
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail(
                "redis-server is not installed: the Redis store tests need a real server. "
                "Install it with .ci/setup-redis.sh (Debian package redis-server).",
                pytrace=False,
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--dir",
                str(self.workdir),
                "--loglevel",
                "notice",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
        )
        assert self.proc.stdout is not None
        # Readiness is the server's own log line, not a sleep.
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        seen = b""
        while b"Ready to accept connections" not in seen:
            left = deadline - time.monotonic()
            chunk = os.read(self.proc.stdout.fileno(), 65536) if sel.select(max(0, left)) else b""
            if not chunk:
                self.stop()
                pytest.fail(
                    f"redis-server did not start: {seen.decode(errors='replace')[-2000:]}",
                    pytrace=False,
                )
            seen += chunk
        sel.close()
        # Keep draining its log so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    @staticmethod
    def _drain(stream: IO[bytes]) -> None:
        while stream.read(65536):
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
