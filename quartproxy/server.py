"""Serving the app with Hypercorn, with a drain before Hypercorn's own shutdown (lifecycle.py).

`run(config)`:
- one worker: this process serves; SIGTERM or SIGINT starts the drain, a second one cuts it
  short (answers still end with `shutting_down`).
- several workers: this process supervises spawned trio workers like Hypercorn's `run`, with
  two differences. On SIGTERM it waits for *every* worker to finish its drain (Hypercorn's own
  master terminates the remaining workers as soon as the first one exits, which cuts their open
  streams without a final event). And it tells prometheus-client when a worker is gone, so live
  gauges (open streams, turns in flight) stop counting it.

A worker that exits with an error stops the whole server (as Hypercorn does): the process
manager (Docker, systemd) restarts it. A worker that exits cleanly while serving (Hypercorn's
`max_requests`) is replaced.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import check_multiprocess_shutdown_event, load_application

from .config import Settings

log = logging.getLogger("quartproxy.server")
EXTRA_SHUTDOWN_SECONDS = 15.0  # on top of drain + Hypercorn's graceful window


def apply_settings(config: Config, settings: Settings) -> Config:
    """What Hypercorn must enforce for the app's settings. A WebSocket message may be no larger
    than an HTTP body (MAX_BODY_BYTES): Hypercorn closes the socket with 1009 while reading,
    before the message is buffered whole (with quartproxy/overrides/hypercorn_guards.py).
    Hypercorn counts a text message in characters, so the app's own check (in bytes, an
    error frame) still answers a message of fewer characters but more bytes."""
    config.websocket_max_message_size = settings.max_body_bytes
    return config


def worker(
    config: Config, sockets: Sockets | None = None, shutdown_event: EventType | None = None
) -> None:
    """One serving process (the target of spawned workers, or called directly)."""
    if sockets is not None:
        for sock in sockets.secure_sockets:
            sock.listen(config.backlog)
        for sock in sockets.insecure_sockets:
            sock.listen(config.backlog)
    app = load_application(config.application_path, config.wsgi_max_body_size)
    trigger = partial(shutdown_trigger, config.graceful_timeout, shutdown_event)
    trio.run(partial(worker_serve, app, config, sockets=sockets, shutdown_trigger=trigger))


async def shutdown_trigger(grace: float, master: EventType | None) -> None:
    """Returns (letting Hypercorn shut down) once a shutdown was asked for — SIGTERM, SIGINT or
    the supervisor's event — and the apps have drained."""
    asked = trio.Event()
    force = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signals() -> None:
                async for signum in signals:
                    if asked.is_set():
                        log.warning("second %s: ending the drain now", signal.Signals(signum).name)
                        force.set()
                    asked.set()

            async def on_master() -> None:
                assert master is not None
                # A multiprocessing Event cannot be awaited: Hypercorn's own poll.
                await check_multiprocess_shutdown_event(master, trio.sleep)
                asked.set()

            nursery.start_soon(on_signals)
            if master is not None:
                nursery.start_soon(on_master)
            await asked.wait()
            log.info("shutdown requested (pid %d)", os.getpid(), extra={"event": "shutdown"})
            # Imported here: the supervisor must not create metric files of its own.
            from . import lifecycle

            await lifecycle.drain_all(grace, force)
            nursery.cancel_scope.cancel()
    log.info("closing connections", extra={"event": "closing"})


def run(config: Config) -> int:
    if config.workers <= 1:
        worker(config)
        return 0
    return supervise(config)


def supervise(config: Config) -> int:
    sockets = config.create_sockets()
    ctx = get_context("spawn")
    shutdown = ctx.Event()
    processes: list[BaseProcess] = []
    signals_seen = 0
    exitcode = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        shutdown.set()
        if signals_seen > 1:  # forward: a second signal cuts the workers' drains short
            for process in processes:
                if process.pid is not None and process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)

    def spawn() -> None:
        process = ctx.Process(
            target=worker,
            kwargs={"config": config, "sockets": sockets, "shutdown_event": shutdown},
        )
        process.daemon = True
        process.start()
        processes.append(process)

    def reap(timeout: float | None) -> list[BaseProcess]:
        wait([p.sentinel for p in processes], timeout=timeout)
        gone = [p for p in processes if p.exitcode is not None]
        for process in gone:
            process.join()
            processes.remove(process)
            _forget_metrics(process.pid)
            log.info(
                "worker %s exited with %s; %d left",
                process.pid,
                process.exitcode,
                len(processes),
                extra={"event": "worker_exited", "exitcode": process.exitcode},
            )
        return gone

    # Workers inherit SIGINT ignored (a terminal's Ctrl-C reaches the whole process group; the
    # workers listen for it themselves while they serve).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for _ in range(config.workers):
        spawn()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    while not shutdown.is_set():
        for process in reap(timeout=1.0):
            if process.exitcode != 0:
                log.error("worker %s exited with %s: stopping", process.pid, process.exitcode)
                exitcode = exitcode or int(process.exitcode or 1)
                shutdown.set()
            elif not shutdown.is_set():
                log.info("worker %s exited; starting another", process.pid)
                spawn()

    log.info(
        "shutdown: waiting for %d worker(s) to drain (graceful_timeout %ss)",
        len(processes),
        config.graceful_timeout,
    )
    deadline = time.monotonic() + 2 * config.graceful_timeout + EXTRA_SHUTDOWN_SECONDS
    while processes and time.monotonic() < deadline:
        for process in reap(timeout=max(0.0, deadline - time.monotonic())):
            if process.exitcode not in (0, None):
                exitcode = exitcode or int(process.exitcode or 1)
    for process in list(processes):
        log.error("worker %s did not stop in time: killing it", process.pid)
        process.kill()
        exitcode = exitcode or 1
    if processes:
        reap(timeout=5.0)

    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.close()
    return exitcode


def _forget_metrics(pid: int | None) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if pid is None or not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)
