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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        persistent: bool = False,
        extra: Sequence[str] = (),
        sentinel: bool = False,
    ) -> None:
        self.workdir = workdir
        self.persistent = persistent  # AOF in workdir: data survives stop()/start(), as in prod
        self.port = port or free_port()
        self.extra = list(extra)  # more redis-server options (cluster, replicaof)
        self.sentinel = sentinel  # run as a Sentinel with `sentinel_conf` as its config
        self.sentinel_conf = ""
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
        head = [exe]
        if self.sentinel:
            conf = self.workdir / "sentinel.cfg"
            conf.write_text(self.sentinel_conf)
            head = [exe, str(conf), "--sentinel"]
        self.proc = subprocess.Popen(
            [
                *head,
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
                *self.extra,
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
        ready = b"Sentinel ID is" if self.sentinel else b"Ready to accept connections"
        while ready not in seen:
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


def _cli(*args: str, timeout: float = 30.0) -> str:
    exe = shutil.which("redis-cli")
    assert exe is not None, "redis-cli is missing (Debian package redis-tools/redis-server)"
    done = subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def cli(port: int, *args: str) -> str:
    """One command to the server on `port` (127.0.0.1), its raw reply text."""
    return _cli("-h", "127.0.0.1", "-p", str(port), *args).strip()


def poll(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Until `condition()` holds (checked every 0.1 s), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.1)  # a poll interval, not a synchronisation


class RedisCluster:
    """3 primaries + 3 replicas (`redis-cli --cluster create … --cluster-replicas 1`)."""

    def __init__(self, workdir: Path, size: int = 6) -> None:
        self.nodes = [
            RedisServer(
                workdir / f"n{i}",
                extra=[
                    "--cluster-enabled",
                    "yes",
                    # the bus on a free port of its own (the default, port + 10000, may be taken
                    # or above 65535)
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-config-file",
                    "cluster-nodes.cfg",
                    "--cluster-node-timeout",
                    "1500",
                    # a replica may be promoted whatever its lag (tests kill primaries at will)
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        _cli(
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
            timeout=60,
        )
        poll(self.healthy, "the cluster to be ok on every node")

    def healthy(self) -> bool:
        return all(
            "cluster_state:ok" in cli(n.port, "CLUSTER", "INFO")
            for n in self.nodes
            if n.proc is not None
        )

    def flush(self) -> None:
        """Empty every primary (the gateway's keys have no per-test prefix)."""
        for n in self.live():
            if cli(n.port, "ROLE").startswith("master"):
                cli(n.port, "FLUSHALL")

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None]

    def primary_of(self, key: str) -> RedisServer:
        """The live node that serves `key`'s slot as a primary (as a live node sees it)."""
        first = self.live()[0]
        slot = int(cli(first.port, "CLUSTER", "KEYSLOT", key))
        by_port = {n.port: n for n in self.live()}
        for line in cli(first.port, "CLUSTER", "NODES").splitlines():
            f = line.split()
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            if "master" not in f[2] or "fail" in f[2] or port not in by_port:
                continue
            for r in f[8:]:
                lo, _, hi = r.partition("-")
                if not r.startswith("[") and int(lo) <= slot <= int(hi or lo):
                    return by_port[port]
        raise AssertionError(f"no live primary serves slot {slot}")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        myid = cli(primary.port, "CLUSTER", "MYID")
        for n in self.live():
            for line in cli(n.port, "CLUSTER", "NODES").splitlines():
                f = line.split()
                if "myself" in f[2] and "slave" in f[2] and f[3] == myid:
                    return n
        raise AssertionError("the primary has no replica")

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


class RedisSentinelSet:
    """1 primary, 1 replica, 3 sentinels (quorum 2) watching service `qp`."""

    service = "qp"

    def __init__(self, workdir: Path) -> None:
        self.primary = RedisServer(workdir / "primary")
        self.replica = RedisServer(
            workdir / "replica", extra=["--replicaof", "127.0.0.1", str(self.primary.port)]
        )
        self.sentinels = [RedisServer(workdir / f"s{i}", sentinel=True) for i in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        poll(
            lambda: "master_link_status:up" in cli(self.replica.port, "INFO", "replication"),
            "the replica to sync",
        )
        for s in self.sentinels:
            s.sentinel_conf = (
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            s.start()
        poll(
            lambda: all("sentinels=3" in cli(s.port, "INFO", "sentinel") for s in self.sentinels),
            "the sentinels to see each other",
        )
        poll(
            lambda: all("slaves=1" in cli(s.port, "INFO", "sentinel") for s in self.sentinels),
            "the sentinels to see the replica",
        )

    def primary_port(self) -> int:
        reply = cli(
            self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
        ).split()
        return int(reply[1])

    def stop(self) -> None:
        for s in (*self.sentinels, self.replica, self.primary):
            s.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    sentinels = RedisSentinelSet(tmp_path_factory.mktemp("redis-sentinel"))
    try:
        sentinels.start()
        yield sentinels
    finally:
        sentinels.stop()
