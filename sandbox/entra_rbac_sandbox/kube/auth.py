"""Authentication and impersonation, as kube-apiserver does them for bearer tokens.

Holds Authenticator: bearer tokens (registered in code or read from a kube-apiserver
`--token-auth-file` CSV: token,user,uid,"group1,group2"), JWTs of the OIDC issuers an
AuthenticationConfiguration names (`configure_jwt`, see oidc.py), every authenticated user also in
`system:authenticated`; and impersonation (`Impersonate-User`, `Impersonate-Group`,
`Impersonate-Uid` headers), allowed only when RBAC grants the `impersonate` verb on users,
groups, service accounts or uids. Holds no HTTP server.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from . import errors
from .oidc import JwtAuthenticator, TokenRejected
from .rbac import Attributes, Authorizer, UserInfo

AUTHENTICATED = "system:authenticated"


class Authenticator:
    """Bearer-token identities and the impersonation check."""

    def __init__(self) -> None:
        self._tokens: dict[str, UserInfo] = {}
        self._jwt: JwtAuthenticator | None = None

    def configure_jwt(self, document: str) -> None:
        """Trust the OIDC issuers of an AuthenticationConfiguration document (as --authentication-config)."""
        self._jwt = JwtAuthenticator.from_document(document)

    def add_token(self, token: str, user: str, groups: tuple[str, ...] | list[str] = ()) -> UserInfo:
        """Register a bearer token for `user` in `groups` (system:authenticated is added)."""
        info = UserInfo(user, tuple(dict.fromkeys([*groups, AUTHENTICATED])))
        self._tokens[token] = info
        return info

    def load_token_file(self, path: Path) -> None:
        """Read a kube-apiserver token file: token,user,uid[,"group1,group2,..."] per line."""
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}: each line needs token,user,uid[,groups]; got {row!r}")
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            self.add_token(row[0], row[1], groups)

    def authenticate(self, headers: Mapping[str, str]) -> UserInfo:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        token = token.strip()
        info = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if info is None and self._jwt is not None and scheme.lower() == "bearer":
            try:
                found = self._jwt.authenticate(token)
            except TokenRejected:
                found = None  # why stays unsaid, as on the real server: the answer is a bare 401
            if found is not None:
                info = UserInfo(found.name, tuple(dict.fromkeys([*found.groups, AUTHENTICATED])))
        if info is None:
            raise errors.unauthorized()
        return info

    @staticmethod
    def impersonate(
        user: UserInfo, headers: Mapping[str, str], groups: list[str], authorizer: Authorizer
    ) -> UserInfo:
        """The identity a request acts as after its Impersonate-* headers (403 if not allowed)."""
        target = headers.get("Impersonate-User")
        if target is None:
            if groups:
                raise errors.bad_request("requested impersonation of groups without impersonating a user")
            return user
        checks = []
        if target.startswith("system:serviceaccount:"):
            namespace, _, name = target.removeprefix("system:serviceaccount:").partition(":")
            checks.append(Attributes("impersonate", "", "serviceaccounts", "", namespace, name))
        else:
            checks.append(Attributes("impersonate", "", "users", "", "", target))
        checks += [Attributes("impersonate", "", "groups", "", "", g) for g in groups]
        if "Impersonate-Uid" in headers:
            checks.append(
                Attributes("impersonate", "authentication.k8s.io", "uids", "", "", headers["Impersonate-Uid"])
            )
        for check in checks:
            if not authorizer.allowed(user, check):
                plural = check.resource
                raise errors.forbidden(plural, check.name, check.describe(user), check.api_group)
        extra = [] if target == "system:anonymous" else [AUTHENTICATED]
        if target.startswith("system:serviceaccount:"):
            extra += ["system:serviceaccounts", "system:serviceaccounts:" + target.split(":")[2]]
        return UserInfo(target, tuple(dict.fromkeys([*groups, *extra])))
