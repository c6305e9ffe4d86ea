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

import json
from dataclasses import dataclass
from pathlib import Path

# AKS's naming: UPN for members, object id otherwise. CEL, evaluated by kube-apiserver per token.
USERNAME_CLAIMS = "has(claims.upn) ? claims.upn : claims.oid"


@dataclass(frozen=True)
class OidcIssuer:
    url: str  # the issuer, exactly as tokens carry it in `iss`
    audience: str  # the cluster's application id
    ca_file: Path  # the CA of the issuer's HTTPS certificate
    username_prefix: str = ""
    groups_prefix: str = ""


def _cel_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid CEL string literal


def authentication_config(issuer: OidcIssuer) -> str:
    """The AuthenticationConfiguration document (YAML is a superset of JSON: written as JSON)."""
    username = USERNAME_CLAIMS
    if issuer.username_prefix:
        username = f"{_cel_string(issuer.username_prefix)} + ({USERNAME_CLAIMS})"
    groups = (
        "claims.groups"
        if not issuer.groups_prefix
        else (f"claims.groups.map(g, {_cel_string(issuer.groups_prefix)} + g)")
    )
    document = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {
                    "url": issuer.url,
                    "audiences": [issuer.audience],
                    "certificateAuthority": issuer.ca_file.read_text(encoding="utf-8"),
                },
                "claimMappings": {
                    "username": {"expression": username},
                    "groups": {"expression": f"has(claims.groups) ? {groups} : []"},
                    "uid": {"claim": "oid"},
                },
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
