"""How the operator reaches Entra: cloud, tenant, application, credential kind, endpoints.

Holds `DirectoryConfig`, a plain typed value, `directory_config(settings)`, which derives it from
the operator's `Settings`, and the sovereign-cloud endpoint table. `Settings` is the one reader and
validator of the `ENTRA_RBAC_*` variables: nothing here reads the environment or checks a value
again. It must not build clients or read files: `credentials.py` and `client.py` turn a config
into live objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from entra_rbac.settings import Cloud, Credential, Settings


@dataclass(frozen=True)
class CloudEndpoints:
    authority_host: str
    graph_url: str


# Authority and Graph host always travel together: a token for one cloud's Graph is useless on
# another's (docs/design.md, Platform facts: "Sovereign clouds"). `custom` has no entry: its
# endpoints are the overrides, which the settings require for it.
CLOUD_ENDPOINTS: Mapping[Cloud, CloudEndpoints] = {
    "public": CloudEndpoints("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": CloudEndpoints("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-dod": CloudEndpoints("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": CloudEndpoints("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


@dataclass(frozen=True, kw_only=True)
class DirectoryConfig:
    """Everything the directory adapter needs, as `directory_config` derives it from `Settings`.

    The first group of fields mirrors the settings of the same names (see `Settings` for what each
    means and docs/configuration.md for the variables). `authority_host` / `graph_url` override the
    cloud's endpoints (required for `custom`, e.g. the sandbox). The last group are the adapter's
    own limits, not settings. Durations are seconds.
    """

    tenant_id: str
    client_id: str
    cloud: Cloud
    credential: Credential
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    federated_token_file: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    ca_file: str | None = None
    # How long a verified answer is shared between reconciles: derived from the refresh interval
    # (`Settings.freshness`), never set on its own.
    cache_ttl: float
    # One attempt (token + request + body) may take this long before it counts as a failure.
    request_timeout: float = 30.0
    # Throttling and 5xx: at most this many retries, and never more than this much waiting in
    # total per call, so a reconcile fails fast (fail-static) instead of hanging.
    max_retries: int = 3
    max_retry_wait: float = 30.0
    # Delta queries (50 groups each) per round of the delta follower, at most.
    delta_queries_per_round: int = 4

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


def directory_config(settings: Settings) -> DirectoryConfig:
    """The directory adapter's configuration from the operator's (already validated) settings."""
    # Settings guarantees both once validated (a missing one is a SettingsError naming its variable).
    assert settings.tenant_id is not None
    assert settings.client_id is not None
    return DirectoryConfig(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        cloud=settings.cloud,
        credential=settings.credential,
        client_secret=settings.client_secret,
        certificate_path=settings.certificate_path,
        federated_token_file=settings.federated_token_file,
        authority_host=settings.authority_host,
        graph_url=settings.graph_url,
        ca_file=settings.ca_file,
        cache_ttl=settings.freshness.cache_lifetime,
        delta_queries_per_round=settings.delta_queries_per_round,
    )
