"""SQLite fails under the sqlite mode: the database locked by another process, the file
deleted under the running gateway, the disk full (RLIMIT_FSIZE, and a real tiny tmpfs where
this machine lets root mount one). Not here: a file made unwritable (root ignores the mode
bits, and a file system with the database open for writing refuses a read-only remount)."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.faults.harness import Gateway, Turn, auth, fake_n8n, gateway, tracebacks

pytestmark = pytest.mark.faults

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def lock_database(db: Path) -> subprocess.Popen[str]:
    """Another process holding the write lock (BEGIN EXCLUSIVE) until it reads a line."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
    return locker


def delete_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def sqlite_mode(path: Path, mode: str = "closed") -> dict[str, str]:
    return {"DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": str(path), "RATE_LIMIT_FAIL_MODE": mode}


def contract_outcome(turn: Turn) -> str:
    """What a visitor can see from one turn: a whole answer, or the contract's error."""
    if turn.status == 409:
        # fail open: an answer whose end could not be written (disk full) left its busy flag,
        # which not even a delete can clear on a full disk: busy until the flag expires
        assert turn.error == "busy", turn
        return "busy"
    if turn.status == 503:  # refused before the turn began (e.g. the rate-limit write)
        assert turn.error == "store_unavailable" and turn.retry_after, turn
        return "refused"
    assert turn.status == 200, turn
    final = turn.final
    if final["event"] == "end":
        assert final["data"]["text"] == turn.text, turn  # nothing lost or doubled
        return "answered"
    assert final["data"]["code"] == "store_unavailable", turn
    return "cut"


async def test_database_locked_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "qp.db"
    async with fake_n8n() as n8n, gateway(n8n.url, **sqlite_mode(db)) as gw:
        session = await gw.session()
        assert (await gw.turn(session, "one")).final["event"] == "end"
        locker = lock_database(db)
        try:
            with trio.fail_after(60):  # bounded by the store's busy timeout (10 s)
                turn = await gw.turn(session, "while locked")
                health = await gw.http.get("/health")
            assert (turn.status, turn.error) == (503, "store_unavailable")
            assert n8n.runs("while locked") == 0
            assert health.status_code in (200, 503)  # it answers (WAL readers are not blocked)
        finally:
            locker.communicate("\n", timeout=30)
        turn = await gw.turn(session, "unlocked")
        assert turn.final["event"] == "end" and turn.text == "echo: unlocked"
        assert tracebacks(gw.log()) == 0
        assert await gw.metric("quartproxy_store_errors_total", where="request") >= 1


async def test_database_file_deleted_under_the_gateway(tmp_path: Path) -> None:
    """Cannot be made safe in-process: SQLite goes on writing to the deleted file (visitors
    see nothing), and all of it is gone at the next start. /health turns 503 at once so the
    operator can act before a restart."""
    db = tmp_path / "qp.db"
    async with fake_n8n() as n8n, gateway(n8n.url, **sqlite_mode(db)) as gw:
        session = await gw.session()
        assert (await gw.turn(session, "one")).final["event"] == "end"
        assert (await gw.http.get("/health")).status_code == 200
        delete_database(db)
        health = await gw.http.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["store"]["status"] == "fail"
        assert str(tmp_path) not in health.text
        turn = await gw.turn(session, "two")
        assert turn.final["event"] == "end"  # still served from the open descriptor
        assert n8n.runs("two") == 1
        assert tracebacks(gw.log()) == 0


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


async def fill_until_refused(gw: Gateway, n8n: object, rounds: int = 300) -> dict[str, int]:
    """Turns with large messages until the store refuses; every outcome is a contract one."""
    outcomes = {"answered": 0, "refused": 0, "cut": 0, "busy": 0}
    session = await gw.session()
    for i in range(rounds):
        message = f"{i} " + " ".join(f"word{j}" for j in range(420))  # ~3.5 KB, not spam
        turn = await gw.turn(session, message)
        outcome = contract_outcome(turn)
        outcomes[outcome] += 1
        assert n8n.runs(message) <= 1  # type: ignore[attr-defined]
        if outcome != "answered":
            break
    return outcomes


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_disk_full_rlimit_fsize(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "qp.db"
    async with (
        fake_n8n() as n8n,
        gateway(
            n8n.url, preexec_fn=lambda: _limit_file_size(1_000_000), **sqlite_mode(db, mode)
        ) as gw,
    ):
        # A short first turn fits whatever the timing: a long one can fill the 1 MB WAL alone
        # (each streamed delta is a commit of its own), which made "answered >= 1" flaky.
        first = await gw.session()
        assert (await gw.turn(first, "kept")).final["event"] == "end"
        outcomes = await fill_until_refused(gw, n8n)
        if mode == "closed":
            assert outcomes["refused"] + outcomes["cut"] == 1, outcomes
            assert await gw.metric("quartproxy_store_errors_total", where="request") >= 1
        else:  # open: answered without busy flag, resume and history copies, or stuck busy
            assert outcomes["answered"] == 300 or outcomes["busy"] == 1, outcomes
            assert outcomes["refused"] == outcomes["cut"] == 0
        assert tracebacks(gw.log()) == 0
        assert (await gw.http.get("/health")).status_code in (200, 503)  # still answers


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: a real ENOSPC. Needs root (CI runs as root)."""
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_disk_full_on_a_tiny_file_system(tiny_fs: Path) -> None:
    db = tiny_fs / "qp.db"
    async with fake_n8n() as n8n, gateway(n8n.url, **sqlite_mode(db)) as gw:
        first = await gw.session()
        assert (await gw.turn(first, "kept")).final["event"] == "end"
        outcomes = await fill_until_refused(gw, n8n)
        assert outcomes["refused"] + outcomes["cut"] == 1
        # the history written before the disk filled is still there
        r = await gw.http.get(f"/api/v1/chat/history/{first['session_id']}", headers=auth(first))
        assert r.status_code in (200, 503)
        if r.status_code == 200:
            assert [m["text"] for m in r.json()["messages"]] == ["kept", "echo: kept"]
        assert tracebacks(gw.log()) == 0
