"""OIDC sign-in for the real control plane: kube-apiserver trusts an issuer (the sandbox directory).

Structured authentication (`--authentication-config`, `apiserver.config.k8s.io/v1`
AuthenticationConfiguration, GA in Kubernetes 1.34; the pinned v1.36 serves it; 1.30 to 1.33 get
the same document as `v1beta1`) rather than the `--oidc-*` flags, because only it can say what
AKS does for the user name: the token's `upn`, else its `oid` (guests, service principals,
managed identities), as one CEL expression. It also keeps retrying discovery in the background
when the issuer is not up yet, and re-reads the file when it changes
(`ControlPlane.configure_oidc`), so a test can switch prefixes on a running server.

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


# AuthenticationConfiguration went GA (`apiserver.config.k8s.io/v1`) in 1.34; 1.30 to 1.33 serve
# the same document as `v1beta1` (the oldest supported minor, docs/install.md, Supported versions).
GA_MINOR = 34


def authentication_config(issuer: OidcIssuer, minor: int = GA_MINOR) -> str:
    """The AuthenticationConfiguration document for a kube-apiserver of that minor version; the
    sandbox API server reads the same one (as `v1`)."""
    document = oidc.authentication_config(
        issuer.url,
        issuer.audience,
        issuer.ca_file.read_text(encoding="utf-8"),
        username_prefix=issuer.username_prefix,
        groups_prefix=issuer.groups_prefix,
    )
    if minor >= GA_MINOR:
        return document
    return document.replace('"apiserver.config.k8s.io/v1"', '"apiserver.config.k8s.io/v1beta1"', 1)
