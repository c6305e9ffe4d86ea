"""The sandbox's identity platform: applications, the token endpoint's logic, access tokens.

Holds what `/{tenant}/oauth2/v2.0/token` decides for the client-credentials grant (a secret, a
certificate assertion, or a federated workload-identity assertion), the signed access tokens it
issues (ES256 JWTs, keys published as JWKS) and their validation on every Graph call. Also the
sandbox's stand-in for a cluster's service-account issuer, which signs federated tokens.
Knows nothing of HTTP routing or of the directory's contents.

What azure-identity sends (checked against its source): form fields `client_id`, `grant_type=
client_credentials`, `scope=<resource>/.default`, and either `client_secret` or
`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with
`client_assertion`: for a certificate a JWT signed with its key (RS256 with header `x5t` = SHA-1
thumbprint, or PS256 with `x5t#S256`), `aud` = the token URL, `iss` = `sub` = client id; for
workload identity the service-account token itself (issuer, subject and audience
`api://AzureADTokenExchange` checked against the app's federated credential). It needs back
`access_token`, `token_type`, `expires_in`. Errors use Entra's shape: `{"error",
"error_description": "AADSTS...", "error_codes", "timestamp", "trace_id", "correlation_id"}`.
"""

from __future__ import annotations

import base64
import datetime
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Graph hosts of the public and sovereign clouds: a `.default` scope on any of them is Graph.
GRAPH_HOSTS = (
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
DEFAULT_ROLES = ("GroupMember.Read.All", "User.ReadBasic.All")
DEFAULT_SUBJECT = "system:serviceaccount:entra-rbac-system:entra-rbac-operator"

if TYPE_CHECKING:
    from entra_rbac_sandbox.entra.devicecode import DeviceCodes
    from entra_rbac_sandbox.entra.oidc import SignIn

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class TokenRequestError(Exception):
    """The token endpoint refuses: `status` and Entra's error JSON."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace}",
            "error_codes": [self.code],
            "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        }


# AADSTS500011's second sentence, which Entra adds when a person signs in to the resource.
NOT_INSTALLED = (
    " This can happen if the application has not been installed by the administrator of the tenant."
)


def resource_not_found(resource: str, tenant_id: str, detail: str = "") -> TokenRequestError:
    """Entra's `invalid_resource` refusal (AADSTS500011) of a scope naming no resource in the tenant."""
    return TokenRequestError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant {tenant_id}.{detail}",
    )


class AccessTokenError(Exception):
    """A Graph call's bearer token is missing or invalid (401 InvalidAuthenticationToken)."""


@dataclass(frozen=True)
class FederatedCredential:
    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


@dataclass
class Application:
    """An app registration with its service principal's application permissions (`roles`)."""

    client_id: str
    client_secret: str | None = None
    certificates: list[x509.Certificate] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    roles: tuple[str, ...] = DEFAULT_ROLES
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class AccessClaims:
    audience: str
    roles: tuple[str, ...]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ServiceAccountIssuer:
    """Signs service-account tokens as a cluster's OIDC issuer would (workload identity)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = _b64url(uuid.uuid4().bytes)

    def sign(
        self,
        subject: str = DEFAULT_SUBJECT,
        *,
        audience: str = FEDERATION_AUDIENCE,
        lifetime: float = 3600,
        issuer: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def verify(self, token: str, expected: FederatedCredential) -> dict[str, Any]:
        return jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["ES256"],
            audience=expected.audience,
            issuer=expected.issuer,
            options={"require": ["exp", "iss", "sub", "aud"]},
        )


class TokenService:
    """Decides token requests for one tenant and validates the tokens it issued."""

    def __init__(
        self,
        tenant_id: str,
        applications: Iterable[Application],
        *,
        federation: ServiceAccountIssuer,
        token_lifetime: int = 3600,
        sign_in: SignIn | None = None,
        device_codes: DeviceCodes | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.sign_in = sign_in  # people and workloads signing in to clusters (oidc.py)
        self.device_codes = device_codes  # people signing in on another device (devicecode.py)
        self.applications = {app.client_id: app for app in applications}
        self.federation = federation
        self.token_lifetime = token_lifetime
        self.issuer = f"https://sts.windows.net/{tenant_id}/"
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = _b64url(uuid.uuid4().bytes)
        self.issued = 0  # tokens issued, for tests
        self.port: int | None = None  # the server's, once it listens (its URL is an audience too)

    # Token endpoint ---------------------------------------------------------------------------

    def grant(self, tenant: str, form: Mapping[str, str], token_urls: Iterable[str]) -> dict[str, Any]:
        """Answer a token request (the JSON body of a 200) or raise TokenRequestError."""
        if tenant.lower() != self.tenant_id:
            raise TokenRequestError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        grant_type = form.get("grant_type")
        client_id = form.get("client_id", "")
        if grant_type == "password" and self.sign_in is not None:
            return self.sign_in.password_grant(form)
        if grant_type == DEVICE_CODE_GRANT and self.device_codes is not None:
            return self.device_codes.poll(form)
        if grant_type != "client_credentials":
            raise TokenRequestError(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type: only client_credentials, password "
                f"and {DEVICE_CODE_GRANT} are served here.",
            )
        if (
            client_id.lower() not in self.applications
            and self.sign_in
            and self.sign_in.is_workload(client_id)
        ):
            return self.sign_in.client_credentials_grant(form)
        app = self.applications.get(client_id.lower())
        if app is None:
            raise TokenRequestError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        resource = self._resource(form.get("scope", ""))
        self._authenticate(app, form, list(token_urls))
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self.issue(app, resource),
        }

    def _resource(self, scope: str) -> str:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise TokenRequestError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope '{scope}' is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier.",
            )
        resource = scopes[0].removesuffix("/.default")
        if resource not in self.graph_resources() and resource != GRAPH_APP_ID:
            raise resource_not_found(resource, self.tenant_id)
        return resource

    def _authenticate(self, app: Application, form: Mapping[str, str], token_urls: list[str]) -> None:
        if "client_secret" in form:
            if app.client_secret is None or form["client_secret"] != app.client_secret:
                raise TokenRequestError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is "
                    "the client secret value, not the client secret ID.",
                )
            return
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            raise TokenRequestError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            malformed = "JWT token is invalid or malformed."
            raise TokenRequestError(401, "invalid_client", 50027, malformed) from None
        if "x5t" in header or "x5t#S256" in header:
            self._check_certificate_assertion(app, assertion, header, token_urls)
        else:
            self._check_federated_assertion(app, assertion)

    def _check_certificate_assertion(
        self, app: Application, assertion: str, header: Mapping[str, Any], token_urls: list[str]
    ) -> None:
        certificate = next((c for c in app.certificates if _thumbprint_matches(c, header)), None)
        if certificate is None:
            raise TokenRequestError(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not registered "
                f"on application. [Reason - The key was not found., Thumbprint of key used by "
                f"client: '{header.get('x5t') or header.get('x5t#S256')}']",
            )
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=token_urls,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRequestError(
                401, "invalid_client", 700027, f"Client assertion failed signature validation: {error}."
            ) from None
        if claims["iss"] != app.client_id or claims["sub"] != app.client_id:
            raise TokenRequestError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    def _check_federated_assertion(self, app: Application, assertion: str) -> None:
        failures = []
        for expected in app.federated:
            try:
                claims = self.federation.verify(assertion, expected)
            except jwt.PyJWTError as error:
                failures.append(str(error))
                continue
            if claims["sub"] == expected.subject:
                return
            failures.append(f"subject '{claims['sub']}' is not '{expected.subject}'")
        reason = "; ".join(failures) or "the application has no federated identity credential"
        raise TokenRequestError(
            400,
            "invalid_client",
            700213,
            f"No matching federated identity record found for presented assertion ({reason}).",
        )

    # Access tokens ----------------------------------------------------------------------------

    def graph_resources(self) -> set[str]:
        """Audiences that mean Graph: every cloud's Graph host, and the sandbox's own names."""
        hosts = [*GRAPH_HOSTS, *LOOPBACK_HOSTS]
        resources = {f"https://{host}" for host in hosts}
        if self.port is not None:
            resources |= {f"https://{host}:{self.port}" for host in LOOPBACK_HOSTS}
        return resources

    def issue(
        self,
        app: Application,
        resource: str = "https://graph.microsoft.com",
        *,
        roles: Iterable[str] | None = None,
        lifetime: int | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "appid": app.client_id,
            "azp": app.client_id,
            "idtyp": "app",
            "oid": app.object_id,
            "sub": app.object_id,
            "roles": list(app.roles if roles is None else roles),
            "tid": self.tenant_id,
            "ver": "1.0",
        }
        self.issued += 1
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})

    def validate(self, authorization: str | None, audiences: Iterable[str]) -> AccessClaims:
        """Check a Graph call's `Authorization` header; raises AccessTokenError with Graph's text."""
        if not authorization:
            raise AccessTokenError("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AccessTokenError("Access token is empty.")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key.public_key(),
                algorithms=["ES256"],
                audience=list(audiences),
                issuer=self.issuer,
                options={"require": ["exp", "aud", "iss", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise AccessTokenError("Lifetime validation failed, the token is expired.") from None
        except jwt.InvalidAudienceError:
            raise AccessTokenError("Access token validation failure. Invalid audience.") from None
        except jwt.PyJWTError:
            raise AccessTokenError("Access token validation failure.") from None
        if claims["tid"] != self.tenant_id:
            raise AccessTokenError("Access token validation failure. Invalid tenant.")
        return AccessClaims(str(claims["aud"]), tuple(claims.get("roles", ())))

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        signing = self.sign_in.keys.jwks() if self.sign_in is not None else []
        return {
            "keys": [
                *signing,
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "use": "sig",
                    "alg": "ES256",
                    "kid": self.kid,
                    "x": _b64url(numbers.x.to_bytes(32, "big")),
                    "y": _b64url(numbers.y.to_bytes(32, "big")),
                },
            ]
        }


def _thumbprint_matches(certificate: x509.Certificate, header: Mapping[str, Any]) -> bool:
    # azure-identity sends padded base64url; unpadded is the JWS norm: compare without padding.
    if "x5t#S256" in header:
        return str(header["x5t#S256"]).rstrip("=") == _b64url(certificate.fingerprint(hashes.SHA256()))
    sha1 = certificate.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is defined as SHA-1
    return str(header["x5t"]).rstrip("=") == _b64url(sha1)
