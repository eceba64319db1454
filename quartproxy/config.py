"""Settings: read once from the environment (and `.env`), validated into one typed object.

Nothing else in the package reads `os.environ`. A missing or bad setting raises ConfigError
naming the variable, which `__main__` and the app factory turn into one line on stderr.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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

DeploymentMode = Literal["stateless", "sqlite", "production"]
MIN_SECRET_BYTES = 32


class ConfigError(ValueError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    jwt_secret_key: str = field(repr=False)
    session_secret_key: str = field(repr=False)
    n8n_webhook_url: str = field(repr=False)
    allowed_origins: OriginMatcher
    deployment_mode: DeploymentMode = "stateless"
    sqlite_path: str = "quartproxy.db"
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    # Cluster/Sentinel: how long a Redis write waits for a dead primary's replacement before
    # it fails (StoreUnavailable); above the cluster's cluster-node-timeout + an election.
    redis_failover_wait_seconds: float = 10.0
    trusted_proxies: tuple[IPNetwork, ...] = ()
    rate_limit_ipv6_prefix: int = DEFAULT_IPV6_PREFIX  # IPv6 clients share a budget per /N
    max_message_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    max_metadata_bytes: int = 2048
    n8n_timeout_seconds: float = 60.0
    n8n_stream_idle_seconds: float = 120.0
    n8n_max_connections: int = 1000
    n8n_jwt_algorithm: str = "HS256"
    stream_buffer_seconds: float = 300.0
    session_ttl_seconds: float = 86400.0
    heartbeat_seconds: float = 15.0
    # Worker and busy-flag leases (core/leases.py): renewed every third of it; a dead worker's
    # turns end for resuming clients within about 4/3 of it.
    turn_lease_seconds: float = 6.0
    ws_auth_seconds: float = 5.0  # a WebSocket must send its auth frame within this
    health_cache_seconds: float = 5.0
    rate_limit_ip: Rate = Rate(30, 60.0)
    rate_limit_session: Rate = Rate(20, 60.0)
    rate_limit_origin: Rate = Rate(600, 60.0)
    rate_limit_session_create: Rate = Rate(10, 60.0)
    rate_limit_fail_mode: Literal["open", "closed"] = "closed"
    bot_score_threshold: int = 60
    bot_enforce: bool = True
    spam_enforce: bool = True
    spam_block_patterns: tuple[str, ...] = ()
    spam_max_duplicates: int = 3
    spam_duplicate_window_seconds: float = 600.0
    spam_max_links: int = 3
    spam_max_char_run: int = 40
    history_retention_days: float = 30.0
    metrics_token: str | None = field(default=None, repr=False)
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    debug: bool = False
    demo: bool = False

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


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


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate `env` into Settings or raise ConfigError naming the first bad variable."""

    def get(name: str, default: str | None = None) -> str | None:
        value = env.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def required(name: str) -> str:
        value = get(name)
        if value is None:
            raise ConfigError(name, "is required but not set")
        return value

    debug = _bool("DEBUG", get("DEBUG", "false") or "false")
    kw: dict[str, object] = {"debug": debug}

    mode = get("DEPLOYMENT_MODE", "stateless")
    if mode not in ("stateless", "sqlite", "production"):
        raise ConfigError(
            "DEPLOYMENT_MODE", f"expected stateless, sqlite or production, got {mode!r}"
        )
    kw["deployment_mode"] = mode

    jwt_key = required("JWT_SECRET_KEY")
    session_key = required("SESSION_SECRET_KEY")
    for name, key in (("JWT_SECRET_KEY", jwt_key), ("SESSION_SECRET_KEY", session_key)):
        if len(key.encode()) < MIN_SECRET_BYTES and not debug:
            raise ConfigError(name, f"must be at least {MIN_SECRET_BYTES} bytes long")
    if jwt_key == session_key:
        raise ConfigError("SESSION_SECRET_KEY", "must differ from JWT_SECRET_KEY")
    kw["jwt_secret_key"] = jwt_key
    kw["session_secret_key"] = session_key

    url = required("N8N_WEBHOOK_URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("N8N_WEBHOOK_URL", "expected an http(s) URL")
    kw["n8n_webhook_url"] = url

    origins = required("ALLOWED_ORIGINS")
    try:
        matcher = OriginMatcher(origins.split(","))
    except ValueError as exc:
        raise ConfigError("ALLOWED_ORIGINS", str(exc)) from None
    if not matcher.patterns:
        raise ConfigError("ALLOWED_ORIGINS", "is required but empty")
    kw["allowed_origins"] = matcher

    kw["sqlite_path"] = get("SQLITE_PATH", "quartproxy.db")
    redis_url = get("REDIS_URL", "redis://127.0.0.1:6379/0") or ""
    try:
        parse_redis_url(redis_url)
    except ValueError as exc:
        raise ConfigError("REDIS_URL", str(exc)) from None
    kw["redis_url"] = redis_url

    try:
        kw["trusted_proxies"] = parse_networks(get("TRUSTED_PROXIES", "") or "")
    except ValueError as exc:
        raise ConfigError("TRUSTED_PROXIES", str(exc)) from None
    prefix = get("RATE_LIMIT_IPV6_PREFIX")
    if prefix is not None:
        try:
            kw["rate_limit_ipv6_prefix"] = parse_ipv6_prefix(prefix)
        except ValueError as exc:
            raise ConfigError("RATE_LIMIT_IPV6_PREFIX", str(exc)) from None

    ints = {
        "MAX_MESSAGE_CHARS": ("max_message_chars", 1),
        "MAX_BODY_BYTES": ("max_body_bytes", 1024),
        "N8N_MAX_CONNECTIONS": ("n8n_max_connections", 1),
        "BOT_SCORE_THRESHOLD": ("bot_score_threshold", 1),
        "MAX_METADATA_BYTES": ("max_metadata_bytes", 2),
        "SPAM_MAX_DUPLICATES": ("spam_max_duplicates", 1),
        "SPAM_MAX_LINKS": ("spam_max_links", 0),
        "SPAM_MAX_CHAR_RUN": ("spam_max_char_run", 2),
    }
    for name, (attr, minimum) in ints.items():
        value = get(name)
        if value is not None:
            kw[attr] = int(_number(name, value, minimum=minimum, integer=True))
    floats = {
        "N8N_TIMEOUT_SECONDS": ("n8n_timeout_seconds", 0.1),
        "N8N_STREAM_IDLE_SECONDS": ("n8n_stream_idle_seconds", 0.1),
        "STREAM_BUFFER_SECONDS": ("stream_buffer_seconds", 1),
        "SESSION_TTL_SECONDS": ("session_ttl_seconds", 60),
        "HEARTBEAT_SECONDS": ("heartbeat_seconds", 0.05),
        "TURN_LEASE_SECONDS": ("turn_lease_seconds", 0.3),
        "REDIS_FAILOVER_WAIT_SECONDS": ("redis_failover_wait_seconds", 0),
        "WS_AUTH_SECONDS": ("ws_auth_seconds", 0.05),
        "HISTORY_RETENTION_DAYS": ("history_retention_days", 0),
        "SPAM_DUPLICATE_WINDOW_SECONDS": ("spam_duplicate_window_seconds", 1),
    }
    for name, (attr, fmin) in floats.items():
        value = get(name)
        if value is not None:
            kw[attr] = _number(name, value, minimum=fmin)

    rates = {
        "RATE_LIMIT_IP": "rate_limit_ip",
        "RATE_LIMIT_SESSION": "rate_limit_session",
        "RATE_LIMIT_ORIGIN": "rate_limit_origin",
        "RATE_LIMIT_SESSION_CREATE": "rate_limit_session_create",
    }
    for name, attr in rates.items():
        value = get(name)
        if value is not None:
            try:
                kw[attr] = Rate.parse(value)
            except ValueError as exc:
                raise ConfigError(name, str(exc)) from None

    fail_mode = get("RATE_LIMIT_FAIL_MODE", "closed")
    if fail_mode not in ("open", "closed"):
        raise ConfigError("RATE_LIMIT_FAIL_MODE", f"expected open or closed, got {fail_mode!r}")
    kw["rate_limit_fail_mode"] = fail_mode

    alg = get("N8N_JWT_ALGORITHM", "HS256")
    if alg not in ("HS256", "HS384", "HS512"):
        raise ConfigError("N8N_JWT_ALGORITHM", f"expected HS256, HS384 or HS512, got {alg!r}")
    kw["n8n_jwt_algorithm"] = alg

    for name, attr in (("BOT_ENFORCE", "bot_enforce"), ("SPAM_ENFORCE", "spam_enforce")):
        value = get(name)
        if value is not None:
            kw[attr] = _bool(name, value)
    patterns = get("SPAM_BLOCK_PATTERNS")
    if patterns:
        import re

        items = tuple(p for p in (x.strip() for x in patterns.split(",")) if p)
        for p in items:
            try:
                re.compile(p)
            except re.error as exc:
                raise ConfigError("SPAM_BLOCK_PATTERNS", f"bad pattern {p!r}: {exc}") from None
        kw["spam_block_patterns"] = items

    kw["metrics_token"] = get("METRICS_TOKEN")
    log_format = get("LOG_FORMAT", "text" if debug else "json")
    if log_format not in ("json", "text"):
        raise ConfigError("LOG_FORMAT", f"expected json or text, got {log_format!r}")
    kw["log_format"] = log_format
    level = (get("LOG_LEVEL", "INFO") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL", f"expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    kw["log_level"] = level
    return Settings(**kw)  # type: ignore[arg-type]


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
