"""The running parts of one app instance, shared by every route and channel."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Settings
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
