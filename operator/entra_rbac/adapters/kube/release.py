"""`entra-rbac release-bindings`: turn the operator's bindings into hand-made ones, in the API.

Lists every RoleBinding and ClusterRoleBinding carrying the managed-by label, and replaces each
one the operator owns (core.handover) with its released form, by an update that carries the
resourceVersion it read: a binding changed in between is re-read and tried again, never
overwritten blindly. Synchronous (a one-shot command), through the adapters' KubeTransport.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from entra_rbac.adapters.kube.adapter import binding_path
from entra_rbac.adapters.kube.errors import ConflictError, NotFoundError
from entra_rbac.adapters.kube.transport import KubeTransport
from entra_rbac.constants import RBAC_API_VERSION
from entra_rbac.core.handover import controlling_resource, released
from entra_rbac.core.naming import BindingKind, managed_selector

_ATTEMPTS = 5
_KINDS: tuple[tuple[BindingKind, str], ...] = (
    ("ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
    ("RoleBinding", "/apis/rbac.authorization.k8s.io/v1/rolebindings"),
)


@dataclass(frozen=True)
class Released:
    kind: str
    namespace: str | None
    name: str
    resource: str

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} (from EntraGroupBinding {self.resource})"


def _managed(transport: KubeTransport) -> Iterator[tuple[BindingKind, dict[str, Any]]]:
    """Every binding with the managed-by label, page by page (a failed page fails the command)."""
    for kind, path in _KINDS:
        query = {"labelSelector": managed_selector(), "limit": "500"}
        while True:
            page = transport.request("GET", path, what=f"list {kind}s", query=query)
            yield from ((kind, item) for item in page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            query = {**query, "continue": token}


def _release_one(
    transport: KubeTransport,
    kind: BindingKind,
    item: dict[str, Any],
    resources: frozenset[str] | None,
    dry_run: bool,
) -> Released | None:
    query = {"dryRun": "All"} if dry_run else None
    for attempt in range(_ATTEMPTS):
        body = released({**item, "kind": kind, "apiVersion": RBAC_API_VERSION}, resources)
        if body is None:
            return None
        meta = body["metadata"]
        path = binding_path(kind, meta.get("namespace"), meta["name"])
        try:
            transport.request("PUT", path, what=f"release {kind} {meta['name']}", query=query, body=body)
        except NotFoundError:
            return None
        except ConflictError:
            if attempt + 1 == _ATTEMPTS:
                raise
            item = transport.request("GET", path, what=f"read {kind} {meta['name']}")
            continue
        return Released(kind, meta.get("namespace"), meta["name"], str(controlling_resource(item)))
    return None


def release_bindings(
    api: client.ApiClient, resources: frozenset[str] | None, *, dry_run: bool
) -> list[Released]:
    """Release the bindings of `resources` (None: of every EntraGroupBinding); what was released."""
    transport = KubeTransport(api)
    done = (_release_one(transport, kind, item, resources, dry_run) for kind, item in _managed(transport))
    return [r for r in done if r is not None]
