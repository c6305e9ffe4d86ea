"""The sandbox directory as an OIDC issuer: RS256 signing keys and the tokens people sign in with.

Holds `SigningKeys` (RSA keys published as the tenant's JWKS; `rotate()` adds a key that signs
from then on, `retire(kid)` withdraws one) and `SignIn`, which answers the token requests of
people and workloads for a cluster's application: the resource owner password grant for users
(`grant_type=password`, `username`, `password`, `scope=<cluster app id>/.default`) and the
client-credentials grant for directory service principals and managed identities that have a
`clientSecret` in the directory file. Knows nothing of HTTP.

The tokens are v2.0 access tokens as Entra issues them for an API (checked against Microsoft's
"Access token claims reference", see docs/sandbox.md): header `typ`, `alg` RS256, `kid`; claims
`aud` (the cluster application's id), `iss` (`https://<authority>/{tenant}/v2.0`), `iat`, `nbf`,
`exp`, `azp`, `azpacr`, `oid`, `sub` (pairwise: differs per application), `tid`, `ver` "2.0",
`uti`, `name`, `preferred_username` and `upn` for member users (guests get no `upn`, as AKS's
"object id when there is no upn" rule relies on), `idtyp` "app" for applications, and `groups`:
the transitive security groups. Over 200 groups the token carries no `groups` but the overage
claims `_claim_names: {"groups": "src1"}` and `_claim_sources: {"src1": {"endpoint": ...}}`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_rbac_sandbox.entra.directory import Directory, DirectoryObject
from entra_rbac_sandbox.entra.tokens import NOT_INSTALLED, TokenRequestError, resource_not_found

# The "Azure Kubernetes Service AAD Server" application: the audience of AKS user tokens.
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
# Public clients that sign people in for kubectl: kubelogin's ("Azure Kubernetes Service AAD
# Client") and the Azure CLI's.
PUBLIC_CLIENTS = ("80faf920-1908-4b52-b5ef-a8e7bedfc67a", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
GROUPS_OVERAGE_LIMIT = 200  # JWTs: more groups than this and Entra sends the overage claim


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class _Key:
    kid: str
    private: rsa.RSAPrivateKey


class SigningKeys:
    """The tenant's RS256 keys; the newest signs. RSA keys are slow to make: made on first use."""

    def __init__(self) -> None:
        self._keys: list[_Key] = []
        self._lock = threading.Lock()

    def _ensure(self) -> list[_Key]:
        with self._lock:
            if not self._keys:
                self._keys.append(self._new())
            return list(self._keys)

    @staticmethod
    def _new() -> _Key:
        return _Key(
            _b64url(uuid.uuid4().bytes), rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    def rotate(self) -> str:
        """Add a key that signs from now on (the old ones stay published); its kid."""
        self._ensure()
        key = self._new()
        with self._lock:
            self._keys.append(key)
        return key.kid

    def retire(self, kid: str) -> None:
        """Withdraw a key: tokens it signed no longer validate. The last key cannot be retired."""
        with self._lock:
            remaining = [k for k in self._keys if k.kid != kid]
            if len(remaining) == len(self._keys):
                raise KeyError(f"no signing key has kid {kid!r}")
            if not remaining:
                raise ValueError("the last signing key cannot be retired: rotate first")
            self._keys = remaining

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None, name_kid: bool | str = True) -> str:
        """A JWS by the newest key, or by `kid`'s. Entra's header names the signing key's kid; for
        tests of how relying parties choose a key, `name_kid=False` leaves it out and a string
        names that kid instead."""
        keys = self._ensure()
        key = keys[-1] if kid is None else next(k for k in keys if k.kid == kid)
        headers = {"typ": "JWT"}
        if name_kid is not False:
            headers["kid"] = key.kid if name_kid is True else name_kid
        return jwt.encode(dict(claims), key.private, algorithm="RS256", headers=headers)

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        return next((k.private.public_key() for k in self._ensure() if k.kid == kid), None)

    def jwks(self) -> list[dict[str, Any]]:
        published = []
        for key in self._ensure():
            numbers = key.private.public_key().public_numbers()
            published.append(
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": key.kid,
                    "n": _uint(numbers.n),
                    "e": _uint(numbers.e),
                }
            )
        return published


def _names(user: DirectoryObject) -> dict[str, Any]:
    """A person's name claims: `name`, `preferred_username` (a guest's mail), `upn` (members only)."""
    upn = str(user.properties["userPrincipalName"])
    guest = user.properties.get("userType") == "Guest" or "#EXT#" in upn
    names = {
        "name": user.properties.get("displayName", upn),
        "preferred_username": str(user.properties.get("mail") or upn) if guest else upn,
    }
    return names if guest else {**names, "upn": upn}


SignInError = TokenRequestError  # a refused sign-in answers as any refused token request


@dataclass
class SignIn:
    """Token requests of people and workloads for cluster applications, in one tenant."""

    tenant_id: str
    directory: Callable[[], Directory]
    authority: Callable[[], str]  # e.g. https://127.0.0.1:PORT
    applications: tuple[str, ...] = (AKS_SERVER_APP_ID,)
    token_lifetime: int = 3600
    keys: SigningKeys = field(default_factory=SigningKeys)

    @property
    def issuer(self) -> str:
        return f"{self.authority()}/{self.tenant_id}/v2.0"

    def cluster_applications(self) -> set[str]:
        return {*self.applications, *self.directory().sign_in.applications}

    def cluster_resource(self, scope: str) -> str | None:
        """The cluster application a `.default` scope names (GUID or api://GUID), else None."""
        scopes = [s for s in scope.split() if s not in ("openid", "profile", "offline_access", "email")]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return None
        resource = scopes[0].removesuffix("/.default").removeprefix("api://").lower()
        return resource if resource in self.cluster_applications() else None

    def audience(self, scope: str, *, detail: str = "") -> str:
        """The cluster application `scope` names; else Entra's invalid_resource refusal (AADSTS500011)."""
        audience = self.cluster_resource(scope)
        if audience is None:
            raise resource_not_found(scope, self.tenant_id, detail)
        return audience

    def is_workload(self, client_id: str) -> bool:
        return self.directory().find_app(client_id) is not None

    # Grants -----------------------------------------------------------------------------------

    def password_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "").lower()
        if client_id not in (*PUBLIC_CLIENTS, *self.cluster_applications()):
            raise SignInError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        audience = self.audience(form.get("scope", ""), detail=NOT_INSTALLED)
        directory = self.directory()
        user = directory.find_user(form.get("username", ""))
        if user is None:
            raise SignInError(
                400,
                "invalid_grant",
                50034,
                f"The user account {{EUII Hidden}} does not exist in the {self.tenant_id} directory. "
                "To sign into this application, the account must be added to the directory.",
            )
        password = form.get("password", "")
        accepted = {s for s in (directory.secrets.get(user.id), directory.sign_in.testSecret) if s}
        if not password or password not in accepted:
            raise SignInError(
                400,
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        if not user.properties.get("accountEnabled", True):
            raise SignInError(400, "invalid_grant", 50057, "The user account is disabled.")
        return self.person_answer(user, audience, client_id, form.get("scope", ""), form)

    def person_answer(
        self, user: DirectoryObject, audience: str, client_id: str, scope: str, form: Mapping[str, str]
    ) -> dict[str, Any]:
        """The token answer of a person's sign-in (password or device code): the access token, an
        ID token when `scope` asks for `openid`, and `client_info` when the form asks for it (as
        MSAL does with `client_info=1`: `{"uid": oid, "utid": tid}`, base64url)."""
        answer = self._answer(self.user_token(user, audience, client_id=client_id), scope)
        if "openid" in scope.split():
            answer["id_token"] = self.id_token(user, client_id)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user.id, "utid": self.tenant_id}, separators=(",", ":"))
            answer["client_info"] = _b64url(info.encode())
        return answer

    def client_credentials_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """A directory service principal or managed identity signing in to a cluster application."""
        principal = self.directory().find_app(form.get("client_id", ""))
        assert principal is not None  # callers check is_workload first
        audience = self.audience(form.get("scope", ""))
        secret = self.directory().secrets.get(principal.id)
        if secret is None or form.get("client_secret") != secret:
            raise SignInError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                "client secret value, not the client secret ID.",
            )
        return self._answer(self.workload_token(principal, audience), form.get("scope", ""))

    def _answer(self, token: str, scope: str) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    # Tokens -----------------------------------------------------------------------------------

    def _base_claims(self, principal: DirectoryObject, audience: str, lifetime: int | None) -> dict[str, Any]:
        now = int(time.time())
        pairwise = hashlib.sha256(f"{principal.id}/{audience}".encode()).digest()
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "oid": principal.id,
            "sub": _b64url(pairwise),
            "tid": self.tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        groups = self.directory().member_of(principal.id)
        if len(groups) > GROUPS_OVERAGE_LIMIT:
            endpoint = f"https://graph.windows.net/{self.tenant_id}/users/{principal.id}/getMemberObjects"
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": endpoint}}
        elif groups:
            claims["groups"] = groups
        return claims

    def user_token(
        self,
        user: DirectoryObject,
        audience: str,
        *,
        client_id: str = PUBLIC_CLIENTS[0],
        lifetime: int | None = None,
        kid: str | None = None,
    ) -> str:
        claims = self._base_claims(user, audience, lifetime)
        claims.update({"azp": client_id, "azpacr": "0", "scp": "user.read", **_names(user)})
        return self.keys.sign(claims, kid=kid)

    def id_token(self, user: DirectoryObject, client_id: str) -> str:
        """A v2.0 ID token for the public client that signed `user` in (its `aud`)."""
        now = int(time.time())
        pairwise = hashlib.sha256(f"{user.id}/{client_id}".encode()).digest()
        names = _names(user)
        names.pop("upn", None)  # v2.0 ID tokens carry preferred_username, not upn
        claims = {
            "aud": client_id,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "oid": user.id,
            "sub": _b64url(pairwise),
            "tid": self.tenant_id,
            "ver": "2.0",
            **names,
        }
        return self.keys.sign(claims)

    def workload_token(
        self, principal: DirectoryObject, audience: str, *, lifetime: int | None = None
    ) -> str:
        claims = self._base_claims(principal, audience, lifetime)
        claims.update({"azp": principal.properties["appId"], "azpacr": "1", "idtyp": "app"})
        return self.keys.sign(claims)

    def token_for(self, name: str, audience: str | None = None, **kwargs: Any) -> str:
        """A token for a user (UPN or id) or a service principal (appId), as the grants issue it."""
        directory = self.directory()
        audience = audience or self.applications[0]
        user = directory.find_user(name)
        if user is not None:
            return self.user_token(user, audience, **kwargs)
        principal = directory.find_app(name) or directory.get(name)
        if principal is None or principal.kind != "servicePrincipal":
            raise KeyError(f"no user or service principal {name!r} in the directory")
        return self.workload_token(principal, audience, **kwargs)
