"""The rules of each key of a `[sites.<id>]` table (core/sites.py): its type, its bounds, the
Settings value it defaults to. Pure. Errors name the key (`sites.<id>.<key>`) and never repeat
a secret's value. The minimums are those of the environment settings (config.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .limits import Rate
from .origins import OriginMatcher
from .sites import (
    ACCENT,
    ALGORITHMS,
    LANGUAGE,
    MIN_SECRET_BYTES,
    THEMES,
    Site,
    SiteError,
    WidgetDefaults,
)


def _int(minimum: int) -> Callable[[str, object], int]:
    def check(where: str, v: object) -> int:
        if type(v) is not int or v < minimum:
            raise SiteError(f"{where}: expected a whole number of at least {minimum}, got {v!r}")
        return v

    return check


def _number(minimum: float) -> Callable[[str, object], float]:
    def check(where: str, v: object) -> float:
        if type(v) not in (int, float) or not math.isfinite(v) or v < minimum:  # type: ignore[arg-type,operator]
            raise SiteError(f"{where}: expected a number of at least {minimum:g}, got {v!r}")
        return float(v)  # type: ignore[arg-type]

    return check


def _bool(where: str, v: object) -> bool:
    if type(v) is not bool:
        raise SiteError(f"{where}: expected true or false, got {v!r}")
    return v


def _rate(where: str, v: object) -> Rate:
    if not isinstance(v, str):
        raise SiteError(f'{where}: expected N/period such as "30/minute", got {v!r}')
    try:
        return Rate.parse(v)
    except ValueError as exc:
        raise SiteError(f"{where}: {exc}") from None


def _algorithm(where: str, v: object) -> str:
    if v not in ALGORITHMS:
        raise SiteError(f"{where}: expected {', '.join(ALGORITHMS)}, got {v!r}")
    return str(v)


def _patterns(where: str, v: object) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise SiteError(f"{where}: expected a list of regular expressions")
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise SiteError(f"{where}: bad pattern {p!r}: {exc}") from None
    return tuple(v)


def _origins(where: str, v: object) -> OriginMatcher:
    if not isinstance(v, list) or not v or not all(isinstance(o, str) for o in v):
        raise SiteError(f"{where}: expected a non-empty list of origins")
    try:
        return OriginMatcher(v)
    except ValueError as exc:
        raise SiteError(f"{where}: {exc}") from None


def _url(where: str, v: object) -> str:
    parts = urlsplit(v) if isinstance(v, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteError(f"{where}: expected an http(s) URL")
    return str(v)


def _api_keys(where: str, v: object) -> Mapping[str, bytes]:
    if not isinstance(v, list) or not all(isinstance(e, str) for e in v):
        raise SiteError(f'{where}: expected a list of "id:sha256-hex" entries')
    from .api_keys import parse_entries

    try:
        return parse_entries(" ".join(v))
    except ValueError as exc:
        raise SiteError(f"{where}: {exc}") from None


# key -> its check; every key defaults to the implicit site's (the environment's) value
_FIELDS: dict[str, Callable[[str, Any], object]] = {
    "origins": _origins,
    "webhook_url": _url,
    "upstream_algorithm": _algorithm,
    "rate_limit_ip": _rate,
    "rate_limit_session": _rate,
    "rate_limit_origin": _rate,
    "rate_limit_session_create": _rate,
    "quota_day": _int(0),
    "quota_month": _int(0),
    "bot_enforce": _bool,
    "bot_score_threshold": _int(1),
    "spam_enforce": _bool,
    "spam_block_patterns": _patterns,
    "spam_max_duplicates": _int(1),
    "spam_duplicate_window_seconds": _number(1),
    "spam_max_links": _int(0),
    "spam_max_char_run": _int(2),
    "history_retention_days": _number(0),
    "n8n_chat": _bool,
    "api_keys": _api_keys,
    "rate_limit_api_key": _rate,
    "api_key_daily_quota": _int(0),
}
REQUIRED = ("origins", "webhook_url")
SECRET_KEYS = ("upstream_secret", "upstream_secret_env")
_TEXT_LIMITS = {"title": 100, "greeting": 500, "language": 35, "theme": 5, "accent": 7}


def _secret(where: str, table: Mapping[str, Any], env: Mapping[str, str], debug: bool) -> str:
    """`upstream_secret` (in the file) or `upstream_secret_env` (the name of a variable)."""
    given = [k for k in SECRET_KEYS if k in table]
    if len(given) != 1:
        raise SiteError(f"{where}: set exactly one of upstream_secret, upstream_secret_env")
    if given[0] == "upstream_secret_env":
        name = table["upstream_secret_env"]
        if not isinstance(name, str) or not (env.get(name) or "").strip():
            raise SiteError(f"{where}.upstream_secret_env: variable {name!r} is not set")
        value = env[name].strip()
    else:
        value = table["upstream_secret"]
        if not isinstance(value, str):
            raise SiteError(f"{where}.upstream_secret: expected a string")
    if len(value.encode()) < MIN_SECRET_BYTES and not debug:
        raise SiteError(f"{where}.{given[0]}: must be at least {MIN_SECRET_BYTES} bytes long")
    return value


IDENTITY_KEYS = ("identity_secrets", "identity_secrets_env")


def _identity_secrets(
    where: str, table: Mapping[str, Any], env: Mapping[str, str], debug: bool
) -> tuple[str, ...]:
    """Optional: `identity_secrets` (a list in the file) or `identity_secrets_env` (the name of
    a variable holding them comma-separated), the current secret first (rotation: two)."""
    given = [k for k in IDENTITY_KEYS if k in table]
    if not given:
        return ()
    if len(given) != 1:
        raise SiteError(f"{where}: set at most one of identity_secrets, identity_secrets_env")
    key = given[0]
    if key == "identity_secrets_env":
        name = table[key]
        if not isinstance(name, str) or not (env.get(name) or "").strip():
            raise SiteError(f"{where}.{key}: variable {name!r} is not set")
        items = [p.strip() for p in env[name].split(",") if p.strip()]
    else:
        items = table[key]
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise SiteError(f"{where}.{key}: expected a list of secrets")
    if not items:
        raise SiteError(f"{where}.{key}: expected at least one secret")
    for n, secret in enumerate(items, 1):
        if len(secret.encode()) < MIN_SECRET_BYTES and not debug:
            raise SiteError(f"{where}.{key}: secret {n} must be at least {MIN_SECRET_BYTES} bytes")
    return tuple(items)


def _widget(where: str, v: object) -> WidgetDefaults:
    if not isinstance(v, dict):
        raise SiteError(f"{where}: expected a table")
    unknown = sorted(set(v) - set(_TEXT_LIMITS))
    if unknown:
        raise SiteError(f"{where}: unknown key {unknown[0]!r}")
    for key, text in v.items():
        if not isinstance(text, str) or len(text) > _TEXT_LIMITS[key]:
            raise SiteError(f"{where}.{key}: expected text of at most {_TEXT_LIMITS[key]} chars")
    if v.get("theme", "") not in ("", *THEMES):
        raise SiteError(f"{where}.theme: expected {', '.join(THEMES)}")
    if v.get("accent") and not ACCENT.match(v["accent"]):
        raise SiteError(f"{where}.accent: expected a colour as #rrggbb")
    if v.get("language") and not LANGUAGE.match(v["language"]):
        raise SiteError(f"{where}.language: expected a language tag such as en or pt-BR")
    return WidgetDefaults(**v)


def site_from_table(
    site_id: str, table: Mapping[str, Any], base: Site, env: Mapping[str, str], *, debug: bool
) -> Site:
    where = f"sites.{site_id}"
    known = set(_FIELDS) | set(SECRET_KEYS) | set(IDENTITY_KEYS) | {"widget"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SiteError(f"{where}: unknown key {unknown[0]!r}")
    for key in REQUIRED:
        if key not in table:
            raise SiteError(f"{where}.{key}: is required but not set")
    values = {
        key: check(f"{where}.{key}", table[key]) for key, check in _FIELDS.items() if key in table
    }
    values["upstream_secret"] = _secret(where, table, env, debug)
    values["widget"] = _widget(f"{where}.widget", table.get("widget", {}))
    values["identity_secrets"] = _identity_secrets(where, table, env, debug)
    return replace(base, id=site_id, implicit=False, **values)  # type: ignore[arg-type]
