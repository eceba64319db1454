"""The per-site policies of API clients and signed visitors, built from the settings.

Today one implicit site: `Services` builds each policy once from the global settings. With a
site registry, each site builds its own with the same functions from its own values.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .config import Settings
from .core.api_keys import ApiKeyPolicy
from .core.identity import IdentityPolicy, load_public_keys


def api_key_policy(settings: Settings) -> ApiKeyPolicy:
    digests = {kid: bytes.fromhex(hexdigest) for kid, hexdigest in settings.api_keys}
    return ApiKeyPolicy(MappingProxyType(digests))


def identity_policy(settings: Settings) -> IdentityPolicy:
    rsa_keys: tuple[rsa.RSAPublicKey, ...] = ()
    ec_keys: tuple[ec.EllipticCurvePublicKey, ...] = ()
    if settings.identity_public_keys_file:  # checked when the settings were loaded
        pem = Path(settings.identity_public_keys_file).read_text(encoding="ascii")
        rsa_keys, ec_keys = load_public_keys(pem)
    return IdentityPolicy(
        settings.identity_audience,
        settings.identity_secrets,
        rsa_keys,
        ec_keys,
        settings.identity_max_lifetime_seconds,
    )
