"""Several workers open one new SQLite file at the same moment (`python -m quartproxy -w N` in
sqlite mode, first start): every one of them opens it. SQLite answers a connection switching
the file to WAL while another does "database is locked" at once, past busy_timeout; a worker
that gave up there died at start-up and its accepted connections were reset (seen in CI).
A race: many fresh files, each opened by a dozen stores at once (one store per thread, each
with its own trio run and connection, as workers have); without the retry about one file in
thirty saw the error here."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from quartproxy.store.sqlite import SqliteStore

OPENERS = 12
FILES = 120


def test_stores_opening_one_new_file_at_once_all_open_it(tmp_path: Path) -> None:
    failures: list[str] = []

    def open_one(path: str, together: threading.Barrier) -> None:
        async def main() -> None:
            async with SqliteStore(path):
                pass

        together.wait()
        try:
            trio.run(main)
        except Exception as exc:
            failures.append(f"{path}: {type(exc).__name__}: {exc}")

    for n in range(FILES):
        path, together = str(tmp_path / f"q{n}.db"), threading.Barrier(OPENERS)
        threads = [threading.Thread(target=open_one, args=(path, together)) for _ in range(OPENERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    assert failures == []
