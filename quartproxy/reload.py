"""DEBUG=true: watch the package, static/, hypercorn.toml and .env; on a change the supervisor
replaces its workers (supervisor.py), which import everything afresh.

Why the watching is here and not Hypercorn's `use_reloader`: Hypercorn watches the files of the
modules loaded in the supervising process, which never imports the app (it must stay free of
app state and metric files), so edits to the app were never seen.

Why a bounded mtime poll and not watchfiles/inotify: the tree is small (about a hundred files;
one scan is a few hundred stat calls, well under a millisecond of CPU every quarter second), it
is for development only, it needs no new dependency in the production image, and it behaves the
same on every platform and on bind mounts where inotify events do not arrive (Docker Desktop,
network filesystems), where watchfiles itself falls back to polling.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypercorn.config import Config

log = logging.getLogger("quartproxy.server")
POLL_SECONDS = 0.25
SETTLE_POLLS = 4  # an editor's save can be several writes: wait for a quiet poll, at most this many
Snapshot = dict[str, tuple[int, int, int]]
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".tmp", "~")


def watched_files(root: Path, cwd: Path) -> Iterator[Path]:
    """Every file whose change should restart the workers."""
    for tree in (root / "quartproxy", root / "static"):
        for directory, subdirs, files in os.walk(tree):
            subdirs[:] = [d for d in subdirs if d != "__pycache__" and not d.startswith(".")]
            for name in files:
                if not name.startswith(".") and not name.endswith(_SKIP_SUFFIXES):
                    yield Path(directory, name)
    yield from {root / "hypercorn.toml", cwd / "hypercorn.toml", cwd / ".env"}


def snapshot(paths: Iterator[Path]) -> Snapshot:
    out: Snapshot = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue  # gone (or not there yet): its absence is part of the snapshot
        out[str(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return out


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added, removed or changed (mtime, size, or replaced by an editor's rename)."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


@dataclass
class Reload:
    root: Path
    cwd: Path
    make_config: Callable[[], Config]
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, on_change: Callable[[list[str]], None]) -> None:
        self._thread = threading.Thread(
            target=self._watch, args=(on_change,), name="quartproxy-reload", daemon=True
        )
        self._thread.start()
        log.info(
            "DEBUG: reloading the workers when a file of %s changes",
            self.root,
            extra={"event": "reload_watching"},
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, on_change: Callable[[list[str]], None]) -> None:
        current = self._scan()
        while not self._stop.wait(POLL_SECONDS):
            seen = self._scan()
            changed = differences(current, seen)
            if not changed:
                continue
            for _ in range(SETTLE_POLLS):  # let a multi-write save finish
                if self._stop.wait(POLL_SECONDS):
                    return
                later = self._scan()
                if not differences(seen, later):
                    break
                changed = sorted(set(changed) | set(differences(seen, later)))
                seen = later
            current = seen
            on_change([self._short(p) for p in changed])

    def _scan(self) -> Snapshot:
        return snapshot(watched_files(self.root, self.cwd))

    def _short(self, path: str) -> str:
        for base in (self.root, self.cwd):
            try:
                return str(Path(path).relative_to(base))
            except ValueError:
                continue
        return path

    def config(self, old: Config) -> Config:
        """hypercorn.toml read again (its bind cannot change: the sockets are open); on an error,
        the previous settings, and one line saying why."""
        try:
            return self.make_config()
        except Exception as exc:
            log.error(
                "reload: cannot read the Hypercorn settings (%s); keeping the previous ones",
                exc,
                extra={"event": "reload_config_error"},
            )
            return old
