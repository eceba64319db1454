"""The running parts of one app instance, shared by every route and channel."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import trio

from .config import Settings
from .core.api_keys import ApiKeyPolicy
from .core.identity import IdentityPolicy
from .core.sites import Site, SiteRegistry, implicit_site
from .policies import api_key_policy, identity_policy
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
    # API key id -> when this worker last recorded its use (api_clients.note_use)
    api_key_noted: dict[str, float] = field(default_factory=dict)
    # The sites served (core/sites.py): SITES_FILE's, else the implicit one of `settings`.
    # Replaced whole on a reload (reload.py); a request keeps the Site it was admitted with.
    sites: SiteRegistry | None = None
    _api_keys_cache: tuple[SiteRegistry, ApiKeyPolicy] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.sites is None:
            self.sites = self.settings.sites or SiteRegistry((implicit_site(self.settings),))

    @property
    def registry(self) -> SiteRegistry:
        assert self.sites is not None
        return self.sites

    # The site's policies (quartproxy/policies.py), built once from the settings.
    @functools.cached_property
    def env_api_keys(self) -> ApiKeyPolicy:
        return api_key_policy(self.settings)

    @property
    def api_keys(self) -> ApiKeyPolicy:
        """Every valid key: API_KEYS and the sites' own lists (ids unique across them, so a
        key's id tells its site: SiteRegistry.key_owner). Rebuilt after a sites reload."""
        registry = self.registry
        cached = self._api_keys_cache
        if cached is None or cached[0] is not registry:
            base = self.env_api_keys
            digests = dict(base.digests)
            for site in registry.sites:
                digests.update(site.api_keys)
            policy = dataclasses.replace(base, digests=MappingProxyType(digests))
            cached = self._api_keys_cache = (registry, policy)
        return cached[1]

    @functools.cached_property
    def identity(self) -> IdentityPolicy:
        return identity_policy(self.settings)

    def identity_for(self, site: Site | None) -> IdentityPolicy:
        """A site of SITES_FILE has its own id as the audience (a user token signed for one
        site is refused on another, and a user's conversation pointer is per site:
        core.identity.user_key hashes the audience), and its own identity secrets when it sets
        them (then only those: no other key signs for it), else the environment's keys."""
        if site is None or site.implicit:
            return self.identity
        if site.identity_secrets:
            return IdentityPolicy(
                site.id, site.identity_secrets, max_lifetime=self.identity.max_lifetime
            )
        return dataclasses.replace(self.identity, audience=site.id)
