"""End to end: the guardrails re-checked at reconcile and read live (docs/design.md, Guardrails).

No admission policy is installed (as before the guard existed, or with it in audit mode), so the
API server admits everything and the operator is the only line: a resource granting a role
that is privileged by its (aggregated) rules is Stalled with nothing bound, and a change of the
Guardrails object is followed within seconds, revoking, then granting again, a whole resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from entra_rbac_sandbox.launcher import project_file
from tests.e2e.harness import Cluster, guid

pytestmark = pytest.mark.e2e

TEAM = guid(300)
NAMESPACE = "e2e-guard"
LENDER = "e2e-guard-lender"  # an aggregated ClusterRole whose one source may impersonate users
PART = "e2e-guard-lender-part"
AGGREGATE = "e2e.entra-rbac.io/aggregate-to-lender"
CRD = "guardrails.entra-rbac.io"
# Within a few refresh intervals (2 s) and a watch event, with room for a loaded machine.
PROMPT = 60.0


def guardrails(forbidden: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "Guardrails",
        "metadata": {"name": "entra-rbac-guardrails"},
        "data": {
            "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": f"view,edit,admin,{LENDER}",
            "ENTRA_RBAC_ALLOWED_ROLES": "",
            "ENTRA_RBAC_PRIVILEGED_ROLES": "edit,admin",
            "ENTRA_RBAC_FORBIDDEN_NAMESPACES": forbidden,
            "ENTRA_RBAC_GROUP_ROLES": "",
        },
    }


def resource(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": {"groups": [{"id": TEAM}], **spec},
    }


def cluster_role(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        **fields,
    }


@pytest.fixture
def guarded(cluster: Cluster) -> Iterator[Cluster]:
    """The Guardrails kind (installed after the operator started, as on a first install) and two
    ClusterRoles; removed afterwards (waited for): the control plane is shared."""
    cluster.kubectl("apply", "-f", str(project_file("deploy", "admission/guardrails-crd.yaml")))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    cluster.apply(
        cluster_role(
            LENDER, aggregationRule={"clusterRoleSelectors": [{"matchLabels": {AGGREGATE: "true"}}]}
        ),
        {
            **cluster_role(
                PART, rules=[{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]
            ),
            "metadata": {"name": PART, "labels": {AGGREGATE: "true"}},
        },
    )
    try:
        yield cluster
    finally:
        cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=true", "--timeout=120s")
        cluster.kubectl("delete", "clusterrole", LENDER, PART, "--ignore-not-found", "--wait=true")


def bindings_of(cluster: Cluster, owner: str) -> list[tuple[str, str, str]]:
    return sorted(key for key in cluster.managed_bindings() if f"egb:{owner}:" in key[2])


def test_guardrails_are_rechecked_at_reconcile_and_followed_live(guarded: Cluster) -> None:
    cluster = guarded
    cluster.directory(
        {"groups": [{"id": TEAM, "displayName": "Team", "securityEnabled": True, "members": []}]}
    )
    cluster.namespace(NAMESPACE)
    cluster.apply(guardrails())
    cluster.apply(
        resource(
            "team",
            {
                "clusterRoleBindings": [{"clusterRole": "view"}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": [NAMESPACE]}],
            },
        ),
        resource("lender", {"clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": LENDER}]}),
    )
    cluster.wait_ready("team", timeout=PROMPT)
    assert len(bindings_of(cluster, "team")) == 2

    # Allowed by name, privileged by the rule aggregated into it: nothing bound, view included.
    ready = cluster.wait_reason("lender", "GuardrailViolation", timeout=PROMPT)
    assert ready["message"].startswith(
        f"spec.clusterRoleBindings[1].clusterRole: ClusterRole '{LENDER}' is privileged "
        "(its rules grant verb 'impersonate' on users): it may be granted only when "
        "ENTRA_RBAC_PRIVILEGED_ROLES in Guardrails entra-rbac-guardrails names it"
    ), ready["message"]
    assert cluster.condition("lender", "Stalled")["status"] == "True"
    assert bindings_of(cluster, "lender") == []

    # The namespace becomes forbidden: the whole resource is revoked within seconds, no restart.
    cluster.apply(guardrails(forbidden=f"entra-rbac-system,{NAMESPACE}"))
    ready = cluster.wait_reason("team", "GuardrailViolation", timeout=PROMPT)
    assert (
        f"spec.roleBindings[0].namespaces[0]: namespace '{NAMESPACE}' may never be targeted"
        in ready["message"]
    )
    cluster.wait_for(
        "team's bindings to be revoked", lambda: not bindings_of(cluster, "team") or None, PROMPT
    )

    # And allowed again: granted again.
    cluster.apply(guardrails())
    cluster.wait_ready("team", timeout=PROMPT)
    assert len(bindings_of(cluster, "team")) == 2
    cluster.assert_operator_alive()
