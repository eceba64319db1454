"""The process that owns the listening sockets and keeps `workers` spawned trio workers serving.

Like gunicorn's arbiter or nginx's master, and unlike Hypercorn's own `run` (which stops every
worker when one exits, cutting their open streams without a final event):
- a worker that dies (any exit not asked for: a signal, a non-zero code) is replaced at once,
  with a back-off when workers keep dying at start, and a give-up after too many early deaths
  in a row (core/restarts.py states the rule). The other workers are not touched, and the
  sockets stay open here throughout, so the kernel queues new connections meanwhile;
- a worker that exits cleanly on its own (Hypercorn's `max_requests`) is replaced too;
- SIGTERM/SIGINT: every worker drains (lifecycle.py) and the supervisor waits for all of them;
  a second signal is forwarded and cuts the drains short;
- DEBUG reload (reload.py): a file change replaces every worker (a short drain for the old ones).

Each replacement is counted in shared memory (supervision.py, shown by /health and /metrics) and
logged in one line. The supervisor tells prometheus-client when a worker is gone, so live gauges
(open streams, turns in flight) stop counting it; it never creates metric files of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

from hypercorn.config import Config

from . import supervision
from .core.restarts import RestartPolicy, on_death, survived
from .server import worker

if TYPE_CHECKING:
    from .reload import Reload

log = logging.getLogger("quartproxy.server")
EXTRA_SHUTDOWN_SECONDS = 15.0  # on top of drain + Hypercorn's graceful window
RELOAD_DRAIN_SECONDS = 2.0  # DEBUG reload: running answers of the old workers get this long
TICK = 1.0  # longest sleep of the loop when nothing happens


@dataclass(eq=False)
class Worker:
    process: BaseProcess
    started: float
    ready: Connection | None  # read end of the worker's "I am ready" pipe, until it spoke
    replaces: int | None = None  # pid of the dead worker this one replaces
    ready_at: float | None = None  # when its app had started
    asked: bool = False  # the supervisor asked it to stop: its exit is not a death
    hurry_at: float | None = None
    kill_at: float | None = None


@dataclass
class State:
    streak: int = 0  # early deaths in a row (core/restarts.py)
    last_early_death: float = 0.0  # a worker started after it and still up ends the streak
    due: list[tuple[float, int | None]] = field(default_factory=list)  # (when, replaces pid)
    exitcode: int = 0


class Supervisor:
    def __init__(self, config: Config, *, reload: Reload | None = None) -> None:
        self.config = config
        self.reload = reload
        # DEBUG: never give up (a broken edit waits for the next change), and a short back-off
        # cap so a fix made while waiting is picked up by the watcher, not by the timer.
        self.policy = (
            RestartPolicy(give_up_after=None, max_delay=5.0) if reload else RestartPolicy()
        )
        self.ctx = get_context("spawn")
        self.sockets = config.create_sockets()
        # One event for all (set on shutdown) rather than one per worker: each multiprocessing
        # Event is five named semaphores. A single worker is stopped with signals (reload).
        self.shutdown = self.ctx.Event()
        self.restarts: Any = self.ctx.Array("q", len(supervision.REASONS))
        self.workers: list[Worker] = []
        self.state = State()
        self.signals = 0
        self.changed: list[str] = []  # files the watcher saw change, not yet acted on
        self.lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        # Workers inherit SIGINT ignored (a terminal's Ctrl-C reaches the whole process group;
        # the workers listen for it themselves while they serve).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _ in range(self.config.workers):
            self.spawn()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_signal)
        signal.signal(signal.SIGHUP, self.on_hangup)
        if self.reload is not None:
            self.reload.start(self.on_change)
        try:
            while not self.signals and not self.state.exitcode:
                self.step()
            return self.shut_down()
        finally:
            if self.reload is not None:
                self.reload.stop()
            for sock in self.sockets.secure_sockets + self.sockets.insecure_sockets:
                sock.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def step(self) -> None:
        now = time.monotonic()
        deadlines = [when for when, _ in self.state.due]
        deadlines += [w.hurry_at for w in self.workers if w.hurry_at is not None]
        deadlines += [w.kill_at for w in self.workers if w.kill_at is not None]
        timeout = min([TICK, *(max(0.0, d - now) for d in deadlines)])
        self.reap(timeout)
        now = time.monotonic()
        with self.lock:
            changed, self.changed = self.changed, []
        if changed:
            self.replace_all(changed)
        # Only a worker started after the last early death counts: an old healthy worker next
        # to one that keeps failing must not reset the streak (that would restart it forever).
        if self.state.streak and any(
            not w.asked
            and w.started > self.state.last_early_death
            and survived(self.policy, None if w.ready_at is None else now - w.ready_at)
            for w in self.workers
        ):
            self.state.streak = 0
        for item in [d for d in self.state.due if d[0] <= now]:
            self.state.due.remove(item)
            new = self.spawn(replaces=item[1])
            if item[1] is not None:
                log.info(
                    "worker %d started, replacing worker %d after the back-off",
                    new.process.pid,
                    item[1],
                    extra={"event": "worker_replaced", "pid": new.process.pid, "old": item[1]},
                )
        self.enforce_deadlines(now)

    def reap(self, timeout: float) -> None:
        pipes = [w.ready for w in self.workers if w.ready is not None]
        wait([w.process.sentinel for w in self.workers] + pipes + [self._wake_r], timeout=timeout)
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        for w in self.workers:
            if w.ready is not None and w.ready.poll():
                with contextlib.suppress(EOFError, OSError):  # EOF: it died before it was ready
                    w.ready.recv_bytes()
                    w.ready_at = time.monotonic()
                w.ready.close()
                w.ready = None
        for w in [w for w in self.workers if w.process.exitcode is not None]:
            w.process.join()
            self.workers.remove(w)
            _forget_metrics(w.process.pid)
            self.exited(w)

    def exited(self, w: Worker) -> None:
        pid, code = w.process.pid, w.process.exitcode
        assert pid is not None and code is not None
        if w.asked:  # a reload's old worker (logged quietly), or a shutdown
            log.log(
                logging.DEBUG if self.signals == 0 else logging.INFO,
                "worker %d exited with %s; %d left",
                pid,
                code,
                len(self.workers),
                extra={"event": "worker_exited", "pid": pid, "exitcode": code},
            )
            if code != 0 and self.signals:
                self.state.exitcode = 1
            return
        if code == 0:  # Hypercorn's max_requests: a planned recycle
            supervision.count(self.restarts, "recycled")
            new = self.spawn(replaces=pid)
            log.info(
                "worker %d exited after max_requests; replaced by worker %d",
                pid,
                new.process.pid,
                extra={"event": "worker_recycled", "pid": pid, "new_pid": new.process.pid},
            )
            return
        now = time.monotonic()
        age = now - w.started
        up = None if w.ready_at is None else now - w.ready_at
        decision = on_death(self.policy, self.state.streak, up)
        self.state.streak = decision.streak
        if decision.streak:
            self.state.last_early_death = now
        died = f"worker {pid} died ({describe_exit(code)}) {age:.1f} s after its start" + (
            "" if up is not None else ", never ready"
        )
        extra: dict[str, Any] = {
            "event": "worker_died",
            "pid": pid,
            "exitcode": code,
            "uptime": round(age, 3),
            "ready": up is not None,
            "streak": decision.streak,
            "delay": decision.delay,
        }
        if decision.give_up:
            log.critical(
                "%s: %d workers in a row died at start; giving up (the code or the settings "
                "cannot start)",
                died,
                decision.streak,
                extra={**extra, "event": "workers_failing"},
            )
            self.state.exitcode = 1
            return
        supervision.count(self.restarts, "died")
        if decision.delay > 0:
            self.state.due.append((now + decision.delay, pid))
            log.error(
                "%s; %d early deaths in a row: replacing it in %g s",
                died,
                decision.streak,
                decision.delay,
                extra=extra,
            )
            return
        new = self.spawn(replaces=pid)
        extra["new_pid"] = new.process.pid
        log.error("%s; replaced by worker %d", died, new.process.pid, extra=extra)

    def spawn(self, replaces: int | None = None) -> Worker:
        ready, tell = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=worker,
            kwargs={
                "config": self.config,
                "sockets": self.sockets,
                "shutdown_event": self.shutdown,
                "restarts": self.restarts,
                "ready": tell,
                "supervisor": os.getpid(),
            },
        )
        process.daemon = True
        process.start()
        tell.close()  # the worker has its own copy: its death ends the pipe (EOF here)
        w = Worker(process, time.monotonic(), ready, replaces)
        self.workers.append(w)
        return w

    def ask_stop(self, w: Worker, drain: float) -> None:
        """One worker drains and exits (SIGTERM); a second SIGTERM cuts its drain short after
        `drain` seconds, and it is killed if still there after Hypercorn's graceful window."""
        w.asked = True
        self.signal(w, signal.SIGTERM)
        now = time.monotonic()
        w.hurry_at = now + drain
        w.kill_at = now + drain + self.config.graceful_timeout + EXTRA_SHUTDOWN_SECONDS

    @staticmethod
    def signal(w: Worker, signum: int) -> None:
        if w.process.pid is not None and w.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.process.pid, signum)

    def enforce_deadlines(self, now: float) -> None:
        for w in self.workers:
            if w.hurry_at is not None and now >= w.hurry_at:
                w.hurry_at = None
                self.signal(w, signal.SIGTERM)
            if w.kill_at is not None and now >= w.kill_at:
                w.kill_at = None
                log.error("worker %s did not stop in time: killing it", w.process.pid)
                w.process.kill()

    # --- DEBUG reload --------------------------------------------------------------------------

    def on_change(self, paths: list[str]) -> None:
        """Called from the watcher's thread."""
        with self.lock:
            self.changed.extend(paths)
        self.wake()

    def replace_all(self, changed: list[str]) -> None:
        assert self.reload is not None
        shown = ", ".join(sorted(set(changed))[:3]) + (" ..." if len(set(changed)) > 3 else "")
        self.config = self.reload.config(self.config)
        self.config.workers = max(1, self.config.workers)
        old = [w for w in self.workers if not w.asked]
        log.info(
            "reload: %s changed; restarting %d worker(s)",
            shown,
            self.config.workers,
            extra={"event": "reload", "changed": sorted(set(changed))[:20]},
        )
        for w in old:
            self.ask_stop(w, RELOAD_DRAIN_SECONDS)
            supervision.count(self.restarts, "reload")
        self.state.due.clear()
        self.state.streak = 0
        for _ in range(self.config.workers):
            self.spawn()

    # --- shutdown ------------------------------------------------------------------------------

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.shutdown.set()
        for w in self.workers:
            w.asked = True
            if self.signals > 1:  # a second signal cuts the drains short
                self.signal(w, signal.SIGTERM)
        self.wake()

    def on_hangup(self, signum: int, frame: FrameType | None) -> None:
        """SIGHUP: every worker reads SITES_FILE again (site_reload.py); none is restarted."""
        for w in self.workers:
            if not w.asked:
                self.signal(w, signal.SIGHUP)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the loop is awake anyway
            os.write(self._wake_w, b"!")

    def shut_down(self) -> int:
        self.shutdown.set()
        for w in self.workers:
            w.asked = True
        log.info(
            "shutdown: waiting for %d worker(s) to drain (graceful_timeout %ss)",
            len(self.workers),
            self.config.graceful_timeout,
        )
        deadline = time.monotonic() + 2 * self.config.graceful_timeout + EXTRA_SHUTDOWN_SECONDS
        while self.workers and time.monotonic() < deadline:
            self.reap(timeout=min(TICK, max(0.0, deadline - time.monotonic())))
            self.enforce_deadlines(time.monotonic())
        for w in list(self.workers):
            log.error("worker %s did not stop in time: killing it", w.process.pid)
            w.process.kill()
            self.state.exitcode = self.state.exitcode or 1
        if self.workers:
            self.reap(timeout=5.0)
        return self.state.exitcode


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _forget_metrics(pid: int | None) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if pid is None or not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)
