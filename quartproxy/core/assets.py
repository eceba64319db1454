"""The embeddable widget as served: compressed once at start, named by its content.

Pure: bytes in, representations out. `Asset.build` makes the gzip (and, when a brotli
compressor is passed in, brotli) bodies a single time, so no request pays for compression;
`choose_encoding` picks one for an `Accept-Encoding` header (RFC 9110 §12.5.3).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

Compressor = Callable[[bytes], bytes]
# The server's own preference when the client rates several encodings the same.
PREFERENCE = ("br", "gzip", "identity")


@dataclass(frozen=True, slots=True)
class Asset:
    raw: bytes
    digest: str  # first 16 hex digits of the SHA-256: the versioned file name
    integrity: str  # Subresource Integrity of the (uncompressed) script: "sha384-…"
    bodies: dict[str, bytes] = field(default_factory=dict)  # encoding -> bytes ("identity" too)

    @classmethod
    def build(cls, raw: bytes, brotli: Compressor | None = None) -> Asset:
        bodies = {"identity": raw, "gzip": gzip.compress(raw, compresslevel=9, mtime=0)}
        if brotli is not None:
            bodies["br"] = brotli(raw)
        sri = base64.b64encode(hashlib.sha384(raw).digest()).decode("ascii")
        return cls(raw, hashlib.sha256(raw).hexdigest()[:16], f"sha384-{sri}", bodies)

    def etag(self, encoding: str) -> str:
        return f'"{self.digest}-{encoding}"'


def parse_accept_encoding(header: str | None) -> dict[str, float]:
    """`gzip;q=0.8, br, *;q=0` -> {"gzip": 0.8, "br": 1.0, "*": 0.0}. Bad q-values count as 0."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    q = 0.0
                if q != q:  # NaN
                    q = 0.0
        out[name] = max(q, out.get(name, 0.0))
    return out


def choose_encoding(header: str | None, available: tuple[str, ...] | list[str]) -> str:
    """The best of `available` for this `Accept-Encoding`; "identity" unless a compressed one is
    explicitly acceptable (a missing header means any, but old clients sending none get plain)."""
    if header is None:
        return "identity"
    rated = parse_accept_encoding(header)
    star = rated.get("*")
    best, best_q = "identity", 0.0
    for enc in PREFERENCE:
        if enc not in available or enc == "identity":
            continue
        q = rated.get(enc, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = enc, q
    return best
