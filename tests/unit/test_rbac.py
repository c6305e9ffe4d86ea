"""core.rbac: RBAC evaluation as kube-apiserver's authorizer does it (tests/e2e/test_insight_real.py
holds the same answers to SubjectAccessReviews of the real server)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.core.rbac import Identity, Request, RoleBook, Rule, access_paths, allowed


def _rule(**fields: Any) -> Rule:
    return Rule.from_manifest(fields)


@pytest.mark.parametrize(
    ("rule", "request_", "expected"),
    [
        (_rule(verbs=["get"], apiGroups=[""], resources=["pods"]), Request("get", "pods"), True),
        (_rule(verbs=["get"], apiGroups=[""], resources=["pods"]), Request("list", "pods"), False),
        (_rule(verbs=["*"], apiGroups=[""], resources=["pods"]), Request("delete", "pods"), True),
        (_rule(verbs=["get"], apiGroups=["apps"], resources=["pods"]), Request("get", "pods"), False),
        (
            _rule(verbs=["get"], apiGroups=["*"], resources=["deployments"]),
            Request("get", "deployments", "apps"),
            True,
        ),
        (_rule(verbs=["get"], apiGroups=[""], resources=["*"]), Request("get", "secrets"), True),
        # A subresource needs its own entry, `*/sub`, or `*`.
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["pods"]),
            Request("get", "pods", subresource="log"),
            False,
        ),
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]),
            Request("get", "pods", subresource="log"),
            True,
        ),
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["*/log"]),
            Request("get", "pods", subresource="log"),
            True,
        ),
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["*"]),
            Request("get", "pods", subresource="log"),
            True,
        ),
        (_rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]), Request("get", "pods"), False),
        # resourceNames: empty means any; else only the named objects.
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            Request("get", "configmaps", name="a"),
            True,
        ),
        (
            _rule(verbs=["get"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            Request("get", "configmaps", name="b"),
            False,
        ),
        (
            _rule(verbs=["list"], apiGroups=[""], resources=["configmaps"], resourceNames=["a"]),
            Request("list", "configmaps"),
            False,
        ),
        # Non-resource URLs: exact, `*`, or a prefix ending in `*`.
        (_rule(verbs=["get"], nonResourceURLs=["/healthz"]), Request("get", path="/healthz"), True),
        (_rule(verbs=["get"], nonResourceURLs=["/healthz"]), Request("get", path="/healthz/etcd"), False),
        (_rule(verbs=["get"], nonResourceURLs=["/healthz*"]), Request("get", path="/healthz/etcd"), True),
        (_rule(verbs=["get"], nonResourceURLs=["*"]), Request("get", path="/metrics"), True),
        (_rule(verbs=["get"], apiGroups=["*"], resources=["*"]), Request("get", path="/metrics"), False),
        (_rule(verbs=["get"], nonResourceURLs=["*"]), Request("get", "pods"), False),
    ],
)
def test_rule_allows_as_the_authorizer_does(rule: Rule, request_: Request, expected: bool) -> None:
    assert rule.allows(request_) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pods", Request("get", "pods", namespace="a")),
        ("deployments.apps", Request("get", "deployments", "apps", namespace="a")),
        ("pods/log", Request("get", "pods", subresource="log", namespace="a")),
        ("deployments.apps/scale", Request("get", "deployments", "apps", "scale", namespace="a")),
        ("/healthz", Request("get", path="/healthz")),
    ],
)
def test_request_parses_kubectl_spelling(text: str, expected: Request) -> None:
    assert Request.parse("get", text, "a") == expected


def _role(
    name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "rules": rules, **extra}


def _binding(
    kind: str, name: str, role: tuple[str, str], subjects: list[dict[str, Any]], namespace: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role[0], "name": role[1]},
        "subjects": subjects,
    }


PODS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
SECRETS = {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}


def test_aggregated_cluster_role_takes_the_rules_of_the_roles_it_selects() -> None:
    book = RoleBook.from_manifests(
        [
            _role(
                "reader", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "reader"}}]}
            ),
            _role("pods", [PODS], {"agg": "reader"}),
            _role("secrets", [SECRETS], {"agg": "other"}),
            # Aggregation of an aggregated role: its (aggregated) rules count.
            _role("top", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "top"}}]}),
            _role(
                "reader-too",
                [],
                {"agg": "top"},
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "reader"}}]},
            ),
        ]
    )
    assert book.cluster_roles["reader"] == (Rule.from_manifest(PODS),)
    assert book.cluster_roles["top"] == (Rule.from_manifest(PODS),)


def test_aggregation_replaces_the_roles_own_rules_and_survives_a_cycle() -> None:
    book = RoleBook.from_manifests(
        [
            _role(
                "a",
                [SECRETS],
                {"x": "1"},
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]},
            ),
            _role(
                "b",
                [PODS],
                {"x": "1"},
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]},
            ),
        ]
    )
    assert Rule.from_manifest(SECRETS) not in book.cluster_roles["a"]


BOOK = RoleBook.from_manifests(
    [_role("pod-reader", [PODS]), _role("nodes", [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])],
    [{"metadata": {"name": "secret-reader", "namespace": "a"}, "rules": [SECRETS]}],
)
USER = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
GROUP = {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}
SA = {"kind": "ServiceAccount", "name": "ci", "namespace": "a"}
BINDINGS = [
    _binding("RoleBinding", "rb-pods", ("ClusterRole", "pod-reader"), [GROUP], "a"),
    _binding("RoleBinding", "rb-secrets", ("Role", "secret-reader"), [USER, SA], "a"),
    _binding("ClusterRoleBinding", "crb-health", ("ClusterRole", "nodes"), [USER]),
    _binding("RoleBinding", "rb-missing", ("Role", "nope"), [USER], "a"),
]


@pytest.mark.parametrize(
    ("identity", "request_", "expected"),
    [
        (Identity("bob", frozenset({"devs"})), Request("list", "pods", namespace="a"), True),
        (Identity("bob", frozenset({"devs"})), Request("list", "pods", namespace="b"), False),
        # A RoleBinding never grants cluster-wide.
        (Identity("bob", frozenset({"devs"})), Request("list", "pods"), False),
        (Identity("alice"), Request("get", "secrets", namespace="a"), True),
        (Identity("bob"), Request("get", "secrets", namespace="a"), False),
        (Identity("system:serviceaccount:a:ci"), Request("get", "secrets", namespace="a"), True),
        (Identity("system:serviceaccount:b:ci"), Request("get", "secrets", namespace="a"), False),
        (Identity("alice"), Request("get", path="/healthz"), True),
        (Identity("bob", frozenset({"devs"})), Request("get", path="/healthz"), False),
    ],
)
def test_allowed_as_a_subject_access_review_answers(
    identity: Identity, request_: Request, expected: bool
) -> None:
    assert allowed(identity, BINDINGS, BOOK, request_) is expected


def test_access_paths_name_every_binding_in_a_namespace_with_missing_roles_marked() -> None:
    paths = access_paths(Identity("alice"), BINDINGS, BOOK, namespace="a")
    assert [p.key.name for p in paths] == ["crb-health", "rb-missing", "rb-secrets"]
    assert [p.role_missing for p in paths] == [False, True, False]


def test_access_paths_with_a_request_keep_only_the_allowing_rules() -> None:
    book = RoleBook.from_manifests([_role("mixed", [PODS, SECRETS])])
    binding = _binding("ClusterRoleBinding", "x", ("ClusterRole", "mixed"), [USER])
    (path,) = access_paths(
        Identity("alice"), [binding], book, request=Request("get", "secrets", namespace="z")
    )
    assert path.rules == (Rule.from_manifest(SECRETS),)
    assert path.scope == "cluster"


def test_anyone_lists_every_subject() -> None:
    paths = access_paths(None, BINDINGS, BOOK, namespace="a")
    assert {p.key.name: len(p.subjects) for p in paths}["rb-secrets"] == 2
