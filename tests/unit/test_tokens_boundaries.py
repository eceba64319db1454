"""Exact boundaries of session-token verification: the expiry with its one-second leeway, the
4,096-character limit, claims of the wrong type, and the error code at every refusal. Each case
was a surviving mutant of core/tokens.py (see docs/mutation-testing.md)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from quartproxy.core.tokens import (
    LEEWAY_SECONDS,
    SessionClaims,
    _decode_session_token,
    check_binding,
    fingerprint_hash,
    issue_session_token,
    verify_session_token,
)
from quartproxy.errors import ApiError

SECRET = "b" * 40


def fresh(ttl: int = 600) -> tuple[str, SessionClaims]:
    """A token issued at the real time (PyJWT checks `exp` against the real clock too)."""
    return issue_session_token(
        SECRET, session_id="sid", origin="https://a.example", fph="", now=time.time(), ttl=ttl
    )


def signed(**changes: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sid": "s",
        "org": "https://a.example",
        "fph": "",
        "iat": now,
        "exp": now + 600,
        "jti": "j",
        "typ": "qp-session",
    }
    payload.update(changes)
    return jwt.encode(payload, SECRET, algorithm="HS256")


def refusal(token: str, now: float | None = None) -> ApiError:
    with pytest.raises(ApiError) as err:
        verify_session_token(SECRET, token, now=time.time() if now is None else now)
    assert err.value.status == 401  # every refusal of a token is a 401, whatever its code
    return err.value


def test_the_leeway_is_one_second() -> None:
    assert LEEWAY_SECONDS == 1.0


def test_a_token_is_good_until_exp_plus_the_leeway_and_not_a_moment_longer() -> None:
    token, claims = fresh()
    exp = claims.expires_at
    for now in (exp - 600, exp - 1, exp, exp + 0.5, exp + 1.0):
        assert verify_session_token(SECRET, token, now=now) == claims
    for now in (exp + 1.001, exp + 2, exp + 3600):
        err = refusal(token, now)
        assert (err.code, err.message) == ("unauthorized", "The session has expired.")


def test_issued_claims_carry_the_ttl() -> None:
    token, claims = fresh(ttl=90)
    assert claims.expires_at - claims.issued_at == 90
    assert verify_session_token(SECRET, token, now=claims.issued_at).expires_at == claims.expires_at
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["typ"] == "qp-session"


def of_length(n: int) -> str:
    """A valid signed session token of exactly `n` characters."""
    for jti in ("j", "jj", "jjj"):
        base = len(signed(jti=jti, pad=""))
        for pad in range((n - base) * 3 // 4 - 4, (n - base) * 3 // 4 + 4):
            token = signed(jti=jti, pad="x" * pad)
            if len(token) == n:
                return token
    raise AssertionError(f"no token of {n} characters")


def test_tokens_of_up_to_4096_characters_are_read() -> None:
    assert verify_session_token(SECRET, of_length(4096), now=time.time()).session_id == "s"
    err = refusal(of_length(4097))
    assert (err.code, err.message) == ("unauthorized", "A valid session token is required.")


@pytest.mark.parametrize("field", ["sid", "org", "fph", "jti"])
@pytest.mark.parametrize("value", [None, 1, ["x"], {"a": "b"}])
def test_a_signed_token_with_a_claim_of_the_wrong_type_is_unauthorized(
    field: str, value: object
) -> None:
    err = refusal(signed(**{field: value}))
    assert err.code == "unauthorized"


@pytest.mark.parametrize("iat", ["soon", [1], {"t": 1}])
def test_an_unreadable_iat_is_unauthorized(iat: object) -> None:
    err = refusal(signed(iat=iat))
    assert (err.code, err.message) == ("unauthorized", "A valid session token is required.")


@pytest.mark.parametrize("typ", [None, "", "qp-upstream", "qp-sessionX"])
def test_only_the_session_type_is_accepted(typ: object) -> None:
    changes: dict[str, Any] = {"typ": typ}
    err = refusal(signed(**changes))
    assert err.code == "unauthorized"


def test_error_codes_and_messages_at_each_refusal() -> None:
    cases: list[tuple[str, str]] = [
        ("", "A valid session token is required."),
        ("not-a-token", "A valid session token is required."),
        (signed(exp=int(time.time()) - 3600), "The session has expired."),
    ]
    for token, message in cases:
        err = refusal(token)
        assert (err.code, err.message) == ("unauthorized", message)


def test_binding_errors_name_the_site_or_the_browser() -> None:
    fph = fingerprint_hash("fp", SECRET)
    claims = SessionClaims("s", "https://a.example", fph, 0, 60, "j")
    check_binding(claims, origin="https://a.example", fph=fph)
    with pytest.raises(ApiError) as site:
        check_binding(claims, origin="https://b.example", fph=fph)
    assert site.value.status == browser_status(claims, fph) == 401
    assert (site.value.code, site.value.message) == (
        "session_mismatch",
        "This session belongs to another site.",
    )
    with pytest.raises(ApiError) as browser:
        check_binding(claims, origin="https://a.example", fph="")
    assert (browser.value.code, browser.value.message) == (
        "session_mismatch",
        "This session belongs to another browser.",
    )


def test_fingerprint_hash_is_32_hex_characters() -> None:
    h = fingerprint_hash("fp", SECRET)
    assert len(h) == 32
    int(h, 16)


def test_a_token_issued_by_a_clock_ahead_of_this_one_is_read() -> None:
    # `iat` is not checked (time is passed in; workers' clocks may differ by a little)
    ahead = time.time() + 3600
    token, claims = issue_session_token(
        SECRET, session_id="s", origin="o", fph="", now=ahead, ttl=600
    )
    assert verify_session_token(SECRET, token, now=ahead) == claims


def browser_status(claims: SessionClaims, fph: str) -> int:
    with pytest.raises(ApiError) as browser:
        check_binding(claims, origin="https://a.example", fph=fph + "0")
    return browser.value.status


def test_too_long_or_non_ascii_tokens_are_401() -> None:
    for token in (of_length(4097), "\u00e9" + fresh()[0][1:], "a\ud800.b.c"):
        assert refusal(token).code == "unauthorized"


def test_a_token_expiring_within_the_next_second_is_still_good() -> None:
    # exp is a whole second: a token whose exp is the next second is read on the real clock
    token = signed(exp=int(time.time()) + 1)
    assert verify_session_token(SECRET, token, now=time.time()).session_id == "s"


def test_an_expired_token_is_refused_before_it_reaches_the_cache() -> None:
    # the verified-token cache keeps successes only: an expired token must not take a slot
    expired = signed(exp=int(time.time()) - 3600)
    before = _decode_session_token.cache_info().currsize
    with pytest.raises(jwt.ExpiredSignatureError):
        _decode_session_token(SECRET, expired)
    assert _decode_session_token.cache_info().currsize == before
