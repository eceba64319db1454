"""Origin allowlist matching and client-IP resolution behind trusted proxies. Pure.

Written by hand because quart-cors' regex origins are matched with `re.match` (anchored at the
start only): `https://.*\\.example\\.com` accepts `https://x.example.com.evil.net`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in canonical form (lower case, default port dropped),
    or None when `origin` is not a serialised http(s) origin (paths, userinfo, `null`...)."""
    if not origin or len(origin) > 2048 or origin != origin.strip():
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


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:port"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client address: the socket peer, unless the peer is a trusted proxy; then the
    right-most `X-Forwarded-For` hop that is not itself trusted. `forwarded_for` holds every
    X-Forwarded-For header value in order (each may be a comma-separated list)."""
    peer_ip = _parse_ip(peer or "")
    if peer_ip is None:
        return peer or "unknown"

    def is_trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer_ip):
        return str(peer_ip)
    hops = [h for value in forwarded_for for h in value.split(",")]
    current = peer_ip
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            break  # a garbage hop: stop at the last address we could believe
        current = ip
        if not is_trusted(ip):
            break
    return str(current)
