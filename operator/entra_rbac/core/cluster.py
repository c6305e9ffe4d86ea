"""What the reconciler asks of the Kubernetes API: the `Cluster` protocol (beside `entra.Directory`).

`adapters.kube.KubeAdapter` implements it over HTTP; the unit tests implement it in memory, so
the reconciler is tested without a server. Objects travel as plain manifests (dicts), the shape
the core plans with. Failures are raised as the kube adapter's typed `KubeError`s
(`NotFoundError`, `ConflictError` / `AlreadyExistsError`, `ForbiddenError` /
`NamespaceTerminatingError`, `UnavailableError`, ...); reads of one object answer None or False
instead of raising `NotFoundError`. Pure: a type, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.events import EventDraft
from entra_rbac.core.naming import BindingKind

if TYPE_CHECKING:
    from entra_rbac.core.plan import Action
    from entra_rbac.errors import KubeError


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

    async def delete_binding(
        self, kind: BindingKind, namespace: str | None, name: str, *, uid: str, resource_version: str | None
    ) -> bool:
        """Delete exactly that object (uid and resourceVersion preconditions); False if already gone."""

    async def write_bindings(self, actions: Sequence[Action]) -> list[KubeError | None]:
        """Each action's write, in order, each its own request (a replace: delete, then create):
        None for one that took effect (a delete of an object already gone too), else its error."""

    async def list_namespaces(self) -> list[NamespaceInfo]: ...

    def view_version(self) -> Hashable | None:
        """A value equal between two calls only if no namespace, Role or ClusterRole changed in
        between (None: unknown, assume everything changed)."""

    async def get_cluster_role(self, name: str) -> dict[str, Any] | None:
        """The ClusterRole (its rules and aggregationRule), or None."""

    async def list_cluster_roles(self, selector: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ClusterRoles a label selector object (an aggregationRule's) matches."""

    async def get_role(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Role in that namespace, or None."""

    async def create_event(self, draft: EventDraft, *, owner_name: str, owner_uid: str, now: datetime) -> str:
        """Post an Event about the resource (`core.events.event_manifest`); its generated name."""

    async def patch_event(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch an Event posted earlier (a repeat's count); `NotFoundError` once it expired."""
