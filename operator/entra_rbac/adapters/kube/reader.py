"""`ClusterReader`: the read-only view `plan`, `explain` and `report` take of a cluster.

Holds GETs only: lists (paged with `limit` / `continue`) of every EntraGroupBinding, binding,
role and namespace, and the one Guardrails object. It sends no write of any kind, not even a dry
run, so whoever runs the commands needs nothing but get/list (docs/cli.md lists the RBAC).
Synchronous on purpose: a command reads, decides, prints and exits. Failures are the typed
`KubeError`s of `errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from entra_rbac.adapters.kube.errors import NotFoundError
from entra_rbac.adapters.kube.transport import KubeTransport
from entra_rbac.constants import (
    API_VERSION,
    GUARDRAILS_NAME,
    GUARDRAILS_PLURAL,
    KIND,
    PLURAL,
    RBAC_API_VERSION,
)
from entra_rbac.errors import KubeError

_RBAC = f"/apis/{RBAC_API_VERSION}"
# A page of a list: large enough to be quick, bounded so a huge cluster streams.
PAGE_SIZE = 500


class CrdMissingError(KubeError):
    """The cluster does not know EntraGroupBinding: the operator's CRD is not installed."""


class ClusterReader:
    """Lists through one `KubeTransport`; `pages` streams, the others collect."""

    def __init__(self, transport: KubeTransport, *, page_size: int = PAGE_SIZE) -> None:
        self.transport = transport
        self.page_size = page_size

    def pages(self, path: str, *, what: str) -> Iterator[list[dict[str, Any]]]:
        """Every item, one page at a time; a failed page fails the whole list. The next page is
        asked for (in one helper thread) as soon as its continue token is known, so the API
        server's work on it overlaps the caller's on this one; at most two pages are held."""
        params = {"limit": str(self.page_size)}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="entra-rbac-list") as pool:
            pending: Future[dict[str, Any]] | None = pool.submit(
                self.transport.request, "GET", path, what=what, query=params
            )
            while pending is not None:
                page = pending.result()
                token = (page.get("metadata") or {}).get("continue")
                pending = None
                if token:
                    query = {**params, "continue": str(token)}
                    pending = pool.submit(self.transport.request, "GET", path, what=what, query=query)
                yield list(page.get("items") or [])

    def _all(self, path: str, *, what: str) -> list[dict[str, Any]]:
        return [item for page in self.pages(path, what=what) for item in page]

    def resources(self) -> list[dict[str, Any]]:
        """Every EntraGroupBinding; `CrdMissingError` when the cluster has no such kind."""
        try:
            return self._all(f"/apis/{API_VERSION}/{PLURAL}", what=f"list {KIND}s")
        except NotFoundError:
            raise CrdMissingError(
                f"the cluster has no {KIND} kind ({API_VERSION}): install the operator's CRD (crds/) first",
                status=404,
            ) from None

    def cluster_role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        return self.pages(f"{_RBAC}/clusterrolebindings", what="list ClusterRoleBindings")

    def role_bindings(self) -> Iterator[list[dict[str, Any]]]:
        return self.pages(f"{_RBAC}/rolebindings", what="list RoleBindings")

    def bindings(self) -> list[dict[str, Any]]:
        """Every ClusterRoleBinding, then every RoleBinding, each with its `kind` set."""
        found: list[dict[str, Any]] = []
        for kind, pages in (
            ("ClusterRoleBinding", self.cluster_role_bindings()),
            ("RoleBinding", self.role_bindings()),
        ):
            found.extend({**item, "kind": kind} for page in pages for item in page)
        return found

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self._all(f"{_RBAC}/clusterroles", what="list ClusterRoles")

    def roles(self) -> list[dict[str, Any]]:
        return self._all(f"{_RBAC}/roles", what="list Roles")

    def guardrails(self) -> dict[str, Any] | None:
        """The cluster's Guardrails object, or None when it (or its kind) does not exist."""
        path = f"/apis/{API_VERSION}/{GUARDRAILS_PLURAL}/{GUARDRAILS_NAME}"
        try:
            return self.transport.request("GET", path, what=f"get Guardrails {GUARDRAILS_NAME}")
        except NotFoundError:
            return None

    def namespaces(self) -> list[dict[str, Any]]:
        return self._all("/api/v1/namespaces", what="list namespaces")
