"""Session tokens (browser ↔ proxy) and upstream tokens (proxy → n8n). Pure: time is passed in.

Algorithms are pinned on both sides: a session token is only ever accepted as HS256 signed with
JWT_SECRET_KEY (so neither `alg: none` nor HS/RS confusion can get through), `exp` is required,
and the leeway is one second.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from ..errors import ApiError
from .sites import IMPLICIT_ID

SESSION_ALG = "HS256"
UPSTREAM_TTL_SECONDS = 30
UPSTREAM_USER_CLAIM = "verified_user"
LEEWAY_SECONDS = 1.0
_REQUIRED = ["exp", "iat", "sid", "org", "fph", "jti"]


class _KeyCachingHMAC(HMACAlgorithm):
    """PyJWT's HMAC, remembering prepared keys. PyJWT 2.10+ vets an HMAC secret on every
    encode and decode (PEM, SSH and DER sniffing, a json.loads attempt): ~1.7 % of the worker's
    CPU per chat turn (two tokens), for the same one or two configured secrets. The vetting
    still runs, once per distinct secret; a secret it refuses is never cached."""

    def __init__(self, hash_alg: object) -> None:
        super().__init__(hash_alg)  # type: ignore[arg-type]
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) < 16:
                self._prepared[key] = prepared
        return prepared


def _jws_api() -> jwt.PyJWS:
    """PyJWS (public API since PyJWT 2.0) with the key-caching HMACs. Not PyJWT: swapping the
    algorithms of a PyJWT instance needs its private `_jws` (PyJWT 2.11+ only). The claims
    PyJWT would check (exp, required fields) are checked in verify_session_token."""
    api = jwt.PyJWS()
    for name, hash_alg in (
        ("HS256", HMACAlgorithm.SHA256),
        ("HS384", HMACAlgorithm.SHA384),
        ("HS512", HMACAlgorithm.SHA512),
    ):
        api.unregister_algorithm(name)
        api.register_algorithm(name, _KeyCachingHMAC(hash_alg))
    return api


_JWS = _jws_api()


def _encode(payload: dict[str, Any], secret: str, algorithm: str) -> str:
    """What PyJWT.encode does for a plain payload: compact JSON, header {typ: JWT, alg}."""
    return _JWS.encode(
        json.dumps(payload, separators=(",", ":")).encode(), secret, algorithm=algorithm
    )


@dataclass(frozen=True, slots=True)
class SessionClaims:
    session_id: str
    origin: str
    fingerprint_hash: str  # "" when the session was created without a fingerprint
    issued_at: int
    expires_at: int
    token_id: str
    # A signed visitor's checked claims (core.identity.VerifiedUser.claims), else None
    user: dict[str, str] | None = None
    site: str = IMPLICIT_ID  # the site it was issued for (core/sites.py); absent: the implicit one


def _utf8(text: str) -> bytes:
    """Any Python string as bytes: JSON input may hold lone surrogates ("\\ud800"), which
    plain UTF-8 refuses with an exception (issue 13: a 1011 and a traceback per socket)."""
    return text.encode("utf-8", "surrogatepass")


def fingerprint_hash(fingerprint: str | None, secret: str) -> str:
    """Keyed hash of the widget's fingerprint: the raw value is never stored or signed.
    Total: any string hashes (a fingerprint is opaque; one with lone surrogates simply never
    matches a browser's)."""
    if not fingerprint:
        return ""
    return hmac.new(_utf8(secret), _utf8(fingerprint), hashlib.sha256).hexdigest()[:32]


def issue_session_token(
    secret: str,
    *,
    session_id: str,
    origin: str,
    fph: str,
    now: float,
    ttl: float,
    user: dict[str, str] | None = None,
    site: str = IMPLICIT_ID,
) -> tuple[str, SessionClaims]:
    """`user`: claims the gateway has verified (core.identity), carried as `usr`; `site`: the
    site it is good for, carried as `ste`."""
    iat = int(now)
    claims = SessionClaims(
        session_id, origin, fph, iat, iat + int(ttl), uuid.uuid4().hex, user=user, site=site
    )
    payload: dict[str, Any] = {
        "sid": session_id,
        "org": origin,
        "fph": fph,
        "iat": iat,
        "exp": claims.expires_at,
        "jti": claims.token_id,
        "typ": "qp-session",
        "ste": site,
    }
    if user is not None:
        payload["usr"] = user
    return _encode(payload, secret, SESSION_ALG), claims


@functools.lru_cache(maxsize=4096)
def _decode_session_token(secret: str, token: str) -> dict[str, Any]:
    """The verified payload. A visitor presents the same token with every message, and the
    signature check and decoding were ~4 % of a chat turn's CPU on the bench: a token that
    verified once is remembered (read-only; expiry is re-checked on every use by the caller).
    Only successes are cached — a failed check raises and leaves nothing behind, so forged
    tokens can neither fill nor poison the cache. Revocation is the store's job, not this."""
    raw = _JWS.decode_complete(token, secret, algorithms=[SESSION_ALG])["payload"]
    try:
        payload = json.loads(raw)
    except ValueError:
        raise jwt.DecodeError("the payload is not JSON") from None
    if not isinstance(payload, dict) or not all(claim in payload for claim in _REQUIRED):
        raise jwt.MissingRequiredClaimError("a required claim")
    for claim in ("exp", "iat"):
        if type(payload[claim]) is not int:  # what PyJWT requires of exp/iat (no bool, text)
            raise jwt.DecodeError(f"{claim} must be an integer")
    if payload["exp"] + LEEWAY_SECONDS < time.time():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return payload


def verify_session_token(secret: str, token: str, *, now: float) -> SessionClaims:
    """Signature, algorithm and expiry. Binding to origin and fingerprint is `check_binding`.
    Any string in, ApiError (401) or claims out: a JWT is ASCII (base64url and dots), so anything
    else is refused before PyJWT sees it (it would raise UnicodeEncodeError on a surrogate)."""
    if not token or len(token) > 4096 or not token.isascii():
        raise ApiError(401, "unauthorized", "A valid session token is required.")
    try:
        payload = _decode_session_token(secret, token)
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "unauthorized", "The session has expired.") from None
    except jwt.PyJWTError:
        raise ApiError(401, "unauthorized", "A valid session token is required.") from None
    # exp is checked against the real clock on the first decode (later ones come from the
    # cache, so it is checked again here); we check against `now` too so tests and callers
    # that pass a clock get the same answer.
    exp, iat = payload["exp"], payload["iat"]  # ints: _decode_session_token checked their type
    expired = exp + LEEWAY_SECONDS < max(now, time.time())
    if expired or payload.get("typ") != "qp-session":
        raise ApiError(401, "unauthorized", "The session has expired.")
    site = payload.get("ste", IMPLICIT_ID)
    fields = (payload["sid"], payload["org"], payload["fph"], payload["jti"], site)
    if not all(isinstance(f, str) for f in fields):
        raise ApiError(401, "unauthorized", "A valid session token is required.")
    user = _user_claims(payload.get("usr"))
    sid, org, fph, jti = fields[:4]
    return SessionClaims(sid, org, fph, iat, exp, jti, user=user, site=site)


def _user_claims(raw: object) -> dict[str, str] | None:
    """`usr` as we signed it: string values only (anything else is not ours: refused)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ApiError(401, "unauthorized", "A valid session token is required.")
    if not isinstance(raw.get("sub"), str):
        raise ApiError(401, "unauthorized", "A valid session token is required.")
    return {str(k): v for k, v in raw.items() if k in ("sub", "name", "email")}


def check_binding(claims: SessionClaims, *, origin: str | None, fph: str) -> None:
    """A token is only good from the origin and the browser it was issued to. Compared as
    bytes: compare_digest raises TypeError on a non-ASCII str (an Origin header is Latin-1)."""
    if origin is None or not hmac.compare_digest(_utf8(claims.origin), _utf8(origin)):
        raise ApiError(401, "session_mismatch", "This session belongs to another site.")
    if not hmac.compare_digest(_utf8(claims.fingerprint_hash), _utf8(fph)):
        raise ApiError(401, "session_mismatch", "This session belongs to another browser.")


def upstream_token(
    secret: str,
    *,
    session_id: str,
    origin: str,
    message_id: str,
    now: float,
    algorithm: str = "HS256",
    user: dict[str, str] | None = None,
    files: Sequence[str] = (),
) -> str:
    """The 30-second token n8n's JWT Auth checks. The secret is used as its UTF-8 text,
    exactly as it is typed into the n8n credential. `user`: a signed visitor's verified
    claims, under `verified_user` (absent for anonymous visitors: the body's `metadata` is
    what the visitor said, never what was checked). `files`: the SHA-256 (hex) of each
    attached file, in the order of the parts, so a workflow can check what it received is
    what the visitor sent through the proxy (claim absent without files)."""
    iat = int(now)
    payload: dict[str, Any] = {
        "iat": iat,
        "exp": iat + UPSTREAM_TTL_SECONDS,
        "jti": uuid.uuid4().hex,
        "sid": session_id,
        "origin": origin,
        "mid": message_id,
    }
    if user is not None:
        payload[UPSTREAM_USER_CLAIM] = user
    if files:
        payload["files"] = list(files)
    return _encode(payload, secret, algorithm)
