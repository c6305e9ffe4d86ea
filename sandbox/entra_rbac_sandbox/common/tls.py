"""A throw-away certificate authority for the sandbox servers, written to files.

Holds key and certificate generation (with `cryptography`) and SSL contexts built from them;
nothing here opens a socket. The sandbox servers serve HTTPS on loopback with a server
certificate from this CA, and clients trust `ca.ca_file`.

API:
- `CertificateAuthority.create(directory) -> ca`: a new CA (EC P-256, valid for 10 days) whose
  certificate is written to `ca.ca_file` (`directory/ca.crt`, PEM).
- `ca.issue_server_cert(name="server", hosts=("127.0.0.1", "localhost", "::1")) -> IssuedCert`:
  a server certificate for those hosts (IP addresses and DNS names), written as
  `directory/<name>.crt` and `directory/<name>.key`.
- `ca.issue_client_cert(common_name, *, rsa_key=True, name=None) -> IssuedCert`: a client
  certificate (RSA 2048 by default: azure-identity's `CertificateCredential` wants RSA), written
  as `<name>.crt`, `<name>.key` and `<name>.pem` (certificate and key together, the form
  azure-identity and kubectl read).
- `ca.server_ssl_context(issued=None)`: an `ssl.SSLContext` serving the given (default: the
  first issued, issuing one if none) server certificate.
- `ca.client_ssl_context()`: an `ssl.SSLContext` that trusts this CA only.
- `generate(directory=None) -> ca`: `create` plus one server certificate for loopback; what a server
  needs in one call (`ca.ca_file`, `ca.server_context()`).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
# Short validity: the material is made per test run and never leaves the machine.
VALIDITY = datetime.timedelta(days=10)
# Clocks of a client and the server may differ slightly; do not start validity "now".
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class IssuedCert:
    """A certificate issued by the sandbox CA, with where its files are."""

    certificate: x509.Certificate
    cert_file: Path
    key_file: Path
    pem_file: Path  # certificate then private key, one file

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """A self-signed CA that issues loopback server certificates and client certificates."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate):
        self.directory = directory
        self._key = key
        self.certificate = certificate
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.server_certs: list[IssuedCert] = []

    @classmethod
    def create(
        cls, directory: Path | str, common_name: str = "entra-rbac sandbox CA"
    ) -> CertificateAuthority:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(directory, key, certificate)

    def issue_server_cert(self, name: str = "server", hosts: Sequence[str] = LOOPBACK_HOSTS) -> IssuedCert:
        """A server certificate valid for `hosts` (IP literals become IP SANs, others DNS SANs)."""
        if not hosts:
            raise ValueError("hosts: at least one host name or IP address is needed")
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = self._builder(hosts[0], key.public_key()).add_extension(
            x509.SubjectAlternativeName(names), critical=False
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        issued = self._write(name, builder.sign(self._key, hashes.SHA256()), key)
        self.server_certs.append(issued)
        return issued

    def issue_client_cert(
        self, common_name: str, *, rsa_key: bool = True, name: str | None = None
    ) -> IssuedCert:
        """A client certificate (RSA 2048 unless told otherwise) named `common_name`."""
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else (ec.generate_private_key(ec.SECP256R1()))
        )
        builder = self._builder(common_name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        file_name = name or "client-" + "".join(c if c.isalnum() else "-" for c in common_name)
        return self._write(file_name, builder.sign(self._key, hashes.SHA256()), key)

    def server_ssl_context(self, issued: IssuedCert | None = None) -> ssl.SSLContext:
        """A TLS server context for `issued` (default: the first server certificate)."""
        if issued is None:
            issued = self.server_certs[0] if self.server_certs else self.issue_server_cert()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(issued.cert_file, issued.key_file)
        return context

    # The kube sandbox calls it by this shorter name.
    server_context = server_ssl_context

    def client_ssl_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts this CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _builder(self, common_name: str, public_key: object) -> x509.CertificateBuilder:
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )

    def _write(
        self, name: str, certificate: x509.Certificate, key: CertificateIssuerPrivateKeyTypes
    ) -> IssuedCert:
        cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        cert_file = self.directory / f"{name}.crt"
        key_file = self.directory / f"{name}.key"
        pem_file = self.directory / f"{name}.pem"
        cert_file.write_bytes(cert_pem)
        _write_private(key_file, key_pem)
        _write_private(pem_file, cert_pem + key_pem)
        return IssuedCert(certificate, cert_file, key_file, pem_file)


def generate(directory: Path | str | None = None) -> CertificateAuthority:
    """A new CA in `directory` (default: a new temporary one) with a loopback server certificate."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="entra-rbac-pki-")
    ca = CertificateAuthority.create(directory)
    ca.issue_server_cert()
    return ca


def _write_private(path: Path, data: bytes) -> None:
    # Private keys readable by their owner only, even though they are throw-away.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
