"""Settings: read once from the environment (and `.env`), validated into one typed object.

Nothing else in the package reads `os.environ`. A missing or bad setting raises ConfigError
naming the variable, which `__main__` and the app factory turn into one line on stderr.

One declaration per setting: a field of `Settings` made with `setting(...)` (its environment
variable is the field name in capitals) holds its type, default and minimum; the value is parsed
by its type (`_by_type`) or by the setting's own `parse`. docs/settings.md says what each one
means; tests/unit/test_docs_settings.py checks that page against `environment_settings()`.
Rules between settings (the secrets, LOG_FORMAT under DEBUG) are in `load_settings`.
A field made without `setting()` is not read from the environment.

pydantic-settings was considered: its errors are multi-line ValidationErrors (one line per
field, the value echoed), numbers would still need the ASCII-only parsers of core.numbers as
validators, and `.env` is already python-dotenv's; it would add a dependency, not remove code.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from .core.api_keys import parse_entries
from .core.attachments import parse_types
from .core.identity import load_public_keys
from .core.limits import Rate
from .core.numbers import parse_udecimal, parse_uint
from .core.origins import (
    DEFAULT_IPV6_PREFIX,
    IPNetwork,
    OriginMatcher,
    parse_ipv6_prefix,
    parse_networks,
)
from .core.redis_url import parse_redis_url
from .core.sites import SiteError, SiteRegistry, parse_registry

DeploymentMode = Literal["stateless", "sqlite", "production"]
MIN_SECRET_BYTES = 32


class ConfigError(ValueError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


Parser = Callable[[str, str], object]  # (variable, value) -> the setting's value


def setting(
    default: Any = MISSING,
    *,
    minimum: float = 0,
    parse: Parser | None = None,
    secret: bool = False,
) -> Any:
    """A Settings field read from the environment variable of its name in capitals. No
    default: required. `minimum` bounds numbers; `parse` replaces the parsing by type;
    `secret` keeps the value out of repr (and so out of logs)."""
    meta = {"env": True, "minimum": minimum, "parse": parse}
    return field(default=default, repr=not secret, metadata=meta)


# -- parsers of the settings that are more than their type ------------------------------------


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, "expected an http(s) URL")
    return value


def _redis_url(name: str, value: str) -> str:
    """One Redis, a Cluster or a Sentinel primary (core/redis_url.py); the error never
    repeats the URL, which may hold a password."""
    try:
        parse_redis_url(value)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None
    return value


def _origins(name: str, value: str) -> OriginMatcher:
    matcher = OriginMatcher(value.split(","))  # ValueError: named by the caller
    if not matcher.patterns:
        raise ConfigError(name, "is required but empty")
    return matcher


def _patterns(name: str, value: str) -> tuple[str, ...]:
    items = tuple(p for p in (x.strip() for x in value.split(",")) if p)
    for p in items:
        try:
            re.compile(p)
        except re.error as exc:
            raise ConfigError(name, f"bad pattern {p!r}: {exc}") from None
    return items


def _api_keys(name: str, value: str) -> tuple[tuple[str, str], ...]:
    """`id:sha256-hex` entries (core.api_keys); the error names the entry's position only."""
    return tuple((kid, digest.hex()) for kid, digest in parse_entries(value).items())


def _identity_secrets(name: str, value: str) -> tuple[str, ...]:
    """The current identity secret first, then the one being retired (docs/identity.md)."""
    items = tuple(p for p in (x.strip() for x in value.split(",")) if p)
    for n, secret in enumerate(items, 1):
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(name, f"secret {n} must be at least {MIN_SECRET_BYTES} bytes long")
    return items


def _public_keys_file(name: str, value: str) -> str:
    """A PEM file of RSA/EC P-256 public keys, read and checked now (the path is kept)."""
    try:
        text = Path(value).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, f"cannot read the file: {type(exc).__name__}") from None
    load_public_keys(text)  # ValueError: named by the caller
    return value


def _types(name: str, value: str) -> frozenset[str]:
    try:
        return parse_types(value)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _level(name: str, value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(name, f"expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


@dataclass(frozen=True)
class Settings:
    jwt_secret_key: str = setting(secret=True)
    session_secret_key: str = setting(secret=True)
    n8n_webhook_url: str = setting(parse=_http_url, secret=True)
    allowed_origins: OriginMatcher = setting(parse=_origins)
    deployment_mode: DeploymentMode = setting("stateless")
    sqlite_path: str = setting("quartproxy.db")
    redis_url: str = setting("redis://127.0.0.1:6379/0", parse=_redis_url, secret=True)
    # Cluster/Sentinel: how long a Redis write waits for a dead primary's replacement before
    # it fails (StoreUnavailable); above the cluster's cluster-node-timeout + an election.
    redis_failover_wait_seconds: float = setting(10.0)
    trusted_proxies: tuple[IPNetwork, ...] = setting((), parse=lambda _, v: parse_networks(v))
    # IPv6 clients share a budget per /N
    rate_limit_ipv6_prefix: int = setting(
        DEFAULT_IPV6_PREFIX, parse=lambda _, v: parse_ipv6_prefix(v)
    )
    max_message_chars: int = setting(4000, minimum=1)
    max_body_bytes: int = setting(64 * 1024, minimum=1024)
    max_metadata_bytes: int = setting(2048, minimum=2)
    n8n_timeout_seconds: float = setting(60.0, minimum=0.1)
    n8n_stream_idle_seconds: float = setting(120.0, minimum=0.1)
    n8n_max_connections: int = setting(1000, minimum=1)
    n8n_jwt_algorithm: Literal["HS256", "HS384", "HS512"] = setting("HS256")
    stream_buffer_seconds: float = setting(300.0, minimum=1)
    session_ttl_seconds: float = setting(86400.0, minimum=60)
    heartbeat_seconds: float = setting(15.0, minimum=0.05)
    # Worker and busy-flag leases (core/leases.py): renewed every third of it; a dead worker's
    # turns end for resuming clients within about 4/3 of it.
    turn_lease_seconds: float = setting(6.0, minimum=0.3)
    ws_auth_seconds: float = setting(5.0, minimum=0.05)  # the WebSocket auth frame's deadline
    health_cache_seconds: float = 5.0
    rate_limit_ip: Rate = setting(Rate(30, 60.0))
    rate_limit_session: Rate = setting(Rate(20, 60.0))
    rate_limit_origin: Rate = setting(Rate(600, 60.0))
    rate_limit_session_create: Rate = setting(Rate(10, 60.0))
    rate_limit_fail_mode: Literal["open", "closed"] = setting("closed")
    bot_score_threshold: int = setting(60, minimum=1)
    bot_enforce: bool = setting(True)
    spam_enforce: bool = setting(True)
    spam_block_patterns: tuple[str, ...] = setting((), parse=_patterns)
    spam_max_duplicates: int = setting(3, minimum=1)
    spam_duplicate_window_seconds: float = setting(600.0, minimum=1)
    spam_max_links: int = setting(3)
    spam_max_char_run: int = setting(40, minimum=2)
    history_retention_days: float = setting(30.0)
    metrics_token: str | None = setting(None, secret=True)
    # API clients (docs/api-clients.md): hashed keys, their own rate and daily quota per key
    api_keys: tuple[tuple[str, str], ...] = setting((), parse=_api_keys, secret=True)
    rate_limit_api_key: Rate = setting(Rate(120, 60.0))
    api_key_daily_quota: int = setting(0)
    # Signed visitors (docs/identity.md)
    identity_secrets: tuple[str, ...] = setting((), parse=_identity_secrets, secret=True)
    identity_public_keys_file: str | None = setting(None, parse=_public_keys_file)
    identity_audience: str = setting("default")
    identity_max_lifetime_seconds: float = setting(3600.0, minimum=60)
    log_format: Literal["json", "text"] = setting("json")  # `text` when DEBUG and unset
    log_level: str = setting("INFO", parse=_level)
    debug: bool = setting(False)
    demo: bool = False
    # File attachments (docs/attachments.md), gathered by core.attachments.AttachmentPolicy
    attach_enabled: bool = setting(False)
    attach_max_files: int = setting(3, minimum=1)
    attach_max_bytes: int = setting(10 * 1024 * 1024, minimum=1)
    attach_max_total_bytes: int = setting(15 * 1024 * 1024, minimum=1)  # < n8n's 16 MiB
    attach_allowed_types: frozenset[str] = setting(
        frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}),
        parse=_types,
    )
    attach_spool_memory_bytes: int = setting(256 * 1024)  # per file, the rest on disk
    allow_h2c: bool = setting(False)  # HTTP/2 without TLS (http/h2c.py); it tunnels past a proxy
    # Many sites (core/sites.py, docs/sites.md): a TOML file; unset, one implicit site
    sites_file: str | None = setting(None)
    # The registry read from SITES_FILE (None: the implicit site of these settings)
    sites: SiteRegistry | None = field(default=None, repr=False, compare=False)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def environment_settings() -> dict[str, Field[Any]]:
    """Environment variable -> its Settings field, in declaration order."""
    return {f.name.upper(): f for f in fields(Settings) if f.metadata.get("env")}


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _number(name: str, value: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    """ASCII digits only (core.numbers): no sign, exponent, `_`, `nan`/`inf` or other scripts."""
    n = parse_uint(value) if integer else parse_udecimal(value)
    if n is None:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(name, f"expected {kind} in ASCII digits, got {value!r}")
    if n < minimum:
        raise ConfigError(name, f"must be at least {minimum:g}, got {value!r}")
    return n


def _by_type(name: str, value: str, kind: Any, minimum: float) -> object:
    """A value parsed by the type of its field: bool, int, float, Rate, a Literal, or text."""
    if kind is bool:
        return _bool(name, value)
    if kind is int:
        return int(_number(name, value, minimum=minimum, integer=True))
    if kind is float:
        return _number(name, value, minimum=minimum)
    if kind is Rate:
        return Rate.parse(value)
    if get_origin(kind) is Literal:
        choices = [str(c) for c in get_args(kind)]
        if value not in choices:
            expected = ", ".join(choices[:-1]) + " or " + choices[-1]
            raise ConfigError(name, f"expected {expected}, got {value!r}")
        return value
    return value  # text (str, str | None)


def read_dotenv(path: Path) -> dict[str, str]:
    """Values from a `.env` file (python-dotenv); missing file: nothing."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def environment(cwd: Path | None = None) -> dict[str, str]:
    """`.env` in the working directory, overridden by the real environment."""
    merged = read_dotenv((cwd or Path.cwd()) / ".env")
    merged.update(os.environ)
    return merged


def _read(name: str, f: Field[Any], env: Mapping[str, str], kind: Any) -> object:
    """One setting's value from `env`; MISSING when unset (an empty value counts as unset)."""
    value = (env.get(name) or "").strip()
    if not value:
        if f.default is MISSING:
            raise ConfigError(name, "is required but not set")
        return MISSING
    parse = f.metadata["parse"]
    try:
        if parse is not None:
            return parse(name, value)
        return _by_type(name, value, kind, f.metadata["minimum"])
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _check_secrets(jwt_key: object, session_key: object, debug: bool) -> None:
    for name, key in (("JWT_SECRET_KEY", jwt_key), ("SESSION_SECRET_KEY", session_key)):
        if len(str(key).encode()) < MIN_SECRET_BYTES and not debug:
            raise ConfigError(name, f"must be at least {MIN_SECRET_BYTES} bytes long")
    if jwt_key == session_key:
        raise ConfigError("SESSION_SECRET_KEY", "must differ from JWT_SECRET_KEY")


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate `env` into Settings or raise ConfigError naming the first bad variable, in the
    order of the fields (DEBUG first: the secrets' rule depends on it)."""
    hints = get_type_hints(Settings)
    table = environment_settings()
    debug = _read("DEBUG", table["DEBUG"], env, bool) is True
    kw: dict[str, object] = {}
    # With SITES_FILE, every site names its own webhook and origins
    sites_file = (env.get("SITES_FILE") or "").strip()
    per_site = {"N8N_WEBHOOK_URL": "", "ALLOWED_ORIGINS": OriginMatcher([])} if sites_file else {}
    for name, f in table.items():
        if name in per_site and not (env.get(name) or "").strip():
            kw[f.name] = per_site[name]
            continue
        value = _read(name, f, env, hints[f.name])
        if value is not MISSING:
            kw[f.name] = value
        if f.name == "session_secret_key":  # rules between settings, at the second secret
            _check_secrets(kw["jwt_secret_key"], value, debug)
    if debug and "log_format" not in kw:
        kw["log_format"] = "text"
    settings = Settings(**kw)  # type: ignore[arg-type]
    if settings.sites_file:
        settings = replace(settings, sites=load_sites_file(settings.sites_file, settings, env))
    return settings


def load_sites_file(path: str, settings: Settings, env: Mapping[str, str]) -> SiteRegistry:
    """The registry of the TOML file at `path`, or ConfigError (one line, `SITES_FILE: ...`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("SITES_FILE", f"cannot read {path}: {exc.__class__.__name__}") from None
    try:
        return parse_registry(text, settings, env)
    except SiteError as exc:
        raise ConfigError("SITES_FILE", str(exc)) from None


def demo_settings(bind_origins: list[str], extra: Mapping[str, str] | None = None) -> Settings:
    """Settings for `python -m quartproxy demo`: ephemeral secrets, the built-in echo upstream.
    Only reachable through the explicit `demo` command, never through a missing setting."""
    env = {
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "SESSION_SECRET_KEY": secrets.token_urlsafe(48),
        "N8N_WEBHOOK_URL": "http://demo.invalid/webhook/echo",
        "ALLOWED_ORIGINS": ",".join(bind_origins),
        "LOG_FORMAT": "text",
        "RATE_LIMIT_IP": "120/minute",
        "RATE_LIMIT_SESSION": "60/minute",
        # Bot scores are logged, not enforced, so the curl examples of docs/api.md work on the demo.
        "BOT_ENFORCE": "false",
    }
    if extra:
        env.update({k: v for k, v in extra.items() if k in ("ALLOWED_ORIGINS", "LOG_LEVEL")})
    return replace(load_settings(env), demo=True)
