"""The local CA helper: a real TLS server on loopback, verified by httpx trusting only the CA file."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kinema.tls import TlsFiles, ensure_local_tls


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def tls_server(files: TlsFiles, bind: str = "127.0.0.1") -> Iterator[int]:
    """An HTTPS server with the issued certificate on a free loopback port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    cls = _Server6 if ":" in bind else http.server.ThreadingHTTPServer
    server = cls((bind, 0), _Hello)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _trusting(files: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts the local CA and nothing else."""
    return ssl.create_default_context(cafile=str(files.ca_cert))


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_server_verified_with_ca_file_only(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls")
    with tls_server(files) as port:
        for host in ("localhost", "127.0.0.1"):
            r = httpx.get(f"https://{host}:{port}/", verify=_trusting(files), trust_env=False)
            assert r.status_code == 200 and r.text == "hello over tls"
        # The system/certifi store does not know this CA: the same request must fail verification.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://localhost:{port}/", trust_env=False)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_is_covered(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls")
    with tls_server(files, bind="::1") as port:
        r = httpx.get(f"https://[::1]:{port}/", verify=_trusting(files), trust_env=False)
        assert r.status_code == 200


def test_ssl_cert_file_env_is_enough_for_httpx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Python fal client relies on: httpx's default client honours SSL_CERT_FILE."""
    files = ensure_local_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_cert))
    with tls_server(files) as port, httpx.Client() as client:
        assert client.get(f"https://localhost:{port}/").status_code == 200


def test_certificate_contents(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3649
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    for key in (files.key, files.ca_cert.with_name("ca-key.pem")):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_reused_while_valid_and_reissued_when_not(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = ensure_local_tls(d)
    ca_pem, cert_pem, key_pem = (p.read_bytes() for p in (first.ca_cert, first.cert, first.key))

    again = ensure_local_tls(d)
    assert again == first
    assert (again.ca_cert.read_bytes(), again.cert.read_bytes(), again.key.read_bytes()) == (ca_pem, cert_pem, key_pem)

    # A lost server key: the CA is kept (clients keep trusting it), the server pair is re-issued.
    first.key.unlink()
    ensure_local_tls(d)
    assert first.ca_cert.read_bytes() == ca_pem and first.cert.read_bytes() != cert_pem

    # New host names: re-issued with them, same CA.
    files = ensure_local_tls(d, hosts=("localhost", "kinema.test", "127.0.0.1"))
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kinema.test" in san.get_values_for_type(x509.DNSName)
    assert files.ca_cert.read_bytes() == ca_pem

    # A broken CA: a new CA and a server certificate signed by it.
    first.ca_cert.write_text("not a certificate")
    files = ensure_local_tls(d)
    new_ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(new_ca)
    assert files.ca_cert.read_bytes() != ca_pem
    with tls_server(files) as port:
        assert httpx.get(f"https://localhost:{port}/", verify=_trusting(files), trust_env=False).status_code == 200


@pytest.mark.parametrize("hosts", [(), ("",), ("local host",), ("http://localhost",), "localhost"])
def test_bad_hosts_refused(tmp_path: Path, hosts: object) -> None:
    with pytest.raises(ValueError):
        ensure_local_tls(tmp_path / "tls", hosts=hosts)  # type: ignore[arg-type]


def test_cli_prints_env_and_serve_flags(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "tls", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tls_dir = (tmp_path / "data" / "tls").resolve()
    assert f"export SSL_CERT_FILE={tls_dir / 'ca.pem'}" in out.splitlines()
    assert f"--tls-cert {tls_dir / 'server.pem'} --tls-key {tls_dir / 'server-key.pem'}" in out
    files = TlsFiles(tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server-key.pem")
    with tls_server(files) as port:
        assert httpx.get(f"https://localhost:{port}/", verify=_trusting(files), trust_env=False).status_code == 200

    bad = subprocess.run(
        [sys.executable, "-m", "kinema", "tls", "--data-dir", str(tmp_path / "data"), "--host", "a b"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a host name" in bad.stderr
