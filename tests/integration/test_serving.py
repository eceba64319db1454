"""The two documented ways to serve the gateway start a working server from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.raw_http import h2c_attempt
from tests.support import JWT_SECRET, ORIGIN, SESSION_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]


COMMANDS = pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "hypercorn", "-c", "hypercorn.toml", "quartproxy:app"],
        [sys.executable, "-m", "quartproxy"],
    ],
    ids=["hypercorn", "python-m"],
)


@asynccontextmanager
async def serving(command: list[str]) -> AsyncIterator[str]:
    """The command running from the repository (so hypercorn.toml is the shipped one); yields
    its base URL once Hypercorn says it listens."""
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
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@COMMANDS
async def test_documented_commands_serve_the_app(command: list[str]) -> None:
    async with serving(command) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/health")
    # n8n is not there: the gateway is up and says which check fails
    assert r.status_code == 503
    assert r.json()["checks"]["n8n"]["status"] == "fail"
    assert r.json()["checks"]["store"]["status"] == "ok"


@COMMANDS
async def test_documented_commands_bound_websocket_messages_and_refuse_h2c(
    command: list[str],
) -> None:
    """What the shipped hypercorn.toml and `python -m quartproxy` must both set: WebSocket
    messages bounded by MAX_BODY_BYTES (1009 while reading, Hypercorn's default is 16 MiB),
    and the guards installed in the serving worker (no h2c switch)."""
    async with serving(command) as url:
        ws_url = url.replace("http://", "ws://") + "/api/v1/chat/ws"
        async with open_websocket_url(ws_url, extra_headers=[(b"Origin", ORIGIN.encode())]) as ws:
            await ws.send_message("x" * (64 * 1024 + 1))
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
        assert closed.value.reason.code == 1009
        outcome = await h2c_attempt(url, "/health", [("GET", "/metrics", [])])
        assert outcome.status != 101
