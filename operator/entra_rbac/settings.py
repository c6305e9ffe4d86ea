"""The operator's settings: one pydantic-settings class read from `ENTRA_RBAC_*` environment variables.

Holds `Settings`, the duration and list parsers it needs, and `load_settings()`, which turns any
invalid value into ONE `SettingsError` naming the variable. It must not import adapters, kopf or
clients (layer 5). It is the one reader and validator of the environment: the directory adapter's
configuration is derived from a `Settings` (`entra_rbac.adapters.directory.directory_config`) and
checks nothing again. docs/configuration.md lists every field documented here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from entra_rbac.constants import (
    DEFAULT_DELETION_CONFIRMATION,
    DEFAULT_EVENT_SERIES_INTERVAL,
    DEFAULT_MAX_SHARDS,
    DEFAULT_RESERVED_NAMESPACES,
    DEFAULT_REVOCATION_GUARD_MIN,
    DEFAULT_REVOCATION_GUARD_SHARE,
    ETCD_REQUEST_BYTES,
    MAX_BINDING_BYTES,
    MAX_SHARDS_LIMIT,
    MIN_BINDING_BYTES,
    OPERATOR_NAME,
)
from entra_rbac.errors import SettingsError

ENV_PREFIX = "ENTRA_RBAC_"
# Where Kubernetes mounts the pod's own namespace; absent outside a cluster.
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.-]{0,252}$")
# RFC 1123 label: what a namespace, Role or ClusterRole name segment may look like. ClusterRole
# names may also hold ':' (system:...), which the allowlist must accept to reject it knowingly.
_ROLE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Cloud = Literal["public", "usgov", "usgov-dod", "china", "custom"]
Credential = Literal["workload-identity", "certificate", "client-secret"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
CommaList = Annotated[tuple[str, ...], NoDecode]


def parse_duration(value: object, *, allow_off: bool = False) -> float | None:
    """`30s`, `5m`, `1h` or plain seconds -> seconds; `off` -> None where allowed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if allow_off and text in ("off", ""):
            return None
        match = _DURATION.match(text)
        if match is None:
            hint = "off, " if allow_off else ""
            raise ValueError(f"{value!r} is not a duration (use {hint}30s, 5m, 1h or plain seconds)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds


def _split(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple):
        return tuple(str(item).strip() for item in value if str(item).strip())
    raise ValueError(f"{value!r} is not a comma-separated list")


def _pod_namespace() -> str | None:
    try:
        return SERVICE_ACCOUNT_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Settings(BaseSettings):
    """Every knob of `entra-rbac run`. Durations are seconds once parsed."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        # The docstring under each field becomes its description (one source for docs and help).
        use_attribute_docstrings=True,
    )

    # --- reconcile cadence and safety ---
    refresh_interval: float = 300.0
    """How often each EntraGroupBinding re-reads Entra (periodic refresh); `30s`, `5m`, `1h` or seconds."""
    delta_interval: float | None = 5.0
    """How often the operator asks Graph's delta query which watched groups changed (one request per
    50 groups); a change reconciles the resources concerned at once. `off` leaves only the refresh."""
    delta_queries_per_round: int = Field(default=4, ge=1)
    """At most this many delta queries (of 50 watched groups each) per round: with more watched
    groups they are polled in turn, so a change is seen within ⌈groups / 50 / this⌉ rounds."""
    cache_resync: float = 1800.0
    """How often the operator lists again what it watches (managed bindings, namespaces, roles,
    EntraGroupBindings) although the watches run: a backstop for a lost watch event. Reconciles
    read the cache, so an idle refresh sends no API request (docs/configuration.md)."""
    max_staleness: float | None = None
    """Revoke a resource's bindings after this long without a verified directory read (fail-closed).
    `off` (default) keeps them while Entra cannot be read (fail-static)."""
    revocation_guard_share: float = DEFAULT_REVOCATION_GUARD_SHARE
    """Hold back a reconcile that would remove more than this share of a resource's subjects."""
    revocation_guard_min: int = DEFAULT_REVOCATION_GUARD_MIN
    """...and at least this many subjects (small groups may shrink freely)."""
    deletion_confirmation: float = DEFAULT_DELETION_CONFIRMATION
    """How long after a group first reads as deleted (404, or a member list emptied) a second read
    from Entra must still agree before its subjects are revoked (docs/configuration.md)."""
    max_binding_bytes: int = MAX_BINDING_BYTES
    """The most compact JSON one binding may hold (bytes, 1,024 to 1,572,864): a user-mode binding
    over it is written as shards of the same role (docs/design.md, Subjects the operator emits:
    bindings too large to write)."""
    max_shards: int = DEFAULT_MAX_SHARDS
    """The most shards one binding may be split into (1 to 100; 1: never shard); a binding that
    would need more is refused with BindingTooLarge."""
    event_series_interval: float = DEFAULT_EVENT_SERIES_INTERVAL
    """How often a Warning Event that keeps recurring unchanged is counted up on the API server (its
    `count` and `lastTimestamp`); repeats in between are counted in memory (docs/monitoring.md)."""

    # --- what may be granted, and where ---
    allowed_cluster_roles: CommaList = ("view", "edit", "admin")
    """ClusterRoles an EntraGroupBinding may bind (comma list; `*` allows any)."""
    allowed_roles: CommaList = ()
    """Namespaced Role names an EntraGroupBinding may bind (comma list; empty = none; `*` = any)."""
    privileged_roles: CommaList = ("edit", "admin")
    """Privileged roles that may nevertheless be granted, named one by one (`system:*`,
    `cluster-admin`, and roles whose rules hold `*`, escalate, bind or impersonate)."""
    forbidden_namespaces: CommaList = ()
    """Namespaces an EntraGroupBinding may never target, by name or through a selector."""
    group_roles: str = ""
    """Optional `<group object id>=<role>[,<role>...]` entries, space-separated (`*=` for every
    other group): the roles each Entra group may receive. Empty: no restriction."""
    reserved_namespaces: CommaList = DEFAULT_RESERVED_NAMESPACES
    """Namespaces a selector never matches (explicit names still do); the operator's own is added."""
    operator_namespace: str | None = Field(default_factory=_pod_namespace)
    """The operator's own namespace; defaults to the pod's service account namespace file."""

    # --- observability ---
    log_format: LogFormat = "text"
    """`text` for people, `json` for log collectors."""
    log_level: LogLevel = "info"
    """debug | info | warning | error."""
    metrics_port: int = 8080
    """Port serving Prometheus metrics on /metrics; 0 turns them off."""
    health_port: int = 8081
    """Port of kopf's liveness endpoint (/healthz); 0 turns it off."""

    # --- high availability (kopf peering) ---
    peering_name: str = Field(default=OPERATOR_NAME, min_length=1)
    """The ClusterKopfPeering every instance joins (deploy/peering.yaml): at most one instance acts,
    the others pause (docs/deployment.md, Never two writers). Must exist, else every instance waits."""
    peering_priority: int = 0
    """The instance with the highest priority acts; equal priorities all pause (kopf's rule), so
    give a standby a lower one."""
    peering_lifetime: int = Field(default=60, ge=1)
    """Seconds a heartbeat stays valid: a standby takes over at most this long after the active
    instance stopped without saying goodbye (killed)."""
    standalone: bool = False
    """true: no peering at all, the instance acts whatever else runs. Unsafe with more than one
    instance (they fight over every binding); for a single instance without the peering CRD only."""

    # --- Kubernetes connection (the CLI's --kubeconfig / --context override these) ---
    kubeconfig: str | None = Field(
        default=None, validation_alias=AliasChoices("ENTRA_RBAC_KUBECONFIG", "KUBECONFIG")
    )
    """Kubeconfig file; unset: in-cluster service account, else ~/.kube/config."""
    kube_context: str | None = None
    """Kubeconfig context to use; unset: its current context."""

    # --- the directory (Entra ID through Microsoft Graph) ---
    cloud: Cloud = "public"
    """Sovereign cloud preset choosing the login and Graph hosts; `custom` needs both overrides."""
    tenant_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ENTRA_RBAC_TENANT_ID", "AZURE_TENANT_ID")
    )
    """Entra tenant (GUID or verified domain); defaults to workload identity's AZURE_TENANT_ID."""
    client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ENTRA_RBAC_CLIENT_ID", "AZURE_CLIENT_ID")
    )
    """Application (client) id; defaults to workload identity's AZURE_CLIENT_ID."""
    credential: Credential = "workload-identity"
    """How the operator proves who it is: workload-identity (no secret), certificate, client-secret."""
    client_secret: str | None = Field(default=None, repr=False)
    """Client secret for `client-secret` (discouraged; mount it from a Secret). Never logged."""
    certificate_path: str | None = None
    """PEM or PKCS12 file holding the certificate and its private key, for `certificate`."""
    federated_token_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ENTRA_RBAC_FEDERATED_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"),
    )
    """Projected service account token for workload identity; injected as AZURE_FEDERATED_TOKEN_FILE."""
    authority_host: str | None = Field(
        default=None, validation_alias=AliasChoices("ENTRA_RBAC_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST")
    )
    """Override the login host (custom clouds, the sandbox); an https URL without a path."""
    graph_url: str | None = None
    """Override the Graph base URL (custom clouds, the sandbox); https, no path but an optional `/v1.0`."""
    ca_file: str | None = None
    """Extra CA bundle trusted for Entra and Graph (the sandbox); added to the system's."""

    @field_validator(
        "refresh_interval", "deletion_confirmation", "event_series_interval", "cache_resync", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return parse_duration(value)

    @field_validator("max_staleness", "delta_interval", mode="before")
    @classmethod
    def _optional_duration(cls, value: object) -> float | None:
        return parse_duration(value, allow_off=True) if value is not None else None

    @field_validator("allowed_cluster_roles", "allowed_roles", mode="before")
    @classmethod
    def _role_list(cls, value: object) -> tuple[str, ...]:
        names = _split(value)
        for name in names:
            if name != "*" and not _ROLE_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid role name")
            if name.startswith("system:"):
                raise ValueError(f"{name!r}: system: roles are Kubernetes' own and cannot be allowed")
        return names

    @field_validator("privileged_roles", mode="before")
    @classmethod
    def _privileged_list(cls, value: object) -> tuple[str, ...]:
        names = _split(value)
        for name in names:
            if not _ROLE_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid role name")
        return names

    @field_validator("reserved_namespaces", "forbidden_namespaces", mode="before")
    @classmethod
    def _namespace_list(cls, value: object) -> tuple[str, ...]:
        names = _split(value)
        for name in names:
            if not _NAMESPACE.match(name) or len(name) > 63:
                raise ValueError(f"{name!r} is not a valid namespace name")
        return names

    @field_validator("log_format", "log_level", "cloud", "credential", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "operator_namespace", "kubeconfig", "kube_context", "tenant_id", "client_id",
        "client_secret", "certificate_path", "federated_token_file", "authority_host", "graph_url",
        "ca_file", mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty variable (common in ConfigMaps and .env files) means "not set", not "".
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("metrics_port", "health_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError(f"{value} is not a port (0-65535; 0 turns it off)")
        return value

    @field_validator("revocation_guard_share")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"{value} must be above 0 and at most 1 (a share of the subjects)")
        return value

    @field_validator("revocation_guard_min")
    @classmethod
    def _minimum(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"{value} must not be negative")
        return value

    @field_validator("max_binding_bytes")
    @classmethod
    def _binding_bytes(cls, value: int) -> int:
        if not MIN_BINDING_BYTES <= value <= ETCD_REQUEST_BYTES:
            raise ValueError(
                f"{value} must be from {MIN_BINDING_BYTES:,} (a binding's own metadata) to "
                f"{ETCD_REQUEST_BYTES:,} bytes (etcd's default request limit)"
            )
        return value

    @field_validator("max_shards")
    @classmethod
    def _shards(cls, value: int) -> int:
        if not 1 <= value <= MAX_SHARDS_LIMIT:
            raise ValueError(f"{value} must be from 1 (never shard) to {MAX_SHARDS_LIMIT}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for problem in self._problems():
            raise _FieldProblem(*problem)
        return self

    def _problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.max_staleness is not None and self.max_staleness < self.refresh_interval:
            problems.append(("max_staleness", "must be at least ENTRA_RBAC_REFRESH_INTERVAL (or off)"))
        if self.metrics_port and self.metrics_port == self.health_port:
            problems.append(("metrics_port", "must differ from ENTRA_RBAC_HEALTH_PORT"))
        if self.client_id is None:
            problems.append(("client_id", "is required (or AZURE_CLIENT_ID from workload identity)"))
        elif not _GUID.match(self.client_id):
            problems.append(("client_id", f"{self.client_id!r} is not a GUID"))
        if self.tenant_id is None:
            problems.append(("tenant_id", "is required (or AZURE_TENANT_ID from workload identity)"))
        elif not _TENANT.match(self.tenant_id):
            problems.append(("tenant_id", f"{self.tenant_id!r} is neither a GUID nor a domain name"))
        required = {
            "client-secret": ("client_secret", "is required when ENTRA_RBAC_CREDENTIAL=client-secret"),
            "certificate": ("certificate_path", "is required when ENTRA_RBAC_CREDENTIAL=certificate"),
            "workload-identity": (
                "federated_token_file",
                "is required for workload-identity (AZURE_FEDERATED_TOKEN_FILE, set by the webhook)",
            ),
        }[self.credential]
        if getattr(self, required[0]) is None:
            problems.append(required)
        if self.cloud == "custom":
            for name in ("authority_host", "graph_url"):
                if getattr(self, name) is None:
                    problems.append((name, "is required when ENTRA_RBAC_CLOUD=custom"))
        for name in ("authority_host", "graph_url"):
            problem = _endpoint_problem(name, getattr(self, name))
            if problem is not None:
                problems.append((name, problem))
        for name in ("ca_file", "certificate_path"):
            value = getattr(self, name)
            # Checked here so a typo stops startup with the variable's name, not a TLS error later.
            if value is not None and not (Path(value).is_file() and os.access(value, os.R_OK)):
                problems.append((name, f"{value!r} is not a readable file"))
        return problems

    @property
    def freshness(self) -> Freshness:
        """The refresh schedule and the directory cache's lifetime, both from the one interval."""
        return Freshness.of(self.refresh_interval)

    @property
    def reserved_namespace_set(self) -> frozenset[str]:
        """The reserved namespaces plus the operator's own: never selected by a selector."""
        own = {self.operator_namespace} if self.operator_namespace else set()
        return frozenset(self.reserved_namespaces) | own


# Share of the refresh interval a directory answer may be served from the cache (docs/design.md,
# Directory semantics: "One knob for freshness"); 1/5 keeps the old 60 s at the default 5 min.
CACHE_SHARE_OF_INTERVAL = 0.2
# Variables that no longer exist, with what replaced them (the runner names them at start).
RETIRED_VARIABLES = {
    "ENTRA_RBAC_DIRECTORY_CACHE_TTL": (
        "removed: the directory cache lifetime is derived from ENTRA_RBAC_REFRESH_INTERVAL"
    ),
}


@dataclass(frozen=True)
class Freshness:
    """How old the directory a resource shows may be, and the schedule that keeps it so.

    The promise is `interval`: whatever a resource shows was read from Entra at most that long
    ago. A refresh may be answered from the cache (up to `cache_lifetime` old) and may start up to
    one `tick` late, so refreshes are due every `period` = interval - cache_lifetime - tick, and
    cache_lifetime + tick + period == interval for every interval (tests/unit/test_freshness.py).
    """

    interval: float
    cache_lifetime: float
    tick: float
    period: float

    @classmethod
    def of(cls, interval: float) -> Freshness:
        cache_lifetime = interval * CACHE_SHARE_OF_INTERVAL
        tick = min(max(interval / 8, 0.05), 5.0)
        return cls(interval, cache_lifetime, tick, interval - cache_lifetime - tick)


# Paths an endpoint override may carry: Graph's version is added by the adapter (the sandbox names
# its base with it), and an authority is a bare host.
_ENDPOINT_PATHS = {"authority_host": ("", "/"), "graph_url": ("", "/", "/v1.0", "/v1.0/")}


def _endpoint_problem(name: str, value: str | None) -> str | None:
    """What is wrong with an endpoint override, or None (unset is fine)."""
    if value is None:
        return None
    parts = urlsplit(value)
    # Tokens are only ever sent over https (azure-identity and kiota both insist).
    if parts.scheme != "https" or not parts.hostname:
        return f"{value!r} must be an https URL (tokens are never sent in clear)"
    if parts.path not in _ENDPOINT_PATHS[name]:
        added = " (v1.0 is added)" if name == "graph_url" else ""
        return f"{value!r} must have no path{added}"
    return None


class _FieldProblem(ValueError):
    """A cross-field problem found after parsing, carried out of pydantic with its field name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    return f"{ENV_PREFIX}{field.upper()}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`ENTRA_RBAC_*` variables no setting reads: usually a typo that would silently change nothing."""
    known = {env_name(name) for name in Settings.model_fields} | set(RETIRED_VARIABLES)
    return sorted(
        name for name in environ if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    )


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (overrides win) or raise ONE `SettingsError` naming the variable."""
    try:
        return Settings(**overrides)
    except _FieldProblem as problem:
        raise SettingsError(f"{env_name(problem.field)}: {problem.problem}") from None
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """The first problem, named by its variable: one message a person can act on."""
    first = error.errors(include_url=False)[0]
    location = first.get("loc") or ("settings",)
    field = str(location[0])
    name = env_name(field) if field in Settings.model_fields else field
    if isinstance(first.get("ctx", {}).get("error"), _FieldProblem):
        problem: _FieldProblem = first["ctx"]["error"]
        return f"{env_name(problem.field)}: {problem.problem}"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] in ("literal_error", "int_parsing", "float_parsing") and value is not None:
        message = f"{value!r} is invalid: {message}"
    extra = len(error.errors()) - 1
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
    return f"{name}: {message}{more}"
