"""What every reconcile shares: the clients, the policy taken from settings, metrics, the clock,
and the one per-resource memory.

Holds `Policy`, `ReconcileContext`, `Clients` (the concrete adapters, built once at startup by
`build_clients` and closed at cleanup) and `build_context`. The context names the adapters by
their protocols (`core.cluster.Cluster`, `core.entra.Directory`) so tests hand it in-memory
fakes. It must not import kopf.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from entra_rbac.adapters.directory import EntraDirectory, directory_config
from entra_rbac.adapters.kube import KubeAdapter, KubeTransport, build_api_client
from entra_rbac.constants import (
    DEFAULT_DELETION_CONFIRMATION,
    DEFAULT_EVENT_SERIES_INTERVAL,
    DEFAULT_RESERVED_NAMESPACES,
    DEFAULT_REVOCATION_GUARD_MIN,
    DEFAULT_REVOCATION_GUARD_SHARE,
    OPERATOR_NAME,
)
from entra_rbac.core.cluster import Cluster
from entra_rbac.core.desired import AllowedRoles
from entra_rbac.core.entra import Directory
from entra_rbac.core.guardrails import Guardrails, GuardrailsError, parse_group_roles
from entra_rbac.core.shards import Sharding
from entra_rbac.errors import SettingsError
from entra_rbac.metrics import OperatorMetrics
from entra_rbac.reconciler.memory import ResourceMemory
from entra_rbac.reconciler.subject_lists import SubjectLists
from entra_rbac.settings import Settings

# Reconciles applying their plans at once (docs/design.md, Writing resource by resource): the
# rest wait their turn, so each one's writes go out back to back and its status follows them,
# instead of every reconcile's writes interleaving through the Kubernetes client's threads and
# every resource finishing at the end of a burst. Below the client's 16 threads, so a status
# write or an Event never queues behind more than a handful of binding writes.
WRITERS = 8
# Reconciles past their directory read, building and applying their bindings at once (issue 17
# point 6; docs/design.md, Memory after a burst): kopf starts a handler per resource, so a burst of
# 1,000 new (or resumed) resources held 1,000 reconciles' desired bindings, plans and statuses
# while they waited for the WRITERS' turns, and Python's small-object allocator kept the arenas
# that filled for good. The rest wait here holding their spec and directory answer only; every
# directory read still goes out at once, so the lookups of a burst coalesce as before.
CONVERGING = 32

# Seconds before a failed write is retried or a held revocation re-checked; shorter refresh
# intervals shorten it (see `Policy.from_settings`).
RETRY_DELAY = 10.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """The operator-wide rules a reconcile applies (all from settings; see docs/configuration.md)."""

    # Seconds without a verified directory read after which bindings are revoked; None = never.
    max_staleness: float | None = None
    revocation_guard_share: float = DEFAULT_REVOCATION_GUARD_SHARE
    revocation_guard_min: int = DEFAULT_REVOCATION_GUARD_MIN
    reserved_namespaces: Collection[str] = DEFAULT_RESERVED_NAMESPACES
    # What may be granted at all: from the settings at start, then from the Guardrails object
    # whenever it changes (`triggers.guardrails`).
    guardrails: Guardrails = field(default_factory=Guardrails)
    # Pause before retrying after a failed write or a stale read (seconds).
    retry_delay: float = RETRY_DELAY
    # Least time between a group's first deleted-looking read and the fresh read that confirms it.
    deletion_confirmation: float = DEFAULT_DELETION_CONFIRMATION
    # Least time between two writes of a Warning Event that recurs unchanged (docs/design.md, Events).
    event_series_interval: float = DEFAULT_EVENT_SERIES_INTERVAL
    # How a binding too large for one object is split
    # (docs/design.md, Subjects the operator emits: bindings too large to write).
    sharding: Sharding = field(default_factory=Sharding)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_staleness=settings.max_staleness,
            revocation_guard_share=settings.revocation_guard_share,
            revocation_guard_min=settings.revocation_guard_min,
            reserved_namespaces=settings.reserved_namespace_set,
            guardrails=guardrails_from_settings(settings),
            # Retry a failed write (or re-check a held revocation) within one refresh interval.
            retry_delay=min(RETRY_DELAY, settings.refresh_interval),
            deletion_confirmation=settings.deletion_confirmation,
            event_series_interval=settings.event_series_interval,
            sharding=Sharding(settings.max_binding_bytes, settings.max_shards),
        )

    @property
    def allowed_roles(self) -> AllowedRoles:
        return self.guardrails.allowed


def guardrails_from_settings(settings: Settings) -> Guardrails:
    """The guardrails of the operator's own settings (the ConfigMap rendered from
    deploy/guardrails.env), in force until the Guardrails object is read; raises SettingsError."""
    try:
        group_roles = parse_group_roles(settings.group_roles)
    except GuardrailsError as error:
        raise SettingsError(f"{error.key}: {str(error).removeprefix(error.key + ': ')}") from None
    return Guardrails(
        allowed=AllowedRoles(
            cluster_roles=frozenset(settings.allowed_cluster_roles), roles=frozenset(settings.allowed_roles)
        ),
        privileged_roles=frozenset(settings.privileged_roles),
        forbidden_namespaces=frozenset(settings.forbidden_namespaces),
        group_roles=group_roles,
        source="the operator's settings",
    )


@dataclass
class ReconcileContext:
    """Shared by every reconcile of one operator process."""

    kube: Cluster
    directory: Directory
    policy: Policy
    metrics: OperatorMetrics
    clock: Callable[[], datetime] = utc_now
    memory: ResourceMemory = field(default_factory=ResourceMemory)
    # User-mode subjects built once per distinct member lists (`reconciler.subject_lists`).
    subject_lists: SubjectLists = field(default_factory=SubjectLists)
    # The turns to apply a plan (`WRITERS` at once); see `reconciler.apply.apply_plan`.
    writers: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(WRITERS))
    # The reconciles building and applying their bindings at once (`CONVERGING`).
    converging: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONVERGING))


@dataclass
class Clients:
    """The operator's connections: to the API server and to Entra. Built once, closed once."""

    kube: KubeAdapter
    directory: EntraDirectory

    async def aclose(self) -> None:
        """Close the directory's connections and the Kubernetes client."""
        await self.directory.aclose()
        self.kube.close()


def build_clients(settings: Settings, metrics: OperatorMetrics, *, instance: str = OPERATOR_NAME) -> Clients:
    """The adapters for `entra-rbac run`; raises SettingsError on an unusable configuration."""
    api_client = build_api_client(settings.kubeconfig, settings.kube_context)
    kube = KubeAdapter(KubeTransport(api_client), instance=instance)
    return Clients(kube=kube, directory=EntraDirectory(directory_config(settings), metrics=metrics))


def build_context(settings: Settings, clients: Clients, metrics: OperatorMetrics) -> ReconcileContext:
    context = ReconcileContext(
        kube=clients.kube,
        directory=clients.directory,
        policy=Policy.from_settings(settings),
        metrics=metrics,
    )
    # While every writer's turn is taken, a group answered now would wait for a turn anyway: a
    # burst's id or name read may wait for more keys meanwhile (docs/performance.md, Graph at the floor).
    clients.directory.hold_reads_while(context.writers.locked)
    return context
