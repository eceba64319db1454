"""Exact cases of the origin allowlist and of the client-IP walk, in both directions: what must
be let through and what must be refused (the property tests in test_origins_properties.py
cover the space; these pin the boundaries, and each was a surviving mutant without them)."""

from __future__ import annotations

import ipaddress

import pytest

from quartproxy.core.origins import OriginMatcher, client_ip, normalise_origin, parse_networks

# -- normalise_origin ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://a.example", "https://a.example"),
        ("HTTPS://A.Example", "https://a.example"),
        ("https://a.example:443", "https://a.example"),
        ("http://a.example:80", "http://a.example"),
        ("https://a.example:80", "https://a.example:80"),
        ("http://a.example:443", "http://a.example:443"),
        ("http://a.example:8080", "http://a.example:8080"),
        ("https://a_b-c.example", "https://a_b-c.example"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_serialised_origins_are_canonicalised(raw: str, canonical: str) -> None:
    assert normalise_origin(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "a.example",
        "ftp://a.example",
        "https://",
        "https://user@a.example",
        "https://user:pw@a.example",
        "https://@a.example",
        "https://a.example/",
        "https://a.example/path",
        "https://a.example?q=1",
        "https://a.example#f",
        " https://a.example",
        "https://a.example ",
        "https://a!b.example",
        "https://a.example:99999",
        "https://a.example:port",
    ],
)
def test_anything_but_a_serialised_origin_is_refused(raw: str) -> None:
    assert normalise_origin(raw) is None


def test_origin_length_limit_is_2048_characters() -> None:
    def of_length(n: int) -> str:
        return "https://" + "a" * (n - len("https://.example")) + ".example"

    assert normalise_origin(of_length(2048)) == of_length(2048)
    assert normalise_origin(of_length(2049)) is None


# -- OriginMatcher ------------------------------------------------------------------------------

ALLOWED = [
    "https://a.example",
    " http://b.example:8080 ",
    "https://*.c.example",
    "https://*.d.example:8443",
    "",
]


def test_every_exact_entry_is_honoured() -> None:
    m = OriginMatcher(ALLOWED)
    for origin in ("https://a.example", "http://b.example:8080"):
        assert m.allows(origin) is True
        assert m.canonical(origin) == origin
    assert m.exact == frozenset({"https://a.example", "http://b.example:8080"})


def test_non_canonical_spellings_of_an_entry_are_allowed_as_the_entry() -> None:
    m = OriginMatcher(ALLOWED)
    assert m.canonical("HTTPS://A.EXAMPLE:443") == "https://a.example"
    assert m.canonical("http://B.example:8080") == "http://b.example:8080"


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "null",
        "https://user@a.example",
        "https://a.example@evil.example",
        "https://a.example/",
        "https://a.example/x",
        "https://a.example?x",
        "http://a.example",
        "https://a.example:8443",
        "https://b.example:8080",
        "http://b.example",
        "https://a.example.evil.example",
        "https://c.example",
        "https://..c.example",
        "https://xc.example",
        "http://x.c.example",
        "https://x.c.example:444",
        "https://x.d.example",
        "https://user@x.c.example",
        "https://x.c.example/",
    ],
)
def test_userinfo_paths_and_near_misses_are_refused(origin: str | None) -> None:
    m = OriginMatcher(ALLOWED)
    assert m.allows(origin) is False
    assert m.canonical(origin) is None


def test_wildcards_allow_strict_subdomains_on_their_scheme_and_port() -> None:
    m = OriginMatcher(ALLOWED)
    assert m.canonical("https://x.c.example") == "https://x.c.example"
    assert m.canonical("https://X.Y.c.example:443") == "https://x.y.c.example"
    assert m.canonical("https://x.d.example:8443") == "https://x.d.example:8443"


def test_patterns_lists_the_exact_entries_sorted_then_the_wildcards() -> None:
    assert OriginMatcher(ALLOWED).patterns == (
        "http://b.example:8080",
        "https://a.example",
        "https://*.c.example",
        "https://*.d.example:8443",
    )


@pytest.mark.parametrize(
    "entry",
    [
        "a.example",
        "https://a.example/",
        "https://user@a.example",
        "ftp://a.example",
        "https://*.x*.example",
        "https://*.",
        "https://*..c.example",
        "https://*.c.example.",
        "https://*.c.example/path",
        "https://*.c.example://*.d.example",
        "*",
    ],
)
def test_a_malformed_entry_stops_start_up(entry: str) -> None:
    with pytest.raises(ValueError, match="bad origin"):
        OriginMatcher(["https://a.example", entry])


# -- parse_networks -----------------------------------------------------------------------------


def test_parse_networks() -> None:
    assert parse_networks(" 10.0.0.0/8, 192.168.1.7 ,,::1/128 ") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    assert parse_networks("") == ()
    assert parse_networks(" , ") == ()


@pytest.mark.parametrize("text", ["bogus", "10.0.0.0/8, 300.1.1.1", "10.0.0.0/33"])
def test_parse_networks_names_the_bad_entry(text: str) -> None:
    with pytest.raises(ValueError, match="bad network"):
        parse_networks(text)


# -- client_ip ----------------------------------------------------------------------------------

PROXIES = parse_networks("10.0.0.0/8, ::1/128")


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_ip("203.0.113.5", ["1.2.3.4"], PROXIES) == "203.0.113.5"
    assert client_ip("203.0.113.5:4444", ["1.2.3.4"], PROXIES) == "203.0.113.5"


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip("10.0.0.1", ["1.2.3.4"], ()) == "10.0.0.1"


def test_a_trusted_peer_hands_over_to_the_forwarded_hop() -> None:
    assert client_ip("10.0.0.1", ["1.2.3.4"], PROXIES) == "1.2.3.4"
    assert client_ip("10.0.0.1:5555", ["1.2.3.4"], PROXIES) == "1.2.3.4"
    assert client_ip("[::1]:443", ["1.2.3.4"], PROXIES) == "1.2.3.4"
    assert client_ip("::1", [" 1.2.3.4 "], PROXIES) == "1.2.3.4"


def test_the_walk_stops_at_the_first_untrusted_hop_from_the_right() -> None:
    # the left-most entry is whatever the client wrote: never believed past an untrusted hop
    assert client_ip("10.0.0.1", ["6.6.6.6, 1.2.3.4"], PROXIES) == "1.2.3.4"
    assert client_ip("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.0.0.7"], PROXIES) == "1.2.3.4"
    assert client_ip("10.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.2"], PROXIES) == "1.2.3.4"
    assert client_ip("10.0.0.1", ["6.6.6.6,1.2.3.4:8080"], PROXIES) == "1.2.3.4"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert client_ip("10.0.0.1", ["10.0.0.3, 10.0.0.2"], PROXIES) == "10.0.0.3"


@pytest.mark.parametrize("garbage", ["garbage", "", "[::1", "1.2.3.4:80:90", "unknown"])
def test_a_garbage_hop_stops_the_walk_at_the_last_believable_address(garbage: str) -> None:
    assert client_ip("10.0.0.1", [f"6.6.6.6, {garbage}, 10.0.0.2"], PROXIES) == "10.0.0.2"
    assert client_ip("10.0.0.1", [f"6.6.6.6, {garbage}"], PROXIES) == "10.0.0.1"


def test_a_trusted_peer_without_forwarded_for_is_the_client() -> None:
    assert client_ip("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_an_unparsable_peer_is_passed_through() -> None:
    assert client_ip(None, ["1.2.3.4"], PROXIES) == "unknown"
    assert client_ip("", ["1.2.3.4"], PROXIES) == "unknown"
    assert client_ip("unix:/run/qp.sock", ["1.2.3.4"], PROXIES) == "unix:/run/qp.sock"
