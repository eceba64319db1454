"""What only the durable backends promise: SQLite across processes and restarts, Redis down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from quartproxy.core.limits import Rate
from quartproxy.store import HistoryEntry, SessionRecord, StoreUnavailable
from quartproxy.store.redis import RedisStore
from quartproxy.store.sqlite import SqliteStore
from tests.redis_server import RedisServer

NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]

HAMMER = """
import sys, trio
from quartproxy.core.limits import Rate
from quartproxy.store.sqlite import SqliteStore

async def main(path, n):
    allowed = 0
    async with SqliteStore(path) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # start gate: all processes hammer at the same moment
        async def one():
            nonlocal allowed
            decision = await store.hit("shared", Rate(37, 3600), 1_700_000_000.0)
            allowed += decision.allowed  # read `allowed` after the await, not before
            await store.incr("count", 3600, 1_700_000_000.0)
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)
    print(allowed)

trio.run(main, sys.argv[1], int(sys.argv[2]))
"""


async def test_sqlite_several_processes_on_one_file_count_exactly(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SqliteStore(path):
        pass  # create the schema once, as the app's first start would
    procs = [
        await trio.lowlevel.open_process(
            [sys.executable, "-c", HAMMER, str(path), "300"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    outputs: list[bytes] = []

    async def read_all(proc: trio.Process) -> None:
        assert proc.stdout is not None
        data = b""
        while chunk := await proc.stdout.receive_some():
            data += chunk
        outputs.append(data)
        assert await proc.wait() == 0, data

    try:
        with trio.fail_after(120):
            for proc in procs:  # each has opened the store and waits at the gate
                assert proc.stdout is not None
                line = b""
                while not line.endswith(b"\n"):
                    chunk = await proc.stdout.receive_some(1)
                    assert chunk, "the hammer process died before the gate"
                    line += chunk
                assert line == b"ready\n"
            for proc in procs:
                assert proc.stdin is not None
                await proc.stdin.send_all(b"go\n")
            async with trio.open_nursery() as nursery:
                for proc in procs:
                    nursery.start_soon(read_all, proc)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
    assert sum(int(out) for out in outputs) == 37  # 1200 hits from 4 processes, one limit
    async with SqliteStore(path) as store:
        assert await store.incr("count", 3600, NOW) == 1201


async def test_sqlite_keeps_limits_history_sessions_and_buffers_across_restarts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "restart.db"
    rate = Rate(3, 3600)
    async with SqliteStore(path) as store:
        for _ in range(3):
            assert (await store.hit("ip", rate, NOW)).allowed
        await store.put_session(SessionRecord("s", "https://a.example", "h", NOW, NOW + 60, {}))
        await store.append_history("s", [HistoryEntry("m", "user", "hello", NOW)])
        await store.buffer_append("m", "s", [(0, {"event": "start"})], 300, NOW)
    async with SqliteStore(path) as store:
        assert not (await store.hit("ip", rate, NOW + 1)).allowed
        assert await store.get_session("s", NOW + 1) is not None
        assert [e.text for e in await store.history("s")] == ["hello"]
        part = await store.buffer_read("m", -1, NOW + 1)
        assert part is not None and part.events == [(0, {"event": "start"})]


async def test_sqlite_file_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    # A database written before history entries could be marked incomplete (and before the
    # worker-lease tables): it opens, keeps its rows, and takes the new writes.
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,"
            " message_id TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,"
            " created_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO history (session_id, message_id, role, text, created_at) "
            "VALUES ('s', 'm', 'user', 'old question', ?)",
            (NOW,),
        )
    conn.close()
    half = HistoryEntry("m", "assistant", "half", NOW + 1, incomplete=True)
    # and before messages could carry files
    attached = HistoryEntry("n", "user", "see", NOW + 2, files=(("a.png", "image/png", 9),))
    async with SqliteStore(path) as store:
        await store.append_history("s", [half, attached])
        old = HistoryEntry("m", "user", "old question", NOW)
        assert await store.history("s") == [old, half, attached]
        assert await store.renew_worker("w", [], 6, NOW) == []
    async with SqliteStore(path) as store:  # and opens again (the upgrade ran once)
        assert (await store.history("s"))[-2].incomplete


async def test_sqlite_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        async with SqliteStore(tmp_path / "no-such-dir" / "x.db"):
            pass


async def test_sqlite_failing_batch_writes_none_of_its_events(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    async with SqliteStore(path) as store:
        await store.buffer_append("m", "s", [(0, {"n": 0})], 300, NOW)
    async with SqliteStore(path) as store:
        conn = store._conn
        assert conn is not None
        # the database refuses writes: each call fails and its transaction keeps nothing
        conn.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreUnavailable):
            await store.buffer_append("m", "s", [(1, {"n": 1}), (2, {"n": 2})], 300, NOW)
        with pytest.raises(StoreUnavailable):
            await store.hit_many([("a", Rate(1, 60)), ("b", Rate(1, 60))], NOW)
        with pytest.raises(StoreUnavailable):
            await store.incr_many([("c", 60), ("d", 60)], NOW)
        conn.execute("PRAGMA query_only = OFF")
        part = await store.buffer_read("m", -1, NOW)
        assert part is not None and part.events == [(0, {"n": 0})]
        await store.buffer_append("m", "s", [(1, {"n": 1}), (2, {"n": 2})], 300, NOW)
        part = await store.buffer_read("m", 0, NOW)
        assert part is not None and [seq for seq, _ in part.events] == [1, 2]
        assert await store.incr_many([("c", 60), ("d", 60)], NOW) == [1, 1]


async def test_redis_down_is_store_unavailable_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with RedisStore(server.url, connect_timeout=1, stream_timeout=2) as store:
            await store.ping()
            assert (await store.hit("k", Rate(1, 60), NOW)).allowed
            server.stop()
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.hit("k", Rate(1, 60), NOW)
            with pytest.raises(StoreUnavailable):
                await store.buffer_read("m", -1, NOW)
            with pytest.raises(StoreUnavailable):
                await store.buffer_append("m", "s", [(0, {"n": 0}), (1, {"n": 1})], 300, NOW)
            with pytest.raises(StoreUnavailable):
                await store.hit_many([("k", Rate(1, 60)), ("k2", Rate(1, 60))], NOW)
            with pytest.raises(StoreUnavailable):
                await store.incr_many([("c", 60), ("d", 60)], NOW)
            # the same port again: the same client reconnects without a restart of the app
            server.start()
            await store.ping()
            assert (await store.hit("k2", Rate(1, 60), NOW)).allowed
    finally:
        server.stop()


async def test_redis_unreachable_at_start_does_not_prevent_opening(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")  # never started: nothing listens on its port
    async with RedisStore(server.url, connect_timeout=1) as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()
