from __future__ import annotations

import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.core.tokens import (
    check_binding,
    fingerprint_hash,
    issue_session_token,
    upstream_token,
    verify_session_token,
)
from quartproxy.errors import ApiError

SECRET = "s" * 40
NOW = time.time()


def issue(**kw):  # type: ignore[no-untyped-def]
    args = {"session_id": "sid", "origin": "https://a.example", "fph": "", "now": NOW, "ttl": 3600}
    args.update(kw)
    return issue_session_token(SECRET, **args)


def test_round_trip() -> None:
    token, claims = issue(fph="abc")
    got = verify_session_token(SECRET, token, now=NOW)
    assert got == claims
    assert got.expires_at - got.issued_at == 3600


def test_expired() -> None:
    token, _ = issue(now=NOW - 7200, ttl=60)
    with pytest.raises(ApiError) as e:
        verify_session_token(SECRET, token, now=NOW)
    assert e.value.code == "unauthorized"


def test_wrong_secret_and_tampering() -> None:
    token, _ = issue()
    with pytest.raises(ApiError):
        verify_session_token("t" * 40, token, now=NOW)
    head, body, sig = token.split(".")
    with pytest.raises(ApiError):
        verify_session_token(SECRET, f"{head}.{body}x.{sig}", now=NOW)


def claims() -> dict[str, object]:
    """A well-formed session-token payload, to be signed the wrong way by the tests."""
    return {
        "sid": "s",
        "org": "o",
        "fph": "",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
        "jti": "j",
        "typ": "qp-session",
    }


def test_alg_none_is_refused() -> None:
    payload = claims()
    token = jwt.encode(payload, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(ApiError):
        verify_session_token(SECRET, token, now=NOW)


def test_other_hs_algorithm_is_refused() -> None:
    payload = claims()
    with pytest.raises(ApiError):
        verify_session_token(SECRET, jwt.encode(payload, SECRET, algorithm="HS512"), now=NOW)


@pytest.mark.parametrize("missing", ["exp", "sid", "org", "fph", "jti", "iat"])
def test_required_claims(missing: str) -> None:
    payload = claims()
    del payload[missing]
    with pytest.raises(ApiError):
        verify_session_token(SECRET, jwt.encode(payload, SECRET, algorithm="HS256"), now=NOW)


def test_upstream_token_is_not_a_session_token() -> None:
    token = upstream_token(SECRET, session_id="s", origin="o", message_id="m", now=NOW)
    with pytest.raises(ApiError):
        verify_session_token(SECRET, token, now=NOW)


@pytest.mark.parametrize("junk", ["", "x", "a.b.c", "Bearer x", "." * 5000])
def test_junk_tokens(junk: str) -> None:
    with pytest.raises(ApiError):
        verify_session_token(SECRET, junk, now=NOW)


def test_binding() -> None:
    fph = fingerprint_hash("fp1", SECRET)
    _token, claims = issue(fph=fph)
    check_binding(claims, origin="https://a.example", fph=fph)
    for origin, fp in [
        ("https://b.example", "fp1"),
        (None, "fp1"),
        ("https://a.example", "fp2"),
        ("https://a.example", None),
    ]:
        with pytest.raises(ApiError) as e:
            check_binding(claims, origin=origin, fph=fingerprint_hash(fp, SECRET))
        assert e.value.code == "session_mismatch"


def test_fingerprint_hash_is_keyed_and_empty_for_none() -> None:
    assert fingerprint_hash(None, SECRET) == ""
    assert fingerprint_hash("", SECRET) == ""
    assert fingerprint_hash("fp", SECRET) != fingerprint_hash("fp", "k" * 40)
    assert "fp" not in fingerprint_hash("fp", SECRET)


def test_upstream_token_claims() -> None:
    NOW = time.time()  # the module's NOW may be older than the token's 30 s
    a = upstream_token(SECRET, session_id="s", origin="https://o", message_id="m", now=NOW)
    b = upstream_token(SECRET, session_id="s", origin="https://o", message_id="m", now=NOW)
    ca = jwt.decode(a, SECRET, algorithms=["HS256"])
    cb = jwt.decode(b, SECRET, algorithms=["HS256"])
    assert ca["exp"] - ca["iat"] == 30
    assert (ca["sid"], ca["origin"], ca["mid"]) == ("s", "https://o", "m")
    assert ca["jti"] != cb["jti"]
    assert jwt.get_unverified_header(a)["alg"] == "HS256"
    old = upstream_token(SECRET, session_id="s", origin="o", message_id="m", now=NOW - 31)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(old, SECRET, algorithms=["HS256"])


def test_a_remembered_token_still_expires_and_other_secrets_still_fail() -> None:
    """Verified tokens are cached; the cache must change no answer."""
    now = time.time()  # not the module's NOW: the real clock is checked too
    token, _ = issue(now=now, ttl=600)
    assert verify_session_token(SECRET, token, now=now).session_id  # verified, now cached
    assert verify_session_token(SECRET, token, now=now + 30).session_id  # from the cache
    with pytest.raises(ApiError) as err:
        verify_session_token(SECRET, token, now=now + 3600)  # the cached token has expired
    assert err.value.message == "The session has expired."
    with pytest.raises(ApiError):
        verify_session_token("t" * 40, token, now=now)  # the cache is per secret
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"  # a byte of the MAC
    for _ in range(2):  # a failure is never remembered as a success
        with pytest.raises(ApiError):
            verify_session_token(SECRET, forged, now=now)


def test_a_token_expired_by_the_real_clock_fails_even_with_an_earlier_clock_passed() -> None:
    real = time.time()
    token, _ = issue(now=real - 7200, ttl=60)
    with pytest.raises(ApiError):
        verify_session_token(SECRET, token, now=real - 7190)


# -- total on any input (issue 13, finding 6: a lone surrogate was a 1011 and a traceback) ------

ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=300)  # includes surrogates


@given(ANY_TEXT)
def test_verify_refuses_any_string_with_a_token_error_only(token: str) -> None:
    with pytest.raises(ApiError):
        verify_session_token(SECRET, token, now=NOW)


@given(ANY_TEXT, ANY_TEXT)
def test_binding_checks_are_total(fingerprint: str, origin: str) -> None:
    fph = fingerprint_hash(fingerprint, SECRET)
    assert fph == "" or len(fph) == 32
    _token, claims = issue(fph=fingerprint_hash("fp1", SECRET))
    with pytest.raises(ApiError) as e:
        check_binding(claims, origin=origin, fph=fph)
    assert e.value.code == "session_mismatch"


@pytest.mark.parametrize(
    "token", ["\ud800", "eyJ\udfff.eyJ.x", "é" * 10, "a.b.c\x00", "\uff41.\uff42.\uff43"]
)
def test_non_ascii_tokens_are_refused(token: str) -> None:
    with pytest.raises(ApiError):
        verify_session_token(SECRET, token, now=NOW)


def test_a_lone_surrogate_fingerprint_hashes_and_mismatches() -> None:
    assert fingerprint_hash("\ud800", SECRET) != fingerprint_hash("\udc00", SECRET)
    _token, claims = issue(fph=fingerprint_hash("fp1", SECRET))
    with pytest.raises(ApiError):
        check_binding(claims, origin="https://a.example", fph=fingerprint_hash("\ud800", SECRET))
    with pytest.raises(ApiError):
        check_binding(claims, origin="https://\xfc.example", fph=fingerprint_hash("fp1", SECRET))


def _signed(payload: object) -> str:
    body = payload if isinstance(payload, bytes) else __import__("json").dumps(payload).encode()
    return jwt.PyJWS().encode(body, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        {"sid": "s", "org": "o", "fph": "", "jti": "j", "iat": 1, "typ": "qp-session"},  # no exp
        {
            "sid": "s",
            "org": "o",
            "fph": "",
            "jti": "j",
            "exp": "9999999999",
            "iat": 1,
            "typ": "qp-session",
        },
        {"sid": "s", "org": "o", "fph": "", "jti": "j", "exp": 9e9, "iat": 1, "typ": "qp-session"},
        {"sid": "s", "org": "o", "fph": "", "jti": "j", "exp": True, "iat": 1, "typ": "qp-session"},
        {"sid": "s", "org": "o", "fph": "", "exp": 9999999999, "iat": 1, "typ": "qp-session"},
    ],
)
def test_correctly_signed_but_malformed_claims_are_refused(payload: object) -> None:
    """The claim checks PyJWT.decode did (JSON object, required claims, integer exp/iat)
    are ours now that tokens are decoded with the public PyJWS."""
    with pytest.raises(ApiError) as e:
        verify_session_token(SECRET, _signed(payload), now=NOW)
    assert e.value.status == 401


def test_tokens_module_uses_no_private_pyjwt_attribute() -> None:
    """PyJWT._jws exists only from 2.11 while pyjwt>=2.8 is allowed: an older install failed
    at import. Only PyJWT's public names may be used."""
    import ast
    from pathlib import Path

    import quartproxy.core.tokens as tokens

    tree = ast.parse(Path(tokens.__file__).read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
