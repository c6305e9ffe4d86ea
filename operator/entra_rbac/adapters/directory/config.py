"""How the operator reaches Entra: cloud, tenant, application, credential kind, endpoints.

Holds `DirectoryConfig` (validated once, frozen) and the sovereign-cloud endpoint table. It must
not build clients or read files: `credentials.py` and `client.py` turn a config into live objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from entra_rbac.errors import SettingsError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A tenant may also be named by a verified domain (contoso.onmicrosoft.com).
_TENANT = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.-]{0,252}$")
_E = TypeVar("_E", bound=StrEnum)


class Cloud(StrEnum):
    PUBLIC = "public"
    USGOV = "usgov"
    USGOV_DOD = "usgov-dod"
    CHINA = "china"
    CUSTOM = "custom"


class CredentialKind(StrEnum):
    WORKLOAD_IDENTITY = "workload-identity"
    CERTIFICATE = "certificate"
    CLIENT_SECRET = "client-secret"


@dataclass(frozen=True)
class CloudEndpoints:
    authority_host: str
    graph_url: str


# Authority and Graph host always travel together: a token for one cloud's Graph is useless on
# another's (docs/design.md, Platform facts: "Sovereign clouds"; Graph "deployments" docs).
CLOUD_ENDPOINTS: Mapping[Cloud, CloudEndpoints] = {
    Cloud.PUBLIC: CloudEndpoints("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    Cloud.USGOV: CloudEndpoints("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    Cloud.USGOV_DOD: CloudEndpoints("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    Cloud.CHINA: CloudEndpoints("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


@dataclass(frozen=True)
class DirectoryConfig:
    """Everything the directory adapter needs; invalid values raise `SettingsError` naming the field.

    `authority_host` / `graph_url` override the cloud's endpoints (required for `custom`, e.g. the
    sandbox). `ca_file` is an extra CA trusted by both the token and the Graph connections, on top
    of the system's. Durations are seconds.
    """

    tenant_id: str
    client_id: str
    cloud: Cloud = Cloud.PUBLIC
    credential: CredentialKind = CredentialKind.WORKLOAD_IDENTITY
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    federated_token_file: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    ca_file: str | None = None
    # One attempt (token + request + body) may take this long before it counts as a failure.
    request_timeout: float = 30.0
    # How long a verified answer is reused; keep it below the refresh interval so every
    # timer tick sees fresh data while concurrent reconciles share one read.
    cache_lifetime: float = 60.0
    # Throttling and 5xx: at most this many retries, and never more than this much waiting in
    # total per call, so a reconcile fails fast (fail-static) instead of hanging.
    max_retries: int = 3
    max_retry_wait: float = 30.0

    def __post_init__(self) -> None:
        _check(_GUID.match(self.client_id) is not None, "client_id", "must be a GUID")
        _check(_TENANT.match(self.tenant_id) is not None, "tenant_id", "must be a GUID or a domain name")
        object.__setattr__(self, "cloud", _enum(Cloud, self.cloud, "cloud"))
        object.__setattr__(self, "credential", _enum(CredentialKind, self.credential, "credential"))
        self._check_credential()
        self._check_endpoints()
        _check(self.request_timeout > 0, "request_timeout", "must be positive")
        _check(self.cache_lifetime >= 0, "cache_lifetime", "must not be negative")
        _check(0 <= self.max_retries <= 10, "max_retries", "must be between 0 and 10")
        _check(self.max_retry_wait >= 0, "max_retry_wait", "must not be negative")

    def _check_credential(self) -> None:
        kind = self.credential
        if kind is CredentialKind.CLIENT_SECRET:
            _check(bool(self.client_secret), "client_secret", "is required for credential client-secret")
        if kind is CredentialKind.CERTIFICATE:
            _check(bool(self.certificate_path), "certificate_path", "is required for credential certificate")
        if kind is CredentialKind.WORKLOAD_IDENTITY:
            _check(
                bool(self.federated_token_file),
                "federated_token_file",
                "is required for credential workload-identity (AZURE_FEDERATED_TOKEN_FILE)",
            )

    def _check_endpoints(self) -> None:
        if self.cloud is Cloud.CUSTOM:
            _check(self.authority_host is not None, "authority_host", "is required for cloud custom")
            _check(self.graph_url is not None, "graph_url", "is required for cloud custom")
        for name in ("authority_host", "graph_url"):
            value = getattr(self, name)
            if value is not None:
                parts = urlsplit(value)
                # Tokens are only ever sent over https (azure-identity and kiota both insist).
                _check(
                    parts.scheme == "https" and bool(parts.hostname),
                    name,
                    f"must be an https URL, got {value!r}",
                )
                allowed = ("", "/", "/v1.0", "/v1.0/") if name == "graph_url" else ("", "/")
                _check(parts.path in allowed, name, f"must have no path (v1.0 is added), got {value!r}")

    @property
    def endpoints(self) -> CloudEndpoints:
        """The authority and Graph base (no trailing slash), overrides applied."""
        default = CLOUD_ENDPOINTS.get(self.cloud)
        authority = self.authority_host or (default.authority_host if default else "")
        graph = self.graph_url or (default.graph_url if default else "")
        # Accept the versioned base too (`https://host/v1.0`, as the sandbox names it).
        return CloudEndpoints(authority.rstrip("/"), graph.rstrip("/").removesuffix("/v1.0"))

    @property
    def graph_host(self) -> str:
        """Bare host name of Graph: what kiota's allowed-hosts check compares against."""
        return urlsplit(self.endpoints.graph_url).hostname or ""

    @property
    def graph_scope(self) -> str:
        """`.default` scope on the same cloud's Graph; Entra rejects a port in it, so none."""
        return f"https://{self.graph_host}/.default"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> DirectoryConfig:
        """Build from `ENTRA_RBAC_*`, falling back to workload identity's injected `AZURE_*`.

        The caller passes `os.environ` (or a settings dict); `overrides` set durations etc.
        """

        def pick(*names: str) -> str | None:
            for name in names:
                value = env.get(name, "").strip()
                if value:
                    return value
            return None

        values: dict[str, object] = {
            "tenant_id": pick("ENTRA_RBAC_TENANT_ID", "AZURE_TENANT_ID") or "",
            "client_id": pick("ENTRA_RBAC_CLIENT_ID", "AZURE_CLIENT_ID") or "",
            "cloud": pick("ENTRA_RBAC_CLOUD") or Cloud.PUBLIC,
            "credential": pick("ENTRA_RBAC_CREDENTIAL") or CredentialKind.WORKLOAD_IDENTITY,
            "client_secret": pick("ENTRA_RBAC_CLIENT_SECRET"),
            "certificate_path": pick("ENTRA_RBAC_CERTIFICATE_PATH"),
            "federated_token_file": pick("AZURE_FEDERATED_TOKEN_FILE"),
            "authority_host": pick("ENTRA_RBAC_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
            "graph_url": pick("ENTRA_RBAC_GRAPH_URL"),
            "ca_file": pick("ENTRA_RBAC_CA_FILE"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise SettingsError(f"directory setting {name}: {problem}")


def _enum(kind: type[_E], value: object, name: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise SettingsError(f"directory setting {name}: {value!r} is not one of {allowed}") from None
