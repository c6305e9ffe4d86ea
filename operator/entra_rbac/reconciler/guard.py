"""The guardrails at reconcile (defence in depth): read what the check needs, then ask the core.

Holds `read_cluster` (the namespaces and the rules of every role the spec grants, aggregated
ClusterRoles included: one GET per role and one filtered LIST per aggregation selector) and
`inventory` (which roles exist, for RoleNotFound, from the same reads). The decision is
`core.guardrails.check_guardrails`; this module decides nothing. It must not import kopf.
"""

from __future__ import annotations

import asyncio

from entra_rbac.core.desired import Owner, RoleInventory, compute_desired
from entra_rbac.core.guardrails import ClusterView, RoleRules, effective_rules
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.subjects import SubjectSet
from entra_rbac.reconciler.context import ReconcileContext


async def read_cluster(owner: Owner, spec: EntraGroupBindingSpec, ctx: ReconcileContext) -> ClusterView:
    """What the guardrails and the desired bindings are computed from, read once per reconcile."""
    namespaces = await ctx.kube.list_namespaces() if spec.role_bindings else []
    reserved = frozenset(ctx.policy.reserved_namespaces)
    # The targets (every allowed grant at every place it reaches) do not depend on subjects.
    targets = compute_desired(
        owner,
        spec,
        SubjectSet((), ()),
        namespaces,
        reserved_namespaces=reserved,
        allowed_roles=ctx.policy.allowed_roles,
    ).targets
    cluster_names = sorted({t.role for t in targets if t.role_kind == "ClusterRole"})
    role_pairs = sorted({(t.namespace, t.role) for t in targets if t.role_kind == "Role" and t.namespace})
    cluster_rules = await asyncio.gather(*(_cluster_role(name, ctx) for name in cluster_names))
    role_bodies = await asyncio.gather(*(ctx.kube.get_role(ns, name) for ns, name in role_pairs))
    return ClusterView(
        namespaces=namespaces,
        cluster_roles={n: r for n, r in zip(cluster_names, cluster_rules, strict=True) if r is not None},
        roles={p: effective_rules(b) for p, b in zip(role_pairs, role_bodies, strict=True) if b is not None},
        reserved_namespaces=reserved,
    )


async def _cluster_role(name: str, ctx: ReconcileContext) -> RoleRules | None:
    role = await ctx.kube.get_cluster_role(name)
    if role is None:
        return None
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    sources = [r for s in selectors for r in await ctx.kube.list_cluster_roles(s)]
    return effective_rules(role, sources)


def inventory(view: ClusterView) -> RoleInventory:
    """Which roles exist, from the reads of `read_cluster`."""
    roles: dict[str, set[str]] = {}
    for namespace, name in view.roles:
        roles.setdefault(namespace, set()).add(name)
    return RoleInventory(
        cluster_roles=frozenset(view.cluster_roles),
        roles={ns: frozenset(names) for ns, names in roles.items()},
    )
