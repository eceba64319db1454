"""Sites: many sites on one gateway, each with its own origins, n8n webhook, limits, quotas,
screening, retention and widget defaults (docs/sites.md). Pure: the registry is parsed from
the text of a TOML file and the global Settings (which give every value a site leaves out);
no file or clock is read here.

A request's site is decided by its Origin: sites' origins are disjoint (a file where two sites
could both allow one origin is refused), so an Origin names at most one site, and a visitor
cannot claim another site's budget without being served from that site's page. The widget's
`data-site` (header `X-Chat-Site`) is a cross-check: naming another site than the Origin's is
refused. Without SITES_FILE there is one implicit site built from the environment settings,
whose store keys are today's (`key_prefix` empty), so a single-site gateway is unchanged.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .limits import Rate
from .origins import OriginMatcher, overlap

if TYPE_CHECKING:
    from ..config import Settings

IMPLICIT_ID = "default"
# Lower-case, short, no `{`/`}` (Redis Cluster hash tags), `:` (key separator) or spaces:
# a site id goes into store keys, metrics labels and log lines as it is.
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MIN_SECRET_BYTES = 32
ALGORITHMS = ("HS256", "HS384", "HS512")
THEMES = ("light", "dark", "auto")
ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_SITES = 1000  # bounds the metrics' site label set and the file's cost


class SiteError(ValueError):
    """One line: where in the file, and what is wrong (never a secret's value)."""


@dataclass(frozen=True, slots=True)
class WidgetDefaults:
    """What the widget shows when the page sets nothing (GET /api/v1/sites/{id}/widget)."""

    title: str = ""
    greeting: str = ""
    language: str = ""
    theme: str = ""
    accent: str = ""

    def public(self) -> dict[str, str]:
        return {k: v for k, v in _widget_items(self) if v}


def _widget_items(w: WidgetDefaults) -> list[tuple[str, str]]:
    return [(k, getattr(w, k)) for k in ("title", "greeting", "language", "theme", "accent")]


@dataclass(frozen=True)
class Site:
    """Every per-site value; callers ask the site, not Settings."""

    id: str
    origins: OriginMatcher
    webhook_url: str = field(repr=False)
    upstream_secret: str = field(repr=False)
    upstream_algorithm: str
    rate_limit_ip: Rate
    rate_limit_session: Rate
    rate_limit_origin: Rate
    rate_limit_session_create: Rate
    quota_day: int  # chat turns per UTC day for the whole site; 0: no quota
    quota_month: int  # per UTC calendar month; 0: no quota
    bot_enforce: bool
    bot_score_threshold: int
    spam_enforce: bool
    spam_block_patterns: tuple[str, ...]
    spam_max_duplicates: int
    spam_duplicate_window_seconds: float
    spam_max_links: int
    spam_max_char_run: int
    history_retention_days: float
    n8n_chat: bool  # the @n8n/chat drop-in endpoint (POST /api/v1/n8n/chat)
    # What each API key spends on this site (docs/api-clients.md): its rate, and its chat
    # turns per UTC day (0: no quota)
    rate_limit_api_key: Rate
    api_key_daily_quota: int
    widget: WidgetDefaults = WidgetDefaults()
    implicit: bool = False  # built from the environment (no SITES_FILE)
    # The site's own HS256 secrets for user tokens (docs/identity.md), current one first; empty:
    # the environment's identity keys, with this site's id as the audience.
    identity_secrets: tuple[str, ...] = field(default=(), repr=False)
    # The site's own API keys (id -> sha256 digest, docs/api-clients.md): a key of this list
    # admits to this site only. Ids are unique across the file and API_KEYS.
    api_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key_prefix(self) -> str:
        """Prefix of this site's limit and quota keys: empty for the implicit site (today's
        keys, unchanged), `site:<id>:` otherwise, so sites never share a bucket."""
        return "" if self.implicit else f"site:{self.id}:"

    def quota_keys(self, now: float) -> list[tuple[str, float, int, str]]:
        """(counter key, its ttl, the quota, tier name) of the quotas this site has, for the
        UTC day and month containing `now`. The key names the period, so a new day starts at
        zero; the ttl outlives the period."""
        t = datetime.fromtimestamp(now, UTC)
        out = []
        if self.quota_day:
            out.append(
                (f"{self.key_prefix}q:d:{t:%Y%m%d}", 2 * 86400.0, self.quota_day, "quota_day")
            )
        if self.quota_month:
            out.append(
                (f"{self.key_prefix}q:m:{t:%Y%m}", 32 * 86400.0, self.quota_month, "quota_month")
            )
        return out


def quota_reset(now: float, tier: str) -> float:
    """Seconds from `now` until the quota period of `tier` starts again (UTC)."""
    t = datetime.fromtimestamp(now, UTC)
    if tier == "quota_day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = start.timestamp() + 86400.0
    else:
        y, m = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
        nxt = datetime(y, m, 1, tzinfo=UTC).timestamp()
    return max(1.0, nxt - now)


@dataclass(frozen=True)
class SiteRegistry:
    sites: tuple[Site, ...]
    digest: str = ""  # sha256 of the file's text it was read from (site_reload.py)
    by_id: Mapping[str, Site] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {s.id: s for s in self.sites})

    def key_owner(self, key_id: str) -> Site | None:
        """The site whose own `api_keys` list this key id, or None (an API_KEYS key)."""
        for site in self.sites:
            if key_id in site.api_keys:
                return site
        return None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sites)

    @property
    def retention_days(self) -> float:
        """The history purge's age: the shortest a site asks for (one purge serves every
        site, so no site keeps history longer than it said; 0 when every site keeps it)."""
        kept = [s.history_retention_days for s in self.sites if s.history_retention_days > 0]
        return min(kept, default=0.0)

    @property
    def single(self) -> bool:
        return len(self.sites) == 1 and self.sites[0].implicit

    def site_of(self, origin: str | None) -> tuple[Site, str] | None:
        """The site whose origins allow `origin`, with the origin's canonical form."""
        for site in self.sites:
            canonical = site.origins.canonical(origin)
            if canonical is not None:
                return site, canonical
        return None

    def resolve(self, origin: str | None, claimed: str | None) -> tuple[Site, str] | None:
        """The request's site: the Origin's; a claimed site id (the widget's `data-site`)
        that is not that site refuses the request (None), as does an Origin of no site."""
        found = self.site_of(origin)
        if found is None:
            return None
        if claimed and claimed != found[0].id:
            return None
        return found


# -- building sites ------------------------------------------------------------------------


def implicit_site(settings: Settings) -> Site:
    """The one site of a gateway without SITES_FILE: today's environment settings."""
    s = settings
    return Site(
        id=IMPLICIT_ID,
        origins=s.allowed_origins,
        webhook_url=s.n8n_webhook_url,
        upstream_secret=s.session_secret_key,
        upstream_algorithm=s.n8n_jwt_algorithm,
        rate_limit_ip=s.rate_limit_ip,
        rate_limit_session=s.rate_limit_session,
        rate_limit_origin=s.rate_limit_origin,
        rate_limit_session_create=s.rate_limit_session_create,
        quota_day=0,
        quota_month=0,
        bot_enforce=s.bot_enforce,
        bot_score_threshold=s.bot_score_threshold,
        spam_enforce=s.spam_enforce,
        spam_block_patterns=s.spam_block_patterns,
        spam_max_duplicates=s.spam_max_duplicates,
        spam_duplicate_window_seconds=s.spam_duplicate_window_seconds,
        spam_max_links=s.spam_max_links,
        spam_max_char_run=s.spam_max_char_run,
        history_retention_days=s.history_retention_days,
        n8n_chat=True,
        rate_limit_api_key=s.rate_limit_api_key,
        api_key_daily_quota=s.api_key_daily_quota,
        implicit=True,
    )


def parse_registry(text: str, settings: Settings, env: Mapping[str, str]) -> SiteRegistry:
    """The registry of a sites file's text, or SiteError naming the first problem. Values a
    site leaves out come from `settings`; `upstream_secret_env` names a variable of `env`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(f"not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"sites"})
    if unknown:
        raise SiteError(f"unknown top-level key {unknown[0]!r} (expected [sites.<id>] tables)")
    tables = doc.get("sites")
    if not isinstance(tables, dict) or not tables:
        raise SiteError("no sites: expected at least one [sites.<id>] table")
    if len(tables) > MAX_SITES:
        raise SiteError(f"{len(tables)} sites; at most {MAX_SITES}")
    from .site_fields import site_from_table  # the per-field rules

    base = implicit_site(settings)
    sites: list[Site] = []
    for site_id, table in tables.items():
        if not SITE_ID.match(site_id):
            raise SiteError(f"sites.{site_id}: the id must match {SITE_ID.pattern}")
        if not isinstance(table, dict):
            raise SiteError(f"sites.{site_id}: expected a table")
        site = site_from_table(site_id, table, base, env, debug=settings.debug)
        if site.upstream_secret == settings.jwt_secret_key:
            raise SiteError(f"sites.{site_id}.upstream_secret: must differ from JWT_SECRET_KEY")
        taken = set(settings_key_ids(settings)).union(*(o.api_keys for o in sites))
        if clash := sorted(taken & set(site.api_keys)):
            raise SiteError(f"sites.{site_id}.api_keys: key id {clash[0]!r} is already in use")
        for other in sites:
            shared = overlap(site.origins, other.origins)
            if shared is not None:
                raise SiteError(
                    f"sites.{site_id}.origins: {shared} is also allowed by site {other.id!r}"
                    " (sites' origins must be disjoint)"
                )
        sites.append(site)
    return SiteRegistry(tuple(sites), text_digest(text))


def settings_key_ids(settings: Settings) -> list[str]:
    """The ids of API_KEYS (keys every site may be named by)."""
    return [kid for kid, _digest in settings.api_keys]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
