"""API clients: keys for the callers that are not browsers (a mobile app, a site's backend).
Pure.

A key reads `qp_<id>_<secret>`: the id names the key (in logs, limits and the operator list)
and is found without scanning; the gateway stores only `id:sha256-hex(whole key)` (API_KEYS),
so a leaked configuration does not leak a usable key. Revoking a key is removing its entry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_KEY = re.compile(r"^qp_([a-z0-9]{1,32})_([A-Za-z0-9_-]{32,128})$")
_ENTRY = re.compile(r"^([a-z0-9]{1,32}):([0-9a-f]{64})$")
MAX_KEY_CHARS = 200


@dataclass(frozen=True, slots=True)
class ApiKeyPolicy:
    """The valid API keys (id -> sha256 digest). What a key may spend is its site's
    (`Site.rate_limit_api_key`, `Site.api_key_daily_quota`: guard.limit_api_client)."""

    digests: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def enabled(self) -> bool:
        return bool(self.digests)


class ApiKeyError(ValueError):
    """The presented key is malformed, unknown, revoked or wrong (one answer for all)."""


def parse_entries(text: str) -> Mapping[str, bytes]:
    """`id:sha256hex` entries, separated by commas or whitespace. ValueError names the first
    bad entry by position (never echoes it) or a repeated id."""
    out: dict[str, bytes] = {}
    for n, entry in enumerate(text.replace(",", " ").split(), 1):
        m = _ENTRY.match(entry)
        if m is None:
            raise ValueError(f"entry {n} is not `id:sha256-hex` (id: a-z, 0-9, up to 32)")
        if m[1] in out:
            raise ValueError(f"key id {m[1]!r} is listed twice")
        out[m[1]] = bytes.fromhex(m[2])
    return MappingProxyType(out)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


def key_id(policy: ApiKeyPolicy, presented: str) -> str:
    """The id of a valid key, or ApiKeyError. The digest is compared in constant time."""
    if len(presented) > MAX_KEY_CHARS or not presented.isascii():
        raise ApiKeyError("malformed")
    m = _KEY.match(presented.strip())
    if m is None:
        raise ApiKeyError("malformed")
    expected = policy.digests.get(m[1])
    # compared even for an unknown id, so timing does not tell which ids exist
    given = digest(presented.strip())
    if not hmac.compare_digest(given, expected or b"\0" * 32) or expected is None:
        raise ApiKeyError("unknown or wrong")
    return m[1]


def new_key(kid: str) -> tuple[str, str]:
    """A fresh key and its API_KEYS entry (`python -m quartproxy api-key <id>`)."""
    if not re.fullmatch(r"[a-z0-9]{1,32}", kid):
        raise ValueError("a key id is 1 to 32 of a-z, 0-9")
    key = f"qp_{kid}_{secrets.token_urlsafe(32)}"
    return key, f"{kid}:{digest(key).hex()}"
