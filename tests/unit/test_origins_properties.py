"""Property tests of the origin allowlist: anchoring holds for any string, canonical spellings
of an allowed origin are allowed."""

from __future__ import annotations

import re

from hypothesis import assume, example, given
from hypothesis import strategies as st

from quartproxy.core.origins import OriginMatcher, normalise_origin

MATCHER = OriginMatcher(["https://*.example.com", "http://app.test:8443", "https://exact.org"])

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
HOSTISH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:/@?#*[]%ABCXYZ", max_size=30)
ANY = st.text(max_size=60)


def is_sanctioned(canonical: str) -> bool:
    """An independent statement of what the allowlist above means."""
    if canonical in ("http://app.test:8443", "https://exact.org"):
        return True
    return re.fullmatch(r"https://[a-z0-9_-]+(\.[a-z0-9_-]+)*\.example\.com", canonical) is not None


@given(ANY)
@example("https://x.example.com.evil.net")
@example("https://evilexample.com")
@example("https://example.com")
@example("https://.example.com")
@example("http://x.example.com")
@example("https://x.example.com:444")
@example("null")
@example("https://user@x.example.com")
@example("https://\xfc.example.com")  # a Latin-1 Origin header (was allowed, then a 500)
@example("https://x\u00b2.example.com")  # a Unicode digit passes str.isalnum
def test_anything_allowed_is_sanctioned(origin: str) -> None:
    canonical = MATCHER.canonical(origin)
    if canonical is not None:
        assert is_sanctioned(canonical), (origin, canonical)


@given(st.lists(LABEL, min_size=1, max_size=4))
def test_every_subdomain_is_allowed_in_its_canonical_spellings(labels: list[str]) -> None:
    host = ".".join(labels) + ".example.com"
    canonical = f"https://{host}"
    for spelling in (canonical, f"HTTPS://{host.upper()}", f"https://{host}:443"):
        assert MATCHER.canonical(spelling) == canonical


@given(st.lists(LABEL, min_size=1, max_size=3), HOSTISH.filter(bool))
def test_suffixes_after_an_allowed_host_never_widen_it(labels: list[str], suffix: str) -> None:
    origin = "https://" + ".".join(labels) + ".example.com" + suffix
    canonical = MATCHER.canonical(origin)
    assert canonical is None or is_sanctioned(canonical)
    if suffix.startswith("."):
        # x.example.com.<anything> is another domain unless it ends in .example.com again
        assume(not suffix.lower().rstrip(".").endswith(".example.com"))
        assert canonical is None


@given(HOSTISH)
def test_prefixes_glued_to_the_domain_never_match(prefix: str) -> None:
    assume(prefix and not prefix.endswith("."))
    assert MATCHER.canonical(f"https://{prefix}example.com") is None


@given(LABEL, st.sampled_from(["http", "ftp", "ws", "wss", "HTTP"]))
def test_wildcards_are_scheme_bound(label: str, scheme: str) -> None:
    assert not MATCHER.allows(f"{scheme}://{label}.example.com")


@given(HOSTISH.filter(bool))
def test_exact_origins_take_nothing_extra(extra: str) -> None:
    for base in ("http://app.test:8443", "https://exact.org"):
        for origin in (base + extra, extra + base):
            canonical = MATCHER.canonical(origin)
            assert canonical is None or is_sanctioned(canonical), origin


@given(ANY)
def test_normalise_is_idempotent(origin: str) -> None:
    once = normalise_origin(origin)
    if once is not None:
        assert normalise_origin(once) == once
