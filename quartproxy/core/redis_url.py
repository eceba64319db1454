"""REDIS_URL: which Redis topology the production store talks to (pure parsing, no IO).

- `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), `unix:///path.sock` — one Redis.
- `redis+cluster://[user:password@]host:port,host:port,…` (`rediss+cluster://` for TLS) — a Redis
  Cluster; the listed nodes are seeds (any reachable one gives the whole layout). No db (a
  cluster has only db 0).
- `redis+sentinel://[user:password@]host:port,host:port,…/service[/db]` (`rediss+sentinel://`)
  — the primary that Sentinel names for `service`; user/password are the data nodes'. Sentinels
  with a password of their own: the query `?sentinel_password=…` (`sentinel_username=…`).

TLS query options (all three): `ssl_ca_certs=/path`, `ssl_certfile=/path`, `ssl_keyfile=/path`,
`ssl_cert_reqs=required|optional|none`. Ports default to 6379 (26379 for sentinels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote

Kind = Literal["single", "cluster", "sentinel"]

_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisTarget:
    kind: Kind
    url: str = field(repr=False)  # for "single": the URL as given (coredis.Redis.from_url reads it)
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seeds or sentinels
    service: str = ""  # sentinel: the monitored primary's name
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_options: dict[str, str] = field(default_factory=dict)
    sentinel_auth: dict[str, str] = field(default_factory=dict, repr=False)


def _nodes(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rpartition("@")[2]
    out = []
    for part in hosts.split(","):
        part = part.strip()
        if not part:
            raise ValueError("an empty host in the node list")
        if part.startswith("["):  # [::1]:7000
            host, _, rest = part[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        if not host:
            raise ValueError(f"no host in {part!r}")
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f"bad port in {part!r}")
        port = int(port_text) if port_text else default_port
        if not 0 < port < 65536:
            raise ValueError(f"port out of range in {part!r}")
        out.append((host, port))
    return tuple(out)


def parse_redis_url(url: str) -> RedisTarget:
    """A RedisTarget, or ValueError with a one-line reason (never echoing the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            "expected redis://, rediss://, unix://, redis+cluster://, rediss+cluster://, "
            "redis+sentinel:// or rediss+sentinel://"
        )
    kind, tls = _SCHEMES[scheme.lower()]
    if kind == "single":
        return RedisTarget("single", url, tls=tls)
    rest, _, query_text = rest.partition("?")
    netloc, _, path_text = rest.partition("/")
    userinfo = netloc.rpartition("@")[0]
    username = password = None
    if userinfo:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    default_port = 26379 if kind == "sentinel" else 6379
    nodes = _nodes(netloc, default_port)
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    allowed = _TLS_OPTIONS + (_SENTINEL_OPTIONS if kind == "sentinel" else ())
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(allowed)})")
    reqs = query.get("ssl_cert_reqs")
    if reqs is not None and reqs not in ("required", "optional", "none"):
        raise ValueError("ssl_cert_reqs: expected required, optional or none")
    if not tls and any(k in query for k in _TLS_OPTIONS):
        raise ValueError(f"TLS options need the {scheme.replace('redis', 'rediss', 1)}:// scheme")
    path = [p for p in path_text.split("/") if p]
    service, db = "", 0
    if kind == "cluster":
        if path:
            raise ValueError("a cluster URL has no path (a cluster has only database 0)")
    else:
        if not path:
            raise ValueError("a sentinel URL names the service: redis+sentinel://host:port/name")
        service = unquote(path[0])
        if len(path) > 2:
            raise ValueError("expected /service or /service/db after the sentinels")
        if len(path) == 2:
            if not (path[1].isascii() and path[1].isdigit()):
                raise ValueError(f"bad database number {path[1]!r}")
            db = int(path[1])
    return RedisTarget(
        kind,
        url,
        nodes,
        service,
        db,
        username,
        password,
        tls,
        {k: query[k] for k in _TLS_OPTIONS if k in query},
        {k.removeprefix("sentinel_"): query[k] for k in _SENTINEL_OPTIONS if k in query},
    )
