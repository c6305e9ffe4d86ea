"""What the reconciler asks of the Kubernetes API: the `Cluster` protocol (beside `entra.Directory`).

`adapters.kube.KubeAdapter` implements it over HTTP; the unit tests implement it in memory, so
the reconciler is tested without a server. Objects travel as plain manifests (dicts), the shape
the core plans with. Failures are raised as the kube adapter's typed `KubeError`s
(`NotFoundError`, `ConflictError` / `AlreadyExistsError`, `ForbiddenError` /
`NamespaceTerminatingError`, `UnavailableError`, ...); reads of one object answer None or False
instead of raising `NotFoundError`. Pure: a type, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.naming import BindingKind


class Cluster(Protocol):
    """The reads and writes of one reconcile: its resource, its bindings, namespaces, roles, Events."""

    async def get_resource(self, name: str) -> dict[str, Any] | None:
        """The EntraGroupBinding as it is now, or None when there is none by that name."""

    async def patch_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the resource's status subresource."""

    async def list_owned_bindings(self, owner_uid: str) -> list[dict[str, Any]]:
        """Every binding labelled as managed for this owner, each with its `kind` set."""

    async def get_binding(self, kind: BindingKind, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object at that name (ours or not), or None."""

    async def create_binding(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create; `AlreadyExistsError` when the name is taken."""

    async def patch_binding(
        self, kind: BindingKind, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch; `ConflictError` when the patch's resourceVersion is stale."""

    async def delete_binding(
        self, kind: BindingKind, namespace: str | None, name: str, *, uid: str, resource_version: str | None
    ) -> bool:
        """Delete exactly that object (uid and resourceVersion preconditions); False if already gone."""

    async def list_namespaces(self) -> list[NamespaceInfo]: ...

    async def cluster_role_exists(self, name: str) -> bool: ...

    async def role_names(self, namespaces: Sequence[str], names: Sequence[str]) -> dict[str, frozenset[str]]:
        """Which of `names` exist as Roles in each of `namespaces`."""

    async def emit_event(
        self,
        *,
        owner_name: str,
        owner_uid: str,
        reason: str,
        message: str,
        type_: Literal["Normal", "Warning"] = "Normal",
        action: str = "Reconcile",
    ) -> dict[str, Any]:
        """Post an Event about the resource (the audit trail of every binding write)."""
