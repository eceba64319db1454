"""The two documented ways to serve the gateway start a working server from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.support import JWT_SECRET, ORIGIN, SESSION_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "hypercorn", "-c", "hypercorn.toml", "quartproxy:app"],
        [sys.executable, "-m", "quartproxy"],
    ],
    ids=["hypercorn", "python-m"],
)
async def test_documented_commands_serve_the_app(command: list[str], tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "JWT_SECRET_KEY": JWT_SECRET,
        "SESSION_SECRET_KEY": SESSION_SECRET,
        "N8N_WEBHOOK_URL": "http://127.0.0.1:9/webhook/chat",
        "ALLOWED_ORIGINS": ORIGIN,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child server, read from a thread below
        [*command, "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen: list[bytes] = []
        with trio.fail_after(60):  # Hypercorn says "Running on ..." once it listens
            while not any(b"Running on" in line for line in seen):
                line = await trio.to_thread.run_sync(proc.stdout.readline)
                assert line, b"".join(seen).decode()
                seen.append(line)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.get("/health")
        # n8n is not there: the gateway is up and says which check fails
        assert r.status_code == 503
        assert r.json()["checks"]["n8n"]["status"] == "fail"
        assert r.json()["checks"]["store"]["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
