"""What one chat turn costs Redis, on one Redis and on a 3+3 Redis Cluster (docs/topologies.md).

    .venv/bin/python -m bench.redis_costs [--turns 20] [--words 20]

For each topology: a real redis-server (or six, clustered; tests/redis_server.py), the fake n8n
of the tests (streams "echo: <message>" word by word), one `python -m quartproxy` instance in
production mode. One session, one warm-up turn, then CONFIG RESETSTAT on every node and
`--turns` turns in a row over HTTP; then INFO commandstats (summed over the nodes) gives the
commands per turn, and MEMORY USAGE of every key gives the bytes per live session, per stored
conversation turn and per answer buffer. Writes bench/results/redis-costs.md.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import trio

from tests.integration.test_modes import auth, client, new_session
from tests.ops_support import server_env, server_process
from tests.redis_server import RedisCluster, RedisServer, cli
from tests.support import FakeN8n, served

OUT = Path(__file__).parent / "results" / "redis-costs.md"


def _primaries(ports: list[int]) -> list[int]:
    return [p for p in ports if cli(p, "ROLE").startswith("master")]


def _monitor_counts(paths: list[Path]) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """(commands sent by clients, commands run inside scripts) by name, from MONITOR logs."""
    sent: collections.Counter[str] = collections.Counter()
    inner: collections.Counter[str] = collections.Counter()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if '] "' not in line:
                continue
            source, _, rest = line.partition("] ")
            name = rest.split(" ", 1)[0].strip('"').lower()
            if name in ("monitor", "config", "info", "role", "memory", "keys", "cluster"):
                continue
            (inner if source.endswith(" lua") else sent)[name] += 1
    return sent, inner


def _usec(ports: list[int]) -> float:
    """Microseconds of command execution summed over the primaries since CONFIG RESETSTAT (the
    commands inside scripts are within their EVALSHA's time)."""
    total = 0.0
    for port in ports:
        for line in cli(port, "INFO", "commandstats").splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")) or (
                line.startswith("cmdstat_") and "|" not in line.split(":")[0]
            ):
                fields = dict(f.split("=") for f in line.split(":", 1)[1].split(","))
                name = line.split(":")[0].removeprefix("cmdstat_")
                if name in ("config", "info", "role", "monitor") or name in _SCRIPTED:
                    continue
                total += float(fields["usec"])
    return total


# commands that run inside scripts: their time is already in the script's
_SCRIPTED = frozenset(
    [
        "xadd",
        "pexpire",
        "hset",
        "hmget",
        "pttl",
        "sadd",
        "exists",
        "hget",
        "rpush",
        "del",
        "hdel",
        "xrange",
        "xrevrange",
        "lrange",
        "smembers",
        "hgetall",
        "zrangebyscore",
        "zrem",
    ]
)


def _memory(ports: list[int]) -> collections.Counter[str]:
    """Bytes by key kind ("sess", "hist", "buf", "bufm", "sid", "rl", ...) over all primaries."""
    by_kind: collections.Counter[str] = collections.Counter()
    for port in ports:
        if not cli(port, "ROLE").startswith("master"):
            continue
        for key in cli(port, "KEYS", "*").split():
            kind = key.split("}:", 1)[1].split(":")[0] if "}:" in key else key
            by_kind[kind] += int(cli(port, "MEMORY", "USAGE", key, "SAMPLES", "0") or 0)
            by_kind["#" + kind] += 1
    return by_kind


async def measure(url: str, ports: list[int], turns: int, words: int) -> dict[str, float]:
    fake = FakeN8n()
    async with served(fake) as base:
        env = server_env(
            f"{base}/webhook/chat",
            DEPLOYMENT_MODE="production",
            REDIS_URL=url,
            RATE_LIMIT_IP="1000000/second",
            RATE_LIMIT_SESSION="1000000/second",
            RATE_LIMIT_ORIGIN="1000000/second",
        )
        async with server_process(env) as proxy:
            session = await new_session(proxy.url)

            async def turn(i: int) -> None:
                text = " ".join(f"w{i}x{j}" for j in range(words))
                async with client(proxy.url) as c:
                    r = await c.post(
                        "/api/v1/chat/message", json={"message": text}, headers=auth(session)
                    )
                    await r.aread()
                assert r.status_code == 200 and "event: end" in r.text, r.text[-500:]

            await turn(-1)  # warm-up: scripts cached, pointers known
            # pass 1, without MONITOR: Redis CPU time spent in commands (INFO commandstats)
            for port in ports:
                cli(port, "CONFIG", "RESETSTAT")
            for i in range(turns):
                await turn(1000 + i)
            usec = _usec(_primaries(ports))
            # pass 2: what is sent, with MONITOR on every primary
            logs = []
            monitors = []
            for port in _primaries(ports):
                log = Path(tempfile.mkdtemp()) / f"monitor-{port}.log"
                logs.append(log)
                monitors.append(
                    await trio.lowlevel.open_process(
                        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "MONITOR"],
                        stdout=log.open("wb"),
                    )
                )
            try:
                # MONITOR's own first line says it is on
                for log in logs:
                    with trio.fail_after(10):
                        while not log.read_text():  # noqa: ASYNC110 (a file, no event)
                            await trio.sleep(0.05)  # polling interval
                for i in range(turns):
                    await turn(i)
                # every command is in the logs once a PING sent after them is
                for port, log in zip(_primaries(ports), logs, strict=True):
                    cli(port, "ECHO", "monitor-end")
                    with trio.fail_after(10):
                        while "monitor-end" not in log.read_text():  # noqa: ASYNC110
                            await trio.sleep(0.05)  # polling interval
            finally:
                for m in monitors:
                    m.terminate()
                    await m.wait()
            sent, inner = _monitor_counts(logs)
            mem = _memory(ports)
    out: dict[str, float] = {
        "Redis CPU per turn, µs (commands' own time, all primaries)": usec / turns,
        "commands sent per turn": sum(sent.values()) / turns,
        "commands run inside scripts per turn": sum(inner.values()) / turns,
    }
    for name, n in sorted(sent.items()):
        if name != "echo":
            out[f"sent: {name}"] = n / turns
    stored = 2 * turns + 1  # both passes and the warm-up
    out["bytes: session record"] = mem["sess"]
    out["bytes: history per turn (question + answer)"] = mem["hist"] / stored
    out["bytes: answer buffer (stream + meta + pointer) per answer"] = (
        mem["buf"] + mem["bufm"] + mem["sid"]
    ) / max(1, mem["#buf"])
    out["bytes: rate-limit and counter keys (all)"] = mem["rl"] + mem["ct"]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--words", type=int, default=20)
    a = ap.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        single = RedisServer(Path(tmp) / "single")
        single.start()
        try:
            rows["one Redis"] = await measure(single.url, [single.port], a.turns, a.words)
        finally:
            single.stop()
        cluster = RedisCluster(Path(tmp) / "cluster")
        try:
            cluster.start()
            ports = [n.port for n in cluster.nodes]
            rows["Redis Cluster 3+3"] = await measure(cluster.url, ports, a.turns, a.words)
        finally:
            cluster.stop()
    names = list(dict.fromkeys(k for r in rows.values() for k in r))
    lines = [
        f"# Redis cost of a turn ({a.turns} turns of a {a.words}-word streamed answer, "
        "one session, one instance; `python -m bench.redis_costs`)",
        "",
        "| | " + " | ".join(rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for name in names:
        cells = [f"{rows[t].get(name, 0):.1f}" for t in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    trio.run(main)
