"""The running parts of one app instance, shared by every route and channel."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .config import Settings
from .core.sites import SiteRegistry, implicit_site
from .store.base import Store
from .turns import TurnRunner
from .upstream import N8nClient


@dataclass
class Services:
    settings: Settings
    store: Store
    upstream: N8nClient
    turns: TurnRunner
    clock: Callable[[], float] = field(default=time.time)
    started_at: float = field(default_factory=time.time)
    # Set when a shutdown drain has finished: long-lived channels (WebSockets) close now
    # instead of holding the process for Hypercorn's whole graceful_timeout.
    closing: trio.Event = field(default_factory=trio.Event)
    # /health: check name -> (monotonic time, detail) of the failure last logged
    health_logged: dict[str, tuple[float, str]] = field(default_factory=dict)
    # The sites served (core/sites.py): SITES_FILE's, else the implicit one of `settings`.
    # Replaced whole on a reload (reload.py); a request keeps the Site it was admitted with.
    sites: SiteRegistry | None = None

    def __post_init__(self) -> None:
        if self.sites is None:
            self.sites = self.settings.sites or SiteRegistry((implicit_site(self.settings),))

    @property
    def registry(self) -> SiteRegistry:
        assert self.sites is not None
        return self.sites
