"""Origin allowlist matching, client-IP resolution behind trusted proxies, and the per-IP rate
key (IPv6 by prefix). Pure. docs/client-identity.md says how they fit together.

Written by hand because quart-cors' regex origins are matched with `re.match` (anchored at the
start only): `https://.*\\.example\\.com` accepts `https://x.example.com.evil.net`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .numbers import parse_uint

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in canonical form (lower case, default port dropped),
    or None when `origin` is not a serialised http(s) origin (paths, userinfo, `null`...).
    A serialised origin is ASCII (browsers send IDNs as punycode): anything else — a Latin-1
    header, Unicode letters or digits that `isalnum` would pass — is not one."""
    if not origin or len(origin) > 2048 or origin != origin.strip() or not origin.isascii():
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if not all(c.isalnum() or c in "-.[]:_" for c in host):
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class _Wildcard:
    scheme: str
    suffix: str  # ".example.com"
    port: int | None


class OriginMatcher:
    """Exact origins plus `scheme://*.domain[:port]` patterns (strict subdomains only)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact: frozenset[str]
        self._wild: tuple[_Wildcard, ...]
        exact: set[str] = set()
        wild: list[_Wildcard] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            if "://*." in pattern:
                scheme, rest = pattern.split("://*.", 1)
                probe = normalise_origin(f"{scheme}://x.{rest}")
                if probe is None or "*" in rest:
                    raise ValueError(f"bad origin pattern {pattern!r}")
                p = urlsplit(probe)
                domain = (p.hostname or "")[2:]
                if "" in domain.split("."):  # `*.`, `*..x`: an empty label matches any host
                    raise ValueError(f"bad origin pattern {pattern!r}")
                wild.append(_Wildcard(p.scheme, "." + domain, p.port))
            else:
                norm = normalise_origin(pattern)
                if norm is None:
                    raise ValueError(f"bad origin {pattern!r} (expected scheme://host[:port])")
                exact.add(norm)
        self.exact = frozenset(exact)
        self._wild = tuple(wild)

    @property
    def patterns(self) -> tuple[str, ...]:
        wild = [f"{w.scheme}://*{w.suffix}" + (f":{w.port}" if w.port else "") for w in self._wild]
        return tuple(sorted(self.exact)) + tuple(wild)

    def allows(self, origin: str | None) -> bool:
        return self.canonical(origin) is not None

    def canonical(self, origin: str | None) -> str | None:
        """The canonical form of `origin` when it is allowed, else None."""
        if origin is None:
            return None
        if origin in self.exact:  # already canonical and allowed: what browsers send
            return origin
        norm = normalise_origin(origin)
        if norm is None:
            return None
        if norm in self.exact:
            return norm
        p = urlsplit(norm)
        host = p.hostname or ""
        for w in self._wild:
            if (
                p.scheme == w.scheme
                and p.port == w.port
                and host.endswith(w.suffix)
                and len(host) > len(w.suffix)
                and not host.startswith(".")
            ):
                return norm
        return None


def overlap(a: OriginMatcher, b: OriginMatcher) -> str | None:
    """An origin both matchers allow, or None when they are disjoint (complete: exact
    origins are tried against the other matcher; two wildcards overlap when scheme and port
    agree and one suffix ends with the other, e.g. `*.a.example.com` inside `*.example.com`).
    Sites' origins must be disjoint (core/sites.py), so an Origin names at most one site."""
    for origin in sorted(a.exact):
        if b.canonical(origin) is not None:
            return origin
    for origin in sorted(b.exact):
        if a.canonical(origin) is not None:
            return origin
    for x in a._wild:
        for y in b._wild:
            nested = x.suffix.endswith(y.suffix) or y.suffix.endswith(x.suffix)
            if x.scheme == y.scheme and x.port == y.port and nested:
                longer = max(x.suffix, y.suffix, key=len)
                port = f":{x.port}" if x.port else ""
                return f"{x.scheme}://*{longer}{port}"
    return None


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs or addresses. Raises ValueError naming the bad entry."""
    nets: list[IPNetwork] = []
    for item in text.split(","):
        item = item.strip()
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"bad network {item!r}") from None
    return tuple(nets)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_IPV6_PREFIX = 64  # what one subscriber line gets (RFC 6177); RATE_LIMIT_IPV6_PREFIX
MIN_IPV6_PREFIX = 32
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a socket peer or an X-Forwarded-For hop (`1.2.3.4`, `1.2.3.4:port`,
    `::1`, `[::1]:port`), with an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a
    dual-stack socket reports for an IPv4 client) read as the IPv4 address it is."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:port"
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_peer(text: str | None) -> IPAddress | None:
    """A peer address as `client_ip` and the trusted-proxy checks read it (None: not an IP)."""
    return _parse_ip(text or "")


def is_trusted(ip: IPAddress | None, trusted: Sequence[IPNetwork]) -> bool:
    """Whether `ip` is inside one of the TRUSTED_PROXIES networks."""
    return ip is not None and any(ip in net for net in trusted)


def is_local(address: str, trusted: Sequence[IPNetwork]) -> bool:
    """Whether a client address (as `client_ip` returns it) is this host (loopback) or one
    of the TRUSTED_PROXIES: who may read the operator endpoints without a token."""
    ip = _parse_ip(address)
    return ip is not None and (ip.is_loopback or is_trusted(ip, trusted))


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client address: the socket peer, unless the peer is a trusted proxy; then the
    right-most `X-Forwarded-For` hop that is not itself trusted. `forwarded_for` holds every
    X-Forwarded-For header value in order (each may be a comma-separated list). IPv4-mapped
    addresses come back as IPv4."""
    peer_ip = _parse_ip(peer or "")
    if peer_ip is None:
        return peer or "unknown"
    if not is_trusted(peer_ip, trusted):
        return str(peer_ip)
    hops = [h for value in forwarded_for for h in value.split(",")]
    current = peer_ip
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            break  # a garbage hop: stop at the last address we could believe
        current = ip
        if not is_trusted(ip, trusted):
            break
    return str(current)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the transition forms
    that carry the client's IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (RFC 6052,
    `64:ff9b::a.b.c.d`), 6to4 (`2002:aabb:ccdd::/48`) and Teredo (the client's public
    address). Keyed by that IPv4 address, one IPv4 client cannot become 2**16 (6to4 subnets)
    or 2**80 (Teredo) budgets, and all of NAT64 does not share one /64 budget."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def rate_key(address: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The key every per-IP budget of the gateway is charged to, for a client address as
    `client_ip` returns it: an IPv4 address as it is (`203.0.113.7`); an IPv6 address as its
    `/ipv6_prefix` network (`2001:db8:1:2::/64`) — one subscriber is usually given a whole /64,
    so keying single addresses would give each one 2**64 budgets — or, for the transition forms
    of `embedded_ipv4`, as that IPv4 address. Zone ids (`%eth0`) are dropped. Anything that
    is not an IP address (a Unix-socket peer, "unknown") is its own key, unchanged."""
    ip = _parse_ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    v4 = embedded_ipv4(ip)
    if v4 is not None:
        return str(v4)
    if not MIN_IPV6_PREFIX <= ipv6_prefix <= 128:
        raise ValueError(f"IPv6 prefix length must be {MIN_IPV6_PREFIX} to 128")
    mask = ((1 << ipv6_prefix) - 1) << (128 - ipv6_prefix)
    return f"{ipaddress.IPv6Address(int(ip) & mask)}/{ipv6_prefix}"


def parse_ipv6_prefix(text: str) -> int:
    """`64` or `/64`, from MIN_IPV6_PREFIX to 128. Raises ValueError with a readable reason."""
    digits = text.strip().removeprefix("/")
    n = parse_uint(digits, max_digits=3)
    if n is None or not MIN_IPV6_PREFIX <= n <= 128:
        raise ValueError(
            f"expected a prefix length from {MIN_IPV6_PREFIX} to 128 (such as 64), got {text!r}"
        )
    return n
