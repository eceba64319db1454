"""A real Prometheus (Debian's package) for tests: its own config, data directory and free
loopback port; scrapes every second and evaluates the given rule files every second."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml

from tests.support import free_port

POLL = 0.25  # between polls of a condition (bounded by each caller's deadline)


@dataclass
class Prometheus:
    url: str
    client: httpx.AsyncClient

    async def query(self, expr: str) -> list[dict[str, Any]]:
        r = await self.client.get("/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {r.text}"
        return list(body["data"]["result"])

    async def rules(self) -> list[dict[str, Any]]:
        r = await self.client.get("/api/v1/rules")
        r.raise_for_status()
        return [rule for g in r.json()["data"]["groups"] for rule in g["rules"]]


@asynccontextmanager
async def prometheus(
    tmp: Path, target: str, *, rule_files: list[Path], token: str | None = None
) -> AsyncIterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found (apt-get install prometheus; .ci/setup-debian.sh)")
    job: dict[str, Any] = {
        "job_name": "quartproxy",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [target], "labels": {"site": "test"}}],
    }
    if token:
        (tmp / "token").write_text(token)
        job["authorization"] = {"type": "Bearer", "credentials_file": str(tmp / "token")}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [job],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")  # closed right after the spawn
    proc = await trio.lowlevel.open_process(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()  # the process has its own copy
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            with trio.fail_after(30):
                while True:
                    if proc.returncode is not None:
                        pytest.fail("prometheus exited:\n" + (tmp / "prometheus.log").read_text())
                    try:
                        if (await client.get("/-/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(POLL)
            yield Prometheus(f"http://127.0.0.1:{port}", client)
    finally:
        proc.terminate()
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
