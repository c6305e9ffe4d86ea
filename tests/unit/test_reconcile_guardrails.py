"""The guardrails at reconcile, against the in-memory fakes (docs/design.md, Guardrails): a resource
outside them grants nothing, whole, suspended or not, without the revocation guard and without
reading Entra; roles' rules are read with aggregation."""

from __future__ import annotations

import dataclasses
from typing import Any

from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.guardrails import Guardrails
from entra_rbac.core.naming import BindingKey
from entra_rbac.reconciler import Policy
from tests.unit.reconcile_fakes import World, guid

G1 = guid(1)
VIEW = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:view")
PAYMENTS_EDIT = BindingKey.of("RoleBinding", "payments", "egb:team:clusterrole:edit")
IMPERSONATE = {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}
RAILS = Guardrails.from_data(
    {
        "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "view,edit",
        "ENTRA_RBAC_PRIVILEGED_ROLES": "edit",
        "ENTRA_RBAC_FORBIDDEN_NAMESPACES": "vault",
    },
    source="Guardrails entra-rbac-guardrails",
)


def user_spec(**extra: Any) -> dict[str, Any]:
    return {
        "groups": [{"id": G1}],
        "subjects": {"kind": "User"},
        "clusterRoleBindings": [{"clusterRole": "view"}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
        **extra,
    }


async def granted_world() -> World:
    """Six users hold view cluster-wide and edit in payments: removing them all would be held
    back by the revocation guard, were it a directory change."""
    world = World(policy=Policy(guardrails=RAILS))
    world.kube.namespaces = [NamespaceInfo("payments"), NamespaceInfo("vault", {"team": "pay"})]
    world.directory.add_group(G1, *(f"u{i}@contoso.com" for i in range(6)))
    world.apply(user_spec())
    outcome = await world.reconcile()
    assert outcome.settled
    assert world.kube.owned_keys() == sorted([VIEW, PAYMENTS_EDIT])
    return world


def stalled(world: World) -> tuple[str, str, str]:
    ready, stalled_ = world.condition(), world.condition("Stalled")
    return ready["reason"], stalled_["status"], ready["message"]


async def test_one_offending_grant_revokes_every_binding_of_the_resource_without_the_hold() -> None:
    world = await granted_world()
    lookups = world.directory.lookups
    world.apply(user_spec(roleBindings=[{"clusterRole": "edit", "namespaces": ["payments", "vault"]}]))
    outcome = await world.reconcile()
    assert world.kube.owned_keys() == []  # view too: nothing is granted from the resource
    assert world.directory.lookups == lookups  # Entra is not read
    reason, stalled_, message = stalled(world)
    assert (reason, stalled_, outcome.reason) == ("GuardrailViolation", "True", "GuardrailViolation")
    assert "spec.roleBindings[0].namespaces[1]: namespace 'vault' may never be targeted" in message
    assert outcome.settled
    assert "revocationHold" not in world.status or world.status["revocationHold"] is None
    # The revocation audited (one summary naming each binding and the group), and a Warning.
    revoked = [e for e in world.kube.events if e["reason"] == "Revoked"]
    assert len(revoked) == 1, world.kube.events
    assert "deleted 2 bindings" in revoked[0]["message"]
    assert G1 in revoked[0]["message"]
    warnings = [e for e in world.kube.events if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["GuardrailViolation"]


async def test_a_suspended_resource_outside_the_guardrails_still_loses_its_bindings() -> None:
    world = await granted_world()
    world.apply(
        user_spec(suspend=True, clusterRoleBindings=[{"clusterRole": "view"}, {"clusterRole": "admin"}])
    )
    await world.reconcile()
    assert world.kube.owned_keys() == []
    assert world.condition()["reason"] == "RoleNotAllowed"
    assert world.condition("Stalled")["status"] == "True"


async def test_the_guardrails_in_force_decide_and_a_fix_grants_again() -> None:
    world = await granted_world()
    world.ctx.policy = dataclasses.replace(
        world.ctx.policy, guardrails=dataclasses.replace(RAILS, privileged_roles=frozenset())
    )
    world.kube.rules["edit"] = [IMPERSONATE]
    await world.reconcile()
    assert world.kube.owned_keys() == []
    assert (
        "ClusterRole 'edit' is privileged (its rules grant verb 'impersonate' on users)" in stalled(world)[2]
    )
    world.ctx.policy = dataclasses.replace(world.ctx.policy, guardrails=RAILS)
    outcome = await world.reconcile()
    assert outcome.settled
    assert world.kube.owned_keys() == sorted([VIEW, PAYMENTS_EDIT])
    assert world.condition()["reason"] == "Reconciled"


async def test_a_rule_aggregated_into_a_cluster_role_makes_it_privileged() -> None:
    world = await granted_world()
    world.kube.aggregation["view"] = [{"aggregate-to-view": "true"}]
    world.kube.cluster_roles.add("extra")
    world.kube.role_labels["extra"] = {"aggregate-to-view": "true"}
    world.kube.rules["extra"] = [IMPERSONATE]
    await world.reconcile()
    assert world.kube.owned_keys() == []
    assert "spec.clusterRoleBindings[0].clusterRole: ClusterRole 'view' is privileged" in stalled(world)[2]
