"""The sandbox CA: server certificates verify for the loopback names only; client certificates chain."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import pytest

from entra_rbac_sandbox.common.tls import CertificateAuthority


def _handshake(ca: CertificateAuthority, host: str) -> bytes:
    """Serve one TLS connection on loopback and connect to it, verifying as `host`."""
    server_context = ca.server_ssl_context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                server_context.wrap_socket(conn, server_side=True) as tls_conn,
            ):
                tls_conn.sendall(b"ok")
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                ca.client_ssl_context().wrap_socket(raw, server_hostname=host) as client,
            ):
                return client.recv(2)
        finally:
            thread.join(5)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_server_certificate_verifies_for_loopback_names(tmp_path: Path, host: str) -> None:
    assert _handshake(CertificateAuthority.create(tmp_path), host) == b"ok"


def test_other_host_names_fail_verification(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(CertificateAuthority.create(tmp_path), "example.com")


def test_another_ca_is_not_trusted(tmp_path: Path) -> None:
    ours = CertificateAuthority.create(tmp_path / "a")
    theirs = CertificateAuthority.create(tmp_path / "b")
    ours.server_certs.append(theirs.issue_server_cert())
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ours, "127.0.0.1")


def test_client_certificate_is_rsa_and_signed_by_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    issued = ca.issue_client_cert("operator")
    assert issued.certificate.issuer == ca.certificate.subject
    assert issued.certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    pem = issued.pem_file.read_text()
    assert "BEGIN CERTIFICATE" in pem
    assert "BEGIN PRIVATE KEY" in pem
    assert oct(issued.key_file.stat().st_mode & 0o777) == "0o600"
    issued.certificate.verify_directly_issued_by(ca.certificate)
