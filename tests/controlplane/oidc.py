"""OIDC sign-in for the real control plane: kube-apiserver trusts an issuer (the sandbox directory).

Structured authentication (`--authentication-config`, `apiserver.config.k8s.io/v1`
AuthenticationConfiguration, GA in Kubernetes 1.34; the pinned v1.36 serves it) rather than the
`--oidc-*` flags, because only it can say what AKS does for the user name: the token's `upn`,
else its `oid` (guests, service principals, managed identities), as one CEL expression. It also
keeps retrying discovery in the background when the issuer is not up yet, and re-reads the file
when it changes (`ControlPlane.configure_oidc`), so a test can switch prefixes on a running server.

`OidcIssuer(url, audience, ca_file, username_prefix="", groups_prefix="")`: what the server trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from entra_rbac_sandbox.kube import oidc

USERNAME_CLAIMS = oidc.USERNAME_CLAIMS


@dataclass(frozen=True)
class OidcIssuer:
    url: str  # the issuer, exactly as tokens carry it in `iss`
    audience: str  # the cluster's application id
    ca_file: Path  # the CA of the issuer's HTTPS certificate
    username_prefix: str = ""
    groups_prefix: str = ""


def authentication_config(issuer: OidcIssuer) -> str:
    """The AuthenticationConfiguration document; the sandbox API server reads the same one."""
    return oidc.authentication_config(
        issuer.url,
        issuer.audience,
        issuer.ca_file.read_text(encoding="utf-8"),
        username_prefix=issuer.username_prefix,
        groups_prefix=issuer.groups_prefix,
    )
