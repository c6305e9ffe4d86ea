"""`explain` decides whose a binding is as the reconcile does (docs/design.md, Ownership): only a
binding at one of a resource's targets is managed by it; one carrying its marks anywhere else is
said to claim it (forged or stale), with no Entra group attributed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from entra_rbac.core.desired import NamespaceInfo, Owner, build_binding
from entra_rbac.core.rbac import RoleBook
from entra_rbac.core.subjects import Subject, SubjectSet
from entra_rbac.insight.explain import ExplainState, Query, as_json, as_text, explain

UID = "aaaaaaaa-0000-0000-0000-000000000001"
GROUP = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
ROLES = [{"metadata": {"name": name}, "rules": RULES} for name in ("edit", "admin")]
VICTIM = {
    "metadata": {"name": "victim", "uid": UID},
    "spec": {
        "groups": [{"id": GROUP}],
        "roleBindings": [{"clusterRole": "edit", "namespaces": ["payments"]}],
    },
    "status": {"groups": [{"ref": f"id={GROUP}", "id": GROUP, "displayName": "Team", "state": "Resolved"}]},
}


def written(role: str, namespace: str, *subjects: Subject) -> dict[str, Any]:
    """A binding exactly as the operator writes it for the victim (marks, annotations), wherever."""
    found = SubjectSet(subjects or (Subject("Group", GROUP),), (GROUP,))
    manifest = build_binding(Owner("victim", UID), "ClusterRole", role, namespace, found).to_manifest()
    return {**manifest, "kind": "RoleBinding"}


def state(*bindings: dict[str, Any]) -> ExplainState:
    namespaces = [NamespaceInfo("payments"), NamespaceInfo("team-b")]
    return ExplainState(list(bindings), RoleBook.from_manifests(ROLES), [VICTIM], namespaces)


FRIEND = Subject("User", "friend@contoso.com")


def test_a_binding_with_a_resources_marks_outside_its_targets_is_not_managed_by_it() -> None:
    own = written("edit", "payments")
    elsewhere = written("edit", "team-b", FRIEND)  # the victim's name, a namespace it does not target
    other_role = written("admin", "payments", FRIEND)  # a target namespace, a role it does not grant
    answer = asyncio.run(explain(Query(), state(own, elsewhere, other_role), None))
    by_where = {(v.path.key.namespace, v.path.key.name): v for v in answer.paths}
    assert by_where[("payments", "egb:victim:clusterrole:edit")].managed_by == "victim"
    for key in (("team-b", "egb:victim:clusterrole:edit"), ("payments", "egb:victim:clusterrole:admin")):
        view = by_where[key]
        assert (view.managed_by, view.claims_managed, view.groups) == (None, True, ())
        assert view.not_managed_because is not None
        assert "claims to be managed by EntraGroupBinding victim but is not one of its targets" in (
            view.not_managed_because
        )
    text = as_text(asyncio.run(explain(Query(user=FRIEND.name), state(own, elsewhere, other_role), None)))
    assert "managed by EntraGroupBinding victim" not in text.replace("claims to be managed by", "")
    assert (
        "    unmanaged: it claims to be managed by EntraGroupBinding victim but is not one of its targets "
        "(its spec grants no RoleBinding egb:victim:clusterrole:edit in namespace team-b): forged or "
        "stale; the operator deletes it as a stray (a leftover or a forgery)\n"
    ) in text
    alone = asyncio.run(explain(Query(user=FRIEND.name), state(elsewhere), None))
    paths = json.loads(as_json(alone))["paths"]
    assert [(p["managedBy"], p["claimsManaged"], p["entraGroups"]) for p in paths] == [(None, True, [])]
