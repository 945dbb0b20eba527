"""A local certificate authority and a localhost server certificate for serving kinema over HTTPS.

The official Python fal client only speaks ``https://``; pointing it at a local kinema needs a server
certificate its httpx trusts. :func:`ensure_local_tls` writes a private CA (EC P-256, 10 years) and a
server certificate signed by it, and reuses both while they stay valid::

    files = ensure_local_tls(Path("kinema-data/tls"))
    # kinema serve --tls-cert files.cert --tls-key files.key ; clients: SSL_CERT_FILE=files.ca_cert
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "ensure_local_tls", "DEFAULT_HOSTS"]

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
#: Apple platforms refuse TLS server certificates valid for more than 825 days.
SERVER_DAYS = 825
#: Certificates expiring within this window are replaced rather than reused.
RENEW_BEFORE = dt.timedelta(days=30)

_CA_CERT, _CA_KEY = "ca.pem", "ca-key.pem"
_SERVER_CERT, _SERVER_KEY = "server.pem", "server-key.pem"

GeneralName = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths: the CA certificate clients trust, the server certificate and its private key."""

    ca_cert: Path
    cert: Path
    key: Path


def ensure_local_tls(dir: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """Create (or reuse) a local CA and a server certificate for ``hosts`` under ``dir``.

    The CA is kept while it is valid, so clients that trust it keep working when only the server
    certificate has to be re-issued (new hosts, near expiry, missing or mismatched files).
    """
    # 1. Check inputs
    names = _general_names(hosts)
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(dir / _CA_CERT, dir / _SERVER_CERT, dir / _SERVER_KEY)
    now = dt.datetime.now(dt.UTC)

    # 2. Reuse or create the CA
    ca = _load_ca(dir / _CA_CERT, dir / _CA_KEY, now)
    if ca is None:
        ca = _create_ca(now)
        _write_key(dir / _CA_KEY, ca[1])
        _write(dir / _CA_CERT, ca[0].public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = ca

    # 3. Reuse or issue the server certificate
    if not _server_valid(files.cert, files.key, ca_cert, names, now):
        cert, key = _issue_server(ca_cert, ca_key, names, now)
        _write_key(files.key, key)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def _general_names(hosts: Sequence[str]) -> list[GeneralName]:
    if isinstance(hosts, str):
        raise ValueError("hosts must be a sequence of host names, not one string")
    if not hosts:
        raise ValueError("hosts must name at least one host")
    names: list[GeneralName] = []
    for host in hosts:
        host = host.strip()
        if not host:
            raise ValueError("hosts must not contain an empty name")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if any(c in host for c in "/:@ ") or host.startswith(".") or host.endswith("."):
                raise ValueError(f"not a host name or IP address: {host!r}") from None
            names.append(x509.DNSName(host.lower()))
    return names


def _create_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kinema local"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"kinema local CA ({now:%Y-%m-%d})"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_server(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[GeneralName], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _load_ca(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The stored CA if both files parse, belong together, it is a CA and it is not near expiry."""
    loaded = _load_pair(cert_path, key_path)
    if loaded is None:
        return None
    cert, key = loaded
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None
    if not is_ca or not isinstance(key, ec.EllipticCurvePrivateKey) or not _current(cert, now):
        return None
    return cert, key


def _server_valid(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: list[GeneralName], now: dt.datetime
) -> bool:
    loaded = _load_pair(cert_path, key_path)
    if loaded is None:
        return False
    cert, _ = loaded
    if cert.issuer != ca_cert.subject or not _current(cert, now):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.SERVER_AUTH in eku and set(names) <= set(san)


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, object] | None:
    """Certificate and private key if both exist, parse and match; else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        return None
    return cert, key


def _current(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(path, pem, mode=0o600)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a PEM."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
