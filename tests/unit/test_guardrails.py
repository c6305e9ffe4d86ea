"""The guardrails re-checked at reconcile (docs/design.md, Guardrails): parsing them as the admission
policy reads them, and the pure check, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.core.desired import AllowedRoles, NamespaceInfo
from entra_rbac.core.guardrails import (
    KEYS,
    ClusterView,
    Guardrails,
    GuardrailsError,
    RoleRules,
    check_guardrails,
    effective_rules,
    privileged_rule,
)
from entra_rbac.core.problems import Reason
from tests.unit.core_builders import G1, G2, spec

SOURCE = "Guardrails entra-rbac-guardrails"
GUARDRAILS_ENV = {
    "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "view,edit,admin",
    "ENTRA_RBAC_ALLOWED_ROLES": "deployer",
    "ENTRA_RBAC_PRIVILEGED_ROLES": "edit,admin",
    "ENTRA_RBAC_FORBIDDEN_NAMESPACES": "entra-rbac-system,vault",
    "ENTRA_RBAC_GROUP_ROLES": "",
    "ENTRA_RBAC_MAX_WINDOW_ROLES": "",
    "ENTRA_RBAC_MAX_WINDOW": "4h",
}
RAILS = Guardrails.from_data(GUARDRAILS_ENV, source=SOURCE)
IMPERSONATE = {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
VIEW = {"view": RoleRules((READ_PODS,))}


def rails(**changes: str) -> Guardrails:
    return Guardrails.from_data({**GUARDRAILS_ENV, **changes}, source=SOURCE)


def view(
    namespaces: tuple[NamespaceInfo, ...] = (
        NamespaceInfo("payments"),
        NamespaceInfo("vault", {"team": "pay"}),
    ),
    cluster_roles: dict[str, RoleRules] | None = None,
    roles: dict[tuple[str, str], RoleRules] | None = None,
) -> ClusterView:
    return ClusterView(
        namespaces=namespaces,
        cluster_roles=VIEW if cluster_roles is None else cluster_roles,
        roles=roles or {},
        reserved_namespaces=frozenset({"kube-system", "entra-rbac-system"}),
    )


# --- parsing, as the admission policy reads the same keys ---------------------------------------


def test_the_guardrails_env_keys_parse_into_the_guardrails() -> None:
    assert RAILS.allowed == AllowedRoles(frozenset({"view", "edit", "admin"}), frozenset({"deployer"}))
    assert RAILS.privileged_roles == {"edit", "admin"}
    assert RAILS.forbidden_namespaces == {"entra-rbac-system", "vault"}
    assert RAILS.group_roles is None
    assert rails(ENTRA_RBAC_GROUP_ROLES=f" {G1}=view,edit  *=view ").group_roles == {
        G1: {"view", "edit"},
        "*": {"view"},
    }
    # A missing key is empty, as the policy reads it: no role of that kind may be granted.
    assert not Guardrails.from_data({}, source=SOURCE).allowed.allows("ClusterRole", "view")
    assert set(KEYS) == set(GUARDRAILS_ENV)


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"ENTRA_RBAC_GROUP_ROLES": f"{G1}"}, "ENTRA_RBAC_GROUP_ROLES", f"entry '{G1}' is malformed"),
        ({"ENTRA_RBAC_GROUP_ROLES": f"{G1}=view {G1}=edit"}, "ENTRA_RBAC_GROUP_ROLES", "repeats its group"),
        ({"ENTRA_RBAC_GROUP_ROLES": "=view"}, "ENTRA_RBAC_GROUP_ROLES", "malformed"),
        ({"ENTRA_RBAC_GROUP_ROLES": f"{G1}=a=b"}, "ENTRA_RBAC_GROUP_ROLES", "malformed"),
        ({"ENTRA_RBAC_ALOWED_ROLES": "x"}, "ENTRA_RBAC_ALOWED_ROLES", "is not a guardrail"),
        ({"ENTRA_RBAC_ALLOWED_ROLES": 3}, "ENTRA_RBAC_ALLOWED_ROLES", "must be a string"),
    ],
)
def test_malformed_guardrails_are_refused_naming_the_key(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(GuardrailsError) as caught:
        Guardrails.from_data(data, source=SOURCE)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert words in str(caught.value)


# --- what makes a role privileged -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "why"),
    [
        ([READ_PODS], None),
        ([READ_PODS, IMPERSONATE], "verb 'impersonate' on serviceaccounts"),
        (
            [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"]}],
            "verb 'bind'",
        ),
        (
            [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}],
            "escalate",
        ),
        ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}], "verb '*' on pods"),
        ([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}], "'*' in resources (verbs get)"),
        ([{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}], "'*' in apiGroups"),
        ([{"nonResourceURLs": ["*"], "verbs": ["get"]}], "'*' in nonResourceURLs"),
        ([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}], None),
    ],
)
def test_a_role_is_privileged_when_its_rules_hold_a_wildcard_or_a_lending_verb(
    rules: list[dict[str, Any]], why: str | None
) -> None:
    found = privileged_rule(RoleRules(tuple(rules)))
    assert (found is None) == (why is None), found
    if why is not None:
        assert why in str(found)


def test_an_aggregated_cluster_role_has_the_rules_of_every_role_its_selectors_match() -> None:
    edit = {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}, "rules": [READ_PODS]}
    # The controller has not copied the newly aggregated rule yet: it counts all the same.
    rules = effective_rules(edit, [{"rules": [IMPERSONATE]}, {"rules": None}])
    assert rules.rules == (READ_PODS, IMPERSONATE)
    assert privileged_rule(rules) is not None


# --- the check, table-driven ------------------------------------------------------------------


CASES: list[tuple[str, dict[str, Any], Guardrails, ClusterView, list[tuple[Reason, str, str]]]] = [
    ("within the guardrails", {}, RAILS, view(), []),
    (
        "a role outside the allowlist",
        {"clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": "secrets-reader"}]},
        RAILS,
        view(),
        [(Reason.ROLE_NOT_ALLOWED, "spec.clusterRoleBindings[1].clusterRole", "'secrets-reader' is not in")],
    ),
    (
        "cluster-admin allowed by `*` but not named privileged",
        {"clusterRoleBindings": [{"clusterRole": "cluster-admin"}]},
        rails(ENTRA_RBAC_ALLOWED_CLUSTER_ROLES="*"),
        view(cluster_roles={}),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.clusterRoleBindings[0].clusterRole",
                f"ClusterRole 'cluster-admin' is privileged: it may be granted only when "
                f"ENTRA_RBAC_PRIVILEGED_ROLES in {SOURCE} names it",
            )
        ],
    ),
    (
        "a system: role",
        {"roleBindings": [{"clusterRole": "system:controller:foo", "namespaces": ["payments"]}]},
        rails(ENTRA_RBAC_ALLOWED_CLUSTER_ROLES="*"),
        view(),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.roleBindings[0].clusterRole",
                "'system:controller:foo' is privileged",
            )
        ],
    ),
    (
        "cluster-admin named privileged passes",
        {"clusterRoleBindings": [{"clusterRole": "cluster-admin"}]},
        rails(ENTRA_RBAC_ALLOWED_CLUSTER_ROLES="cluster-admin", ENTRA_RBAC_PRIVILEGED_ROLES="cluster-admin"),
        view(cluster_roles={"cluster-admin": RoleRules(({"apiGroups": ["*"], "verbs": ["*"]},))}),
        [],
    ),
    (
        "view whose aggregated rules now impersonate",
        {},
        RAILS,
        view(cluster_roles={"view": RoleRules((READ_PODS, IMPERSONATE))}),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.clusterRoleBindings[0].clusterRole",
                "ClusterRole 'view' is privileged (its rules grant verb 'impersonate' on serviceaccounts)",
            )
        ],
    ),
    (
        "edit impersonates but is named privileged",
        {"clusterRoleBindings": [{"clusterRole": "edit"}]},
        RAILS,
        view(cluster_roles={"edit": RoleRules((IMPERSONATE,))}),
        [],
    ),
    (
        "a missing role is not privileged (RoleNotFound is the reconciler's)",
        {"clusterRoleBindings": [{"clusterRole": "admin"}]},
        rails(ENTRA_RBAC_PRIVILEGED_ROLES=""),
        view(cluster_roles={}),
        [],
    ),
    (
        "a Role whose rules bind, in one target namespace",
        {"roleBindings": [{"role": "deployer", "namespaces": ["payments", "billing"]}]},
        RAILS,
        view(
            namespaces=(NamespaceInfo("payments"), NamespaceInfo("billing")),
            roles={
                ("payments", "deployer"): RoleRules((READ_PODS,)),
                ("billing", "deployer"): RoleRules(({"resources": ["roles"], "verbs": ["bind"]},)),
            },
        ),
        [(Reason.GUARDRAIL_VIOLATION, "spec.roleBindings[0].role", "Role 'deployer' in namespace 'billing'")],
    ),
    (
        "a forbidden namespace named",
        {"roleBindings": [{"clusterRole": "view", "namespaces": ["payments", "vault"]}]},
        RAILS,
        view(),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.roleBindings[0].namespaces[1]",
                f"namespace 'vault' may never be targeted (ENTRA_RBAC_FORBIDDEN_NAMESPACES in {SOURCE})",
            )
        ],
    ),
    (
        "a forbidden namespace reached by a selector",
        {"roleBindings": [{"clusterRole": "view", "namespaceSelector": {"matchLabels": {"team": "pay"}}}]},
        RAILS,
        view(),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.roleBindings[0].namespaceSelector",
                "namespace 'vault', matched by the selector, may never be targeted",
            )
        ],
    ),
    (
        "a selector never reaches a reserved namespace, forbidden or not",
        {"roleBindings": [{"clusterRole": "view", "namespaceSelector": {"matchLabels": {"team": "pay"}}}]},
        rails(ENTRA_RBAC_FORBIDDEN_NAMESPACES="kube-system"),
        view(namespaces=(NamespaceInfo("kube-system", {"team": "pay"}),)),
        [],
    ),
    (
        "a group/role pair not given",
        {
            "groups": [{"id": G1}, {"id": G2}],
            "clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": "edit"}],
        },
        rails(ENTRA_RBAC_GROUP_ROLES=f"{G1}=view,edit *=view"),
        view(cluster_roles={**VIEW, "edit": RoleRules()}),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.groups[1]",
                f"group {G2} may not receive ClusterRole edit (spec.clusterRoleBindings[1]; "
                f"ENTRA_RBAC_GROUP_ROLES in {SOURCE})",
            )
        ],
    ),
    (
        "a group named by displayName gets only the `*` entry's roles",
        {"groups": [{"displayName": "Payments"}]},
        rails(ENTRA_RBAC_GROUP_ROLES=f"{G1}=view"),
        view(),
        [
            (
                Reason.GUARDRAIL_VIOLATION,
                "spec.groups[0]",
                "group displayName=Payments may not receive ClusterRole view",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "guardrails", "cluster", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_check_guardrails_reports_every_violation_naming_the_field_and_the_guardrail(
    body: dict[str, Any],
    guardrails: Guardrails,
    cluster: ClusterView,
    expected: list[tuple[Reason, str, str]],
) -> None:
    found = check_guardrails(spec(**body), guardrails, cluster)
    assert [(p.reason, p.field) for p in found] == [(r, f) for r, f, _ in expected]
    for problem, (_, _, words) in zip(found, expected, strict=True):
        assert words in problem.message, problem.message
        assert problem.stalls
