"""TLS served by Hypercorn itself (docs/http2.md): the certificate settings of
`python -m quartproxy --certfile/--keyfile`, and the THROWAWAY certificate of
`python -m quartproxy demo --tls`.

With a certificate Hypercorn negotiates HTTP/2 by ALPN (`h2`, then `http/1.1`), which is what
lets a browser keep many SSE streams open to one origin (HTTP/1.1 allows six connections)."""

from __future__ import annotations

import datetime
import ipaddress
import tempfile
from pathlib import Path

ALPN = ["h2", "http/1.1"]


def check_pair(certfile: str | None, keyfile: str | None) -> str | None:
    """None if the pair is usable (both set and readable, or neither), else what is wrong."""
    if bool(certfile) != bool(keyfile):
        return "--certfile and --keyfile go together (set both, or neither)"
    for name, path in (("certfile", certfile), ("keyfile", keyfile)):
        if path and not Path(path).is_file():
            return f"{name} {path!r} is not a readable file"
    return None


def throwaway_certificate(hosts: list[str], directory: Path | None = None) -> tuple[str, str]:
    """A self-signed certificate (and its key) for `hosts`, valid one day, written to a fresh
    private directory: (certfile, keyfile). For the demo only. No browser trusts it; it exists
    so a newcomer can see HTTP/2 in one command (after clicking through the warning)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "quartproxy demo THROWAWAY certificate")]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    where = directory or Path(tempfile.mkdtemp(prefix="quartproxy-demo-tls-"))
    certfile, keyfile = where / "throwaway-cert.pem", where / "throwaway-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)
