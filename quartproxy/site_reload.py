"""SIGHUP: read SITES_FILE again, in every worker (the supervisor forwards the signal), without
dropping anything in flight (docs/sites.md#reload).

The new registry replaces the old one whole (`Services.sites`, one assignment): requests
admitted before keep the Site they were admitted with (a running answer keeps its webhook and
secret to the end), requests after use the new one. A file that does not validate changes
nothing: the old registry stays, and one log line says why (the same line `check-config`
prints). Only the sites file is read again; other settings need a restart.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import trio

from . import metrics
from .config import ConfigError, environment, load_sites_file
from .core.sites import text_digest
from .services import Services

log = logging.getLogger("quartproxy.sites")


def reload_sites(svc: Services) -> bool:
    """Read SITES_FILE again into `svc`; False (and a log line) when it is refused."""
    path = svc.settings.sites_file
    if not path:
        log.warning("sites reload: no SITES_FILE is set; nothing to reload")
        return False
    try:
        registry = load_sites_file(path, svc.settings, environment())
    except ConfigError as exc:
        log.error(
            "sites reload refused, keeping the %d site(s) in use: %s",
            len(svc.registry.sites),
            exc,
            extra={"event": "sites_reload", "result": "refused"},
        )
        return False
    svc.sites = registry
    metrics.configure(
        [o for s in registry.sites for o in s.origins.exact], [s.id for s in registry.sites]
    )
    log.info(
        "sites reloaded: %s",
        ", ".join(registry.ids),
        extra={"event": "sites_reload", "result": "ok", "sites": list(registry.ids)},
    )
    return True


async def reload_on_sighup(
    svc: Services, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Reload on every SIGHUP until cancelled. Signals can only be received on the main
    thread (a worker's, or a test's); elsewhere there is nothing to listen for."""
    if threading.current_thread() is not threading.main_thread():
        task_status.started()
        return
    with trio.open_signal_receiver(signal.SIGHUP) as hups:
        task_status.started()
        # A SIGHUP that came while this worker was starting was ignored (server.worker): if
        # the file changed since it was read, read it now, so no worker keeps an old registry.
        if changed_since_read(svc):
            reload_sites(svc)
        async for _ in hups:
            reload_sites(svc)


def changed_since_read(svc: Services) -> bool:
    path = svc.settings.sites_file
    if not path:
        return False
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True  # reload_sites says what is wrong and keeps the registry
    return text_digest(text) != svc.registry.digest
