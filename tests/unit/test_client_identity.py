"""Who a request is for the per-IP budgets (core.origins.rate_key, guard.make_caller):
IPv4 by address, IPv6 by its /RATE_LIMIT_IPV6_PREFIX network, transition forms by the IPv4
address they carry — and every per-IP tier (chat, read, session create) keyed the same way."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy import guard
from quartproxy.config import ConfigError, load_settings
from quartproxy.core.limits import Rate
from quartproxy.core.origins import (
    DEFAULT_IPV6_PREFIX,
    client_ip,
    embedded_ipv4,
    is_local,
    is_trusted,
    parse_ipv6_prefix,
    parse_networks,
    parse_peer,
    rate_key,
)
from quartproxy.errors import ApiError
from quartproxy.store import MemoryStore

LOOPBACK = parse_networks("127.0.0.1/32,::1/128")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:5555", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped: a dual-stack socket's IPv4 peer
        ("[::ffff:203.0.113.7]:443", "203.0.113.7"),
        ("::ffff:cb00:7107", "203.0.113.7"),
        ("64:ff9b::cb00:7107", "203.0.113.7"),  # NAT64 (RFC 6052)
        ("2002:cb00:7107:1::1", "203.0.113.7"),  # 6to4: every subnet of the /48
        ("2002:cb00:7107:ffff::2", "203.0.113.7"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo: client's public v4
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::9]:8080", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),  # the zone id is dropped
        ("::1", "::/64"),
        ("unknown", "unknown"),
        ("not an ip", "not an ip"),
    ],
)
def test_rate_key(address: str, key: str) -> None:
    assert rate_key(address) == key
    assert rate_key(address, DEFAULT_IPV6_PREFIX) == key


def test_two_addresses_of_one_64_share_a_key_and_the_next_64_does_not() -> None:
    a = rate_key("2001:db8:aa:bb::1")
    assert a == rate_key("2001:db8:aa:bb:ffff:1234:5678:9abc")
    assert a != rate_key("2001:db8:aa:bc::1")


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        (32, "2001:db8::/32"),
        (48, "2001:db8:1::/48"),
        (56, "2001:db8:1:200::/56"),
        (60, "2001:db8:1:230::/60"),
        (127, "2001:db8:1:234:5:6:7:8/127"),
        (128, "2001:db8:1:234:5:6:7:9/128"),
    ],
)
def test_rate_key_with_other_prefixes(prefix: int, key: str) -> None:
    assert rate_key("2001:db8:1:234:5:6:7:9", prefix) == key


@pytest.mark.parametrize("prefix", [0, 31, 129])
def test_rate_key_refuses_an_out_of_range_prefix(prefix: int) -> None:
    with pytest.raises(ValueError):
        rate_key("2001:db8::1", prefix)
    assert rate_key("192.0.2.1", prefix) == "192.0.2.1"  # IPv4 never needs it


@given(st.integers(0, 2**128 - 1), st.integers(32, 128))
def test_every_ipv6_address_is_keyed_by_the_network_that_contains_it(n: int, prefix: int) -> None:
    ip = ipaddress.IPv6Address(n)
    key = rate_key(str(ip), prefix)
    if "/" in key:
        net = ipaddress.IPv6Network(key)
        assert ip in net and net.prefixlen == prefix
        # another address in the same network shares the key (unless that one is itself a
        # transition form: ::/80 holds the IPv4-mapped range, which is keyed by its IPv4)
        other = net.broadcast_address
        if embedded_ipv4(other) is None:
            assert rate_key(str(other), prefix) == key
    else:  # a transition form: keyed by the IPv4 address it carries
        assert isinstance(ipaddress.ip_address(key), ipaddress.IPv4Address)


@given(st.integers(0, 2**32 - 1))
def test_ipv4_and_its_mapped_form_are_one_key(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    assert rate_key(str(v4)) == str(v4) == rate_key(f"::ffff:{v4}")


@pytest.mark.parametrize(("text", "value"), [("64", 64), ("/48", 48), (" 128 ", 128), ("32", 32)])
def test_parse_ipv6_prefix(text: str, value: int) -> None:
    assert parse_ipv6_prefix(text) == value


@pytest.mark.parametrize("text", ["", "31", "129", "0", "6\uff14", "+64", "64.0", "/", "//64", "x"])
def test_parse_ipv6_prefix_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="prefix length"):
        parse_ipv6_prefix(text)


def _env(**extra: str) -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": "j" * 40,
        "SESSION_SECRET_KEY": "s" * 40,
        "N8N_WEBHOOK_URL": "http://127.0.0.1:5678/webhook/x",
        "ALLOWED_ORIGINS": "https://a.example",
        **extra,
    }


def test_setting_defaults_to_64_and_is_validated_with_one_line() -> None:
    assert load_settings(_env()).rate_limit_ipv6_prefix == 64
    assert load_settings(_env(RATE_LIMIT_IPV6_PREFIX="/56")).rate_limit_ipv6_prefix == 56
    with pytest.raises(ConfigError) as info:
        load_settings(_env(RATE_LIMIT_IPV6_PREFIX="16"))
    assert info.value.variable == "RATE_LIMIT_IPV6_PREFIX"
    assert str(info.value) == (
        "RATE_LIMIT_IPV6_PREFIX: expected a prefix length from 32 to 128 (such as 64), got '16'"
    )


# -- trusted proxies see through IPv4-mapped peers ---------------------------------------------


def test_a_mapped_loopback_peer_is_the_trusted_loopback_proxy() -> None:
    assert is_trusted(parse_peer("::ffff:127.0.0.1"), LOOPBACK)
    assert client_ip("::ffff:127.0.0.1", ["198.51.100.9"], LOOPBACK) == "198.51.100.9"
    assert client_ip("::ffff:198.51.100.9", [], LOOPBACK) == "198.51.100.9"


def test_forwarded_mapped_hops_are_read_as_ipv4() -> None:
    assert client_ip("127.0.0.1", ["::ffff:198.51.100.9"], LOOPBACK) == "198.51.100.9"


def test_a_6to4_address_of_a_trusted_ipv4_is_not_trusted() -> None:
    """Only the mapped form is the same host; 6to4 carrying 127.0.0.1 is someone else."""
    assert not is_trusted(parse_peer("2002:7f00:1::1"), LOOPBACK)
    assert client_ip("2002:7f00:1::1", ["198.51.100.9"], LOOPBACK) == "2002:7f00:1::1"


# -- every per-IP tier, through guard, with a controlled peer ------------------------------


def _services(store: MemoryStore, **settings: Any) -> Any:
    s = {
        "trusted_proxies": (),
        "rate_limit_ipv6_prefix": 64,
        "rate_limit_fail_mode": "closed",
        "rate_limit_ip": Rate(2, 60),
        "rate_limit_session": Rate(100, 60),
        "rate_limit_origin": Rate(100, 60),
        "rate_limit_session_create": Rate(2, 60),
        "bot_score_threshold": 1000,
        "bot_enforce": False,
        **settings,
    }
    return SimpleNamespace(
        store=store, clock=lambda: 1_700_000_000.0, settings=SimpleNamespace(**s)
    )


def _caller(svc: Any, peer: str, forwarded: tuple[str, ...] = ()) -> guard.Caller:
    return guard.make_caller(svc, {"Origin": "https://a.example"}, peer, list(forwarded))


PEERS_OF_ONE_64 = ["2001:db8:5:6::1", "2001:db8:5:6::2", "[2001:db8:5:6:ffff::3]:4444"]


@pytest.mark.parametrize(
    "charge",
    [
        lambda svc, who: guard.limit_message(svc, who, "https://a.example", f"s-{id(who)}"),
        lambda svc, who: guard.limit_read(svc, who),
        lambda svc, who: guard.limit(
            svc, [("session_create", who.ip, svc.settings.rate_limit_session_create)]
        ),
    ],
    ids=["chat", "read", "session_create"],
)
async def test_addresses_of_one_64_share_every_per_ip_budget(charge: Any) -> None:
    svc = _services(MemoryStore())
    await charge(svc, _caller(svc, PEERS_OF_ONE_64[0]))
    await charge(svc, _caller(svc, PEERS_OF_ONE_64[1]))
    with pytest.raises(ApiError) as refused:
        await charge(svc, _caller(svc, PEERS_OF_ONE_64[2]))
    assert refused.value.status == 429
    await charge(svc, _caller(svc, "2001:db8:5:7::1"))  # the next /64 has its own budget


async def test_a_mapped_ipv4_peer_and_the_same_ipv4_share_a_budget() -> None:
    svc = _services(MemoryStore())
    await guard.limit_read(svc, _caller(svc, "::ffff:192.0.2.8"))
    await guard.limit_read(svc, _caller(svc, "192.0.2.8"))
    with pytest.raises(ApiError):
        await guard.limit_read(svc, _caller(svc, "::ffff:c000:208"))


async def test_forwarded_addresses_are_keyed_like_direct_ones() -> None:
    svc = _services(MemoryStore(), trusted_proxies=LOOPBACK)
    assert _caller(svc, "127.0.0.1", ("2001:db8:9:9::1",)).ip == "2001:db8:9:9::/64"
    assert _caller(svc, "127.0.0.1", ("::ffff:192.0.2.8",)).ip == "192.0.2.8"


async def test_the_prefix_setting_is_what_keys_them() -> None:
    svc = _services(MemoryStore(), rate_limit_ipv6_prefix=128)
    assert _caller(svc, PEERS_OF_ONE_64[0]).ip != _caller(svc, PEERS_OF_ONE_64[1]).ip
    svc = _services(MemoryStore(), rate_limit_ipv6_prefix=48)
    assert _caller(svc, "2001:db8:5:6::1").ip == _caller(svc, "2001:db8:5:ffff::1").ip


# -- operator access (is_local) and the exact bounds of the IPv6 keying -------------------------


def test_is_local_is_loopback_or_a_trusted_proxy() -> None:
    ten = [ipaddress.ip_network("10.0.0.0/8")]
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_local(address, []) is True
        assert is_local(address, ten) is True
    assert is_local("10.1.2.3", ten) is True
    assert is_local("10.1.2.3", []) is False
    assert is_local("203.0.113.9", ten) is False
    assert is_local("2001:db8::1", ten) is False
    for not_an_ip in ("unknown", "", "unix:/run/q.sock", "localhost"):
        assert is_local(not_an_ip, ten) is False


def test_embedded_ipv4_of_a_mapped_address() -> None:
    mapped = ipaddress.IPv6Address("::ffff:192.0.2.1")
    assert embedded_ipv4(mapped) == ipaddress.IPv4Address("192.0.2.1")
    assert embedded_ipv4(ipaddress.IPv6Address("2001:db8::1")) is None


def test_rate_key_prefix_bounds_are_exact() -> None:
    assert rate_key("2001:db8::1", 128) == "2001:db8::1/128"
    assert rate_key("2001:db8::1", 32) == "2001:db8::/32"
    for bad in (129, 31, 0):  # refused by the range check itself, not by a shift that fails
        with pytest.raises(ValueError, match="IPv6 prefix length must be 32 to 128"):
            rate_key("2001:db8::1", bad)


def test_rate_key_keeps_the_last_bit_of_the_prefix() -> None:
    # the lowest bit inside the prefix (bit 64 for /64, bit 0 for /128) belongs to the key
    assert rate_key("2001:db8:0:1::5") == "2001:db8:0:1::/64"
    assert rate_key("2001:db8::1", 128) != rate_key("2001:db8::", 128)
    assert rate_key("2001:db8:1::", 48) == "2001:db8:1::/48"


@pytest.mark.parametrize(("text", "n"), [("32", 32), ("/64", 64), (" 128 ", 128), ("064", 64)])
def test_parse_ipv6_prefix_takes(text: str, n: int) -> None:
    assert parse_ipv6_prefix(text) == n


@pytest.mark.parametrize("text", ["31", "129", "0064", "/0128", "", "/", "64/", "-64", "6 4"])
def test_parse_ipv6_prefix_refuses_at_the_edges(text: str) -> None:
    with pytest.raises(ValueError, match="prefix length from 32 to 128"):
        parse_ipv6_prefix(text)
