"""Signed visitors: a site's backend vouches for its logged-in visitor with a short JWT (the
"user token"), which the widget hands to the gateway on session create. Pure: time is passed in.

What is checked, and why (docs/identity.md):
- the algorithm is pinned by the KIND of key: HS256 only with the identity secrets, RS256 only
  with RSA public keys, ES256 only with P-256 public keys. A token's `alg` merely selects which
  of the configured keys to try, so `none`, HS384, or HS256 "signed" with a public key (the RS->HS
  confusion) find no key and are refused;
- `exp` is required and at most `max_lifetime` ahead (a short token, not a forever credential);
- `aud` must name this site (`IdentityPolicy.audience`);
- `sub` is a non-empty string of bounded length; `name` and `email` are kept only when they
  are strings of bounded length (anything else is dropped, never passed on).
Several keys of one kind are accepted at once, so a secret can be rotated without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..errors import ApiError

LEEWAY_SECONDS = 5
MAX_TOKEN_CHARS = 8192
MAX_SUB_CHARS = 256
MAX_TEXT_CHARS = 256
_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """How one site's user tokens are checked. `enabled` is False when no key is configured:
    a user token is then refused (never silently ignored nor trusted)."""

    audience: str
    hs_secrets: tuple[str, ...] = ()
    rsa_keys: tuple[rsa.RSAPublicKey, ...] = ()
    ec_keys: tuple[ec.EllipticCurvePublicKey, ...] = ()
    max_lifetime: float = 3600.0

    @property
    def enabled(self) -> bool:
        return bool(self.hs_secrets or self.rsa_keys or self.ec_keys)

    def keys_for(self, alg: object) -> Sequence[Any]:
        """The keys a token signed with `alg` may be checked against: none for any other."""
        if alg == "HS256":
            return self.hs_secrets
        if alg == "RS256":
            return self.rsa_keys
        if alg == "ES256":
            return self.ec_keys
        return ()


@dataclass(frozen=True, slots=True)
class VerifiedUser:
    """Claims the gateway checked. Only these reach the session token and n8n as verified."""

    sub: str
    name: str | None = None
    email: str | None = None

    def claims(self) -> dict[str, str]:
        out = {"sub": self.sub}
        if self.name is not None:
            out["name"] = self.name
        if self.email is not None:
            out["email"] = self.email
        return out

    @classmethod
    def from_claims(cls, raw: object) -> VerifiedUser | None:
        """Back from `claims()` (as carried inside our own signed session token)."""
        if not isinstance(raw, dict):
            return None
        sub = raw.get("sub")
        if not isinstance(sub, str) or not sub:
            return None
        return cls(sub, _text(raw.get("name")), _text(raw.get("email")))


def load_public_keys(
    pem: str,
) -> tuple[tuple[rsa.RSAPublicKey, ...], tuple[ec.EllipticCurvePublicKey, ...]]:
    """RSA and P-256 keys from PEM text holding one or more `PUBLIC KEY` blocks. ValueError
    names the first block that is not one (a private key, another curve, garbage)."""
    blocks = [b for b in pem.split(_PEM_BEGIN)[1:]]
    if not blocks:
        raise ValueError("no `-----BEGIN PUBLIC KEY-----` block")
    rsa_keys: list[rsa.RSAPublicKey] = []
    ec_keys: list[ec.EllipticCurvePublicKey] = []
    for n, block in enumerate(blocks, 1):
        try:
            key = load_pem_public_key((_PEM_BEGIN + block).strip().encode())
        except ValueError:
            raise ValueError(f"key {n} is not a PEM public key") from None
        if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            rsa_keys.append(key)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            ec_keys.append(key)
        else:
            raise ValueError(f"key {n} is neither RSA (2048 bits or more) nor EC P-256")
    return tuple(rsa_keys), tuple(ec_keys)


def _text(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_TEXT_CHARS:
        return value
    return None


def _refuse(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def verify_user_token(policy: IdentityPolicy, token: object, *, now: float) -> VerifiedUser:
    """The user the token vouches for, or ApiError 401 `unauthorized` (400 `bad_request` when
    this site signs no visitors). Any value in; never raises anything else."""
    if not policy.enabled:
        raise ApiError(400, "bad_request", "This site does not accept signed visitors.")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _refuse("The visitor's sign-in token is not valid.")
    if not token.isascii():
        raise _refuse("The visitor's sign-in token is not valid.")
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        raise _refuse("The visitor's sign-in token is not valid.") from None
    payload: dict[str, Any] | None = None
    for key in policy.keys_for(alg):
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=policy.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "aud"], "verify_exp": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # another key of this kind (rotation) may have signed it
        except jwt.PyJWTError:
            raise _refuse("The visitor's sign-in token is not valid.") from None
    if payload is None:
        raise _refuse("The visitor's sign-in token is not valid.")
    return _checked_claims(policy, payload, now)


def _checked_claims(policy: IdentityPolicy, payload: dict[str, Any], now: float) -> VerifiedUser:
    exp = payload.get("exp")
    if type(exp) not in (int, float) or not isinstance(exp, int | float):  # bool is no time
        raise _refuse("The visitor's sign-in token is not valid.")
    if exp + LEEWAY_SECONDS < now:
        raise _refuse("The visitor's sign-in has expired.")
    if exp > now + policy.max_lifetime + LEEWAY_SECONDS:
        raise _refuse("The visitor's sign-in token lives too long.")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_CHARS:
        raise _refuse("The visitor's sign-in token is not valid.")
    return VerifiedUser(sub, _text(payload.get("name")), _text(payload.get("email")))


def user_key(secret: str, audience: str, sub: str) -> str:
    """The store's key for one signed user of one site: a keyed hash (bounded, no injection,
    and the user id cannot be read back from the store or from logs)."""
    msg = json.dumps([audience, sub]).encode("utf-8", "surrogatepass")
    digest = hmac.new(secret.encode("utf-8", "surrogatepass"), msg, hashlib.sha256)
    return "u" + digest.hexdigest()[:40]
