"""core.identity: the user token a site's backend signs, checked as an attacker would try it."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from quartproxy.core.identity import (
    IdentityPolicy,
    VerifiedUser,
    load_public_keys,
    user_key,
    verify_user_token,
)
from quartproxy.errors import ApiError

NOW = 1_800_000_000.0
SECRET = "s" * 40
OLD_SECRET = "o" * 40
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())


def pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


RSA_KEYS, EC_KEYS = load_public_keys(pem(RSA) + pem(EC))
POLICY = IdentityPolicy("site-a", (SECRET, OLD_SECRET), RSA_KEYS, EC_KEYS, max_lifetime=3600)


def claims(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "user-1", "aud": "site-a", "exp": int(NOW) + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def hs(payload: dict[str, object], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def refused(token: object, policy: IdentityPolicy = POLICY) -> ApiError:
    with pytest.raises(ApiError) as caught:
        verify_user_token(policy, token, now=NOW)
    return caught.value


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_hs256_token_gives_its_user_with_name_and_email() -> None:
    token = hs(claims(name="Ada", email="ada@example.org"))
    assert verify_user_token(POLICY, token, now=NOW) == VerifiedUser(
        "user-1", "Ada", "ada@example.org"
    )


def test_rs256_and_es256_tokens_are_accepted_with_their_key_kind() -> None:
    assert verify_user_token(POLICY, jwt.encode(claims(), RSA, "RS256"), now=NOW).sub == "user-1"
    assert verify_user_token(POLICY, jwt.encode(claims(), EC, "ES256"), now=NOW).sub == "user-1"


def test_the_previous_secret_still_verifies_during_a_rotation() -> None:
    assert verify_user_token(POLICY, hs(claims(), OLD_SECRET), now=NOW).sub == "user-1"


@pytest.mark.parametrize(
    "token",
    [
        hs(claims(), "x" * 40),  # forged: another secret
        hs(claims(exp=int(NOW) - 60)),  # expired
        hs(claims(aud="site-b")),  # another site's visitor
        hs(claims(aud=None)),  # no audience
        hs(claims(exp=None)),  # no expiry
        hs(claims(exp=int(NOW) + 86400)),  # lives far too long
        hs(claims(sub=None)),
        hs(claims(sub="")),
        hs(claims(sub="x" * 257)),
        hs(claims(sub=42)),
        hs(claims(), key="k" * 64, alg="HS512"),  # algorithm not pinned for this key kind
        jwt.encode(claims(), RSA, "RS512"),
        jwt.encode(claims(), RSA, "PS256"),
        "",
        "not.a.jwt",
        "a" * 9000,
        "é.é.é",
        None,
        42,
    ],
)
def test_bad_tokens_are_refused_with_401(token: object) -> None:
    err = refused(token)
    assert (err.status, err.code) == (401, "unauthorized")


def test_alg_none_is_refused() -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert refused(token).status == 401


def test_rs_to_hs_confusion_is_refused() -> None:
    """HS256 'signed' with the public key text: no HS secret is that text, and the RSA key is
    never used with an HMAC algorithm."""
    assert refused(_hmac_with(pem(RSA))).status == 401


def _hmac_with(key: str) -> str:
    import hashlib
    import hmac

    head = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims())
    sig = hmac.new(key.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def test_an_rs256_token_signed_by_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(jwt.encode(claims(), other, "RS256")).status == 401


def test_a_token_with_the_wrong_key_kind_for_its_alg_is_refused() -> None:
    only_hs = IdentityPolicy("site-a", (SECRET,))
    assert refused(jwt.encode(claims(), RSA, "RS256"), only_hs).status == 401


def test_a_site_without_identity_keys_refuses_user_tokens_as_bad_request() -> None:
    err = refused(hs(claims()), IdentityPolicy("site-a"))
    assert (err.status, err.code) == (400, "bad_request")


def test_name_and_email_of_the_wrong_type_are_dropped_not_passed_on() -> None:
    user = verify_user_token(POLICY, hs(claims(name=["x"], email="e" * 300)), now=NOW)
    assert user == VerifiedUser("user-1")


def test_verified_user_round_trips_through_its_claims() -> None:
    user = VerifiedUser("u", "N", None)
    assert VerifiedUser.from_claims(user.claims()) == user
    assert VerifiedUser.from_claims({"sub": ""}) is None
    assert VerifiedUser.from_claims("u") is None


def test_load_public_keys_refuses_private_keys_and_garbage() -> None:
    private = RSA.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for text in (private, "", "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n"):
        with pytest.raises(ValueError):
            load_public_keys(text)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        load_public_keys(pem(small))


def test_user_key_separates_sites_users_and_secrets() -> None:
    a = user_key(SECRET, "site-a", "u1")
    assert a == user_key(SECRET, "site-a", "u1")
    assert (
        len(
            {
                a,
                user_key(SECRET, "site-b", "u1"),
                user_key(SECRET, "site-a", "u2"),
                user_key(OLD_SECRET, "site-a", "u1"),
                user_key(SECRET, 'site-a"', "u1"),
            }
        )
        == 5
    )
    assert "u1" not in a[1:]
