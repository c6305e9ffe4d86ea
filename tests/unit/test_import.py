"""`kubectl entra import`'s pure part (entra_rbac.insight.importer, render_import): which bindings
are candidates, how they are grouped into EntraGroupBindings, and the proof, by the operator's own
compute_desired, that each resource grants exactly what it replaces (docs/migration.md)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from entra_rbac.cli import kubectl_entra
from entra_rbac.core.desired import AllowedRoles, NamespaceInfo, RoleRef
from entra_rbac.core.entra import DirectoryMember, MemberType
from entra_rbac.core.guardrails import ClusterView, Guardrails
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.subjects import Subject, SubjectSet, group_subjects
from entra_rbac.insight import render_import
from entra_rbac.insight.importer import (
    REPLACES_ANNOTATION,
    HandMade,
    ImportOptions,
    ImportResult,
    import_bindings,
    prove,
)

RBAC = "rbac.authorization.k8s.io"
G1 = "11111111-1111-4111-8111-111111111111"
G2 = "22222222-2222-4222-8222-222222222222"
UPPER = "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA"
NAMESPACES = [NamespaceInfo(n) for n in ("a", "b", "c", "default")]


def subject(kind: str, name: str, **extra: str) -> dict[str, str]:
    return {"apiGroup": RBAC if kind != "ServiceAccount" else "", "kind": kind, "name": name, **extra}


def rb(
    name: str,
    namespace: str,
    role: str,
    *subjects: dict[str, str],
    role_kind: str = "ClusterRole",
    **meta: Any,
) -> dict[str, Any]:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


def crb(name: str, role: str, *subjects: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, **meta},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": list(subjects),
    }


def group(gid: str) -> dict[str, str]:
    return subject("Group", gid)


def run(*bindings: dict[str, Any], options: ImportOptions | None = None, **kwargs: Any) -> ImportResult:
    return import_bindings(
        bindings, kwargs.pop("namespaces", NAMESPACES), options or ImportOptions(), **kwargs
    )


def namespace_of(binding: dict[str, Any]) -> str:
    return f"{binding['metadata']['namespace']}/" if binding["kind"] == "RoleBinding" else ""


def specs(result: ImportResult) -> dict[str, dict[str, Any]]:
    return {r.name: dict(r.spec) for r in result.resources}


# --- grouping ---------------------------------------------------------------------------------

GROUPING = [
    pytest.param(
        [rb("legacy-a", "a", "edit", group(G1)), rb("legacy-b", "b", "edit", group(G1))],
        {
            f"group-{G1}": {
                "groups": [{"id": G1}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["a", "b"]}],
            }
        },
        id="namespaces-of-one-role-merge",
    ),
    pytest.param(
        [
            crb("all-view", "view", group(G1)),
            rb("edit-a", "a", "edit", group(G1)),
            rb("adm-a", "a", "admin", group(G1)),
        ],
        {
            f"group-{G1}": {
                "groups": [{"id": G1}],
                "clusterRoleBindings": [{"clusterRole": "view"}],
                "roleBindings": [
                    {"clusterRole": "admin", "namespaces": ["a"]},
                    {"clusterRole": "edit", "namespaces": ["a"]},
                ],
            }
        },
        id="one-resource-per-group-with-all-its-roles",
    ),
    pytest.param(
        [
            rb("dep-a", "a", "deployer", group(G1), role_kind="Role"),
            rb("dep-b", "b", "deployer", group(G1), role_kind="Role"),
        ],
        {
            f"group-{G1}": {
                "groups": [{"id": G1}],
                "roleBindings": [{"role": "deployer", "namespaces": ["a", "b"]}],
            }
        },
        id="a-role-of-the-same-name-merges-too",
    ),
    pytest.param(
        [rb("both", "a", "edit", group(G2), group(G1)), rb("one", "b", "edit", group(G1))],
        {
            f"group-{G1}": {
                "groups": [{"id": G1}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["b"]}],
            },
            "groups-" + __import__("hashlib").sha256(f"{G1},{G2}".encode()).hexdigest()[:12]: {
                "groups": [{"id": G1}, {"id": G2}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}],
            },
        },
        id="each-set-of-groups-its-own-resource",
    ),
    pytest.param(
        [rb("x", "a", "edit", group(G1)), rb("y", "a", "edit", group(G1))],
        {
            f"group-{G1}": {
                "groups": [{"id": G1}],
                "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}],
            }
        },
        id="duplicate-bindings-are-replaced-by-one",
    ),
]


@pytest.mark.parametrize(("bindings", "expected"), GROUPING)
def test_import_groups_bindings_per_group_set_and_role(
    bindings: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    result = run(*bindings)
    assert not result.refused
    assert specs(result) == expected
    replaced = {b.describe() for r in result.resources for b in r.replaces}
    assert replaced == {f"{b['kind']} {namespace_of(b)}{b['metadata']['name']}" for b in bindings}


def test_import_annotates_each_resource_with_the_bindings_it_replaces() -> None:
    result = run(crb("all-view", "view", group(G1)), rb("edit-a", "a", "edit", group(G1)))
    manifest = result.resources[0].manifest()
    assert (
        manifest["metadata"]["annotations"][REPLACES_ANNOTATION]
        == "ClusterRoleBinding all-view, RoleBinding a/edit-a"
    )
    assert manifest["apiVersion"] == "entra-rbac.io/v1alpha1"
    assert manifest["kind"] == "EntraGroupBinding"


# --- what is not a candidate, and what is refused -------------------------------------------

SKIPS = [
    pytest.param(
        rb(
            "egb:x:clusterrole:edit",
            "a",
            "edit",
            group(G1),
            labels={"app.kubernetes.io/managed-by": "entra-rbac-operator"},
        ),
        "managed by the operator",
        id="managed-by-the-operator",
    ),
    pytest.param(crb("system:controller:x", "view", group(G1)), "Kubernetes' own", id="system-binding"),
    pytest.param(
        crb("boot", "view", group(G1), labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        "Kubernetes' own",
        id="bootstrapping",
    ),
    pytest.param(
        crb("sa", "view", subject("ServiceAccount", "ci", namespace="a")),
        "no Entra subject",
        id="service-account-only",
    ),
    pytest.param(
        crb("masters", "view", subject("Group", "system:masters")), "no Entra subject", id="non-guid-group"
    ),
    pytest.param(crb("eve", "view", subject("User", "eve")), "no Entra subject", id="user-without-upn"),
]


@pytest.mark.parametrize(("binding", "why"), SKIPS)
def test_import_skips_what_grants_no_entra_subject_or_is_not_hand_made(
    binding: dict[str, Any], why: str
) -> None:
    result = run(binding)
    assert not result.resources
    assert not result.refused
    assert result.skipped == {why: 1}


REFUSALS = [
    pytest.param(
        rb("mixed", "a", "edit", group(G1), subject("ServiceAccount", "ci", namespace="a")),
        "RoleBinding a/mixed: it also grants subjects that are not Entra groups or users "
        "(ServiceAccount 'a/ci')",
        id="group-and-service-account",
    ),
    pytest.param(
        rb("mixed", "a", "edit", group(G1), subject("User", "alice@contoso.com")),
        "RoleBinding a/mixed: it grants both Entra groups and users",
        id="group-and-user",
    ),
    pytest.param(
        crb("upper", "view", group(G1.upper().replace("1", "A"))),
        "ClusterRoleBinding upper: Group 'AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA' is an object id "
        "in upper case",
        id="upper-case-guid",
    ),
    pytest.param(
        crb("helm", "view", group(G1), labels={"app.kubernetes.io/managed-by": "Helm"}),
        "ClusterRoleBinding helm: it is managed by Helm",
        id="another-tool",
    ),
    pytest.param(
        crb("addon", "cluster-admin", group(G1), labels={"addonmanager.kubernetes.io/mode": "Reconcile"}),
        "ClusterRoleBinding addon: it is managed by the cluster's addon manager",
        id="addon-manager",
    ),
    pytest.param(
        crb("owned", "view", group(G1), ownerReferences=[{"kind": "Team", "name": "t", "controller": True}]),
        "ClusterRoleBinding owned: it is controlled by Team 't'",
        id="another-owner",
    ),
    pytest.param(
        rb("users", "a", "edit", subject("User", "alice@contoso.com")),
        "RoleBinding a/users: it grants Entra users; user mode binds a group's members: "
        "give the group with --group",
        id="users-without-group",
    ),
]


@pytest.mark.parametrize(("binding", "message"), REFUSALS)
def test_import_refuses_bindings_not_importable_whole_with_the_reason(
    binding: dict[str, Any], message: str
) -> None:
    result = run(binding)
    assert not result.resources
    assert next(str(r) for r in result.refused).startswith(message)


# --- filters and prefixes ----------------------------------------------------------------------


def test_import_with_namespace_takes_only_role_bindings_there() -> None:
    result = run(
        crb("all", "view", group(G1)),
        rb("in-a", "a", "edit", group(G1)),
        rb("in-b", "b", "edit", group(G1)),
        options=ImportOptions(namespaces=frozenset({"a"})),
    )
    assert [b.describe() for b in result.resources[0].replaces] == ["RoleBinding a/in-a"]
    assert result.skipped == {"outside --namespace": 2}


def test_import_with_group_takes_only_bindings_granting_it() -> None:
    result = run(
        rb("one", "a", "edit", group(G1)),
        rb("two", "a", "edit", group(G2)),
        rb("both", "b", "view", group(G1), group(G2)),
        options=ImportOptions(groups=(G2,)),
    )
    assert sorted(b.describe() for r in result.resources for b in r.replaces) == [
        "RoleBinding a/two",
        "RoleBinding b/both",
    ]
    assert result.skipped == {"outside --group": 1}


def test_import_strips_the_group_prefix_and_writes_it_into_the_spec() -> None:
    binding = crb("oidc", "view", group(f"oidc:{G1}"))
    assert run(binding).skipped == {"no Entra subject": 1}
    result = run(binding, options=ImportOptions(group_prefix="oidc:"))
    assert specs(result) == {
        f"group-{G1}": {
            "groups": [{"id": G1}],
            "subjects": {"groupPrefix": "oidc:"},
            "clusterRoleBindings": [{"clusterRole": "view"}],
        }
    }


# --- adoption at the operator's own names -----------------------------------------------------


def test_import_gives_a_binding_at_an_operator_name_to_that_resource_for_adoption() -> None:
    released = rb(
        "egb:payments:clusterrole:edit",
        "a",
        "edit",
        group(G1),
        annotations={"entra-rbac.io/released-from": "payments"},
    )
    other = rb("legacy", "b", "edit", group(G1))
    result = run(released, other)
    names = {r.name: r for r in result.resources}
    assert set(names) == {"payments", f"group-{G1}"}
    assert [b.describe() for b in names["payments"].adopts] == ["RoleBinding a/egb:payments:clusterrole:edit"]
    assert names["payments"].leftovers == ()
    assert [b.describe() for b in names[f"group-{G1}"].leftovers] == ["RoleBinding b/legacy"]


def test_import_does_not_treat_a_lookalike_name_as_an_operator_name() -> None:
    # egb:<resource>:clusterrole:<role> with another roleRef is not where resource would bind edit.
    result = run(rb("egb:payments:clusterrole:edit", "a", "view", group(G1)))
    assert [r.name for r in result.resources] == [f"group-{G1}"]
    assert result.resources[0].adopts == ()


def test_import_refuses_a_name_an_existing_resource_has_for_another_spec() -> None:
    other = {"groups": [{"id": G1}], "clusterRoleBindings": [{"clusterRole": "view"}]}
    result = run(rb("legacy", "a", "edit", group(G1)), existing_resources={f"group-{G1}": other})
    assert not result.resources
    assert "already exists with another spec" in result.refused[0].reason


def test_import_keeps_a_resource_already_applied_so_cleanup_can_follow_the_apply() -> None:
    first = run(rb("legacy", "a", "edit", group(G1)))
    applied = {r.name: dict(r.spec) for r in first.resources}
    again = run(rb("legacy", "a", "edit", group(G1)), existing_resources=applied)
    assert again.resources == first.resources
    assert not again.refused


# --- the proof ----------------------------------------------------------------------------------

PROOF_FAILURES = [
    pytest.param(
        rb("legacy", "gone", "edit", group(G1)),
        {"namespaces": [NamespaceInfo("gone", terminating=True), *NAMESPACES]},
        "RoleBinding gone/legacy (ClusterRole/edit): the resource would grant nothing there",
        id="terminating-namespace",
    ),
    pytest.param(
        crb("admins", "cluster-admin", group(G1)),
        {"allowed_roles": AllowedRoles(cluster_roles=frozenset({"view"}))},
        "the resource would grant nothing there (RoleNotAllowed: ClusterRole 'cluster-admin' "
        "is not in the operator's bind allowlist",
        id="role-off-the-allowlist",
    ),
]


@pytest.mark.parametrize(("binding", "kwargs", "difference"), PROOF_FAILURES)
def test_import_refuses_a_resource_whose_desired_bindings_differ(
    binding: dict[str, Any], kwargs: dict[str, Any], difference: str
) -> None:
    result = run(binding, **kwargs)
    assert not result.resources
    assert "would not grant the same" in result.refused[0].reason
    assert difference in result.refused[0].reason


def hand_made(kind: str, namespace: str, role: str, *names: str) -> HandMade:
    return HandMade(
        BindingKey.of(kind, namespace or None, "by-hand"),  # type: ignore[arg-type]
        RoleRef("ClusterRole", role),
        frozenset(Subject("Group", n) for n in names),
        {},
    )


PROVE = [
    pytest.param(
        {"groups": [{"id": G1}], "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]},
        [hand_made("RoleBinding", "a", "edit", G1)],
        (),
        id="equal",
    ),
    pytest.param(
        {"groups": [{"id": G1}], "roleBindings": [{"clusterRole": "edit", "namespaces": ["a", "b"]}]},
        [hand_made("RoleBinding", "a", "edit", G1)],
        ("the resource would also grant ClusterRole/edit namespace b, which no binding it replaces grants",),
        id="extra-namespace",
    ),
    pytest.param(
        {"groups": [{"id": G1}], "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]},
        [hand_made("RoleBinding", "a", "edit", G1, G2)],
        (f"RoleBinding a/by-hand (ClusterRole/edit): subjects differ (lost ['{G2}'], gained [])",),
        id="subjects-differ",
    ),
    pytest.param(
        {"groups": [{"id": G1}], "clusterRoleBindings": [{"clusterRole": "view"}]},
        [hand_made("RoleBinding", "a", "view", G1)],
        (
            "RoleBinding a/by-hand (ClusterRole/view): the resource would grant nothing there",
            "the resource would also grant ClusterRole/view cluster-wide, "
            "which no binding it replaces grants",
        ),
        id="cluster-wide-is-not-namespaced",
    ),
]


@pytest.mark.parametrize(("spec", "replaces", "differences"), PROVE)
def test_prove_compares_desired_bindings_with_the_replaced_ones(
    spec: dict[str, Any], replaces: list[HandMade], differences: tuple[str, ...]
) -> None:
    proof = prove(
        "x",
        EntraGroupBindingSpec.model_validate(spec),
        replaces,
        SubjectSet(group_subjects([G1], ""), (G1,)),
        NAMESPACES,
    )
    assert proof.differences == differences


# --- user mode ------------------------------------------------------------------------------------

ALICE = DirectoryMember("a1", MemberType.USER, "alice@contoso.com", "Member")
BOB = DirectoryMember("b1", MemberType.USER, "bob@contoso.com", "Member")
GUEST = DirectoryMember(
    "99999999-9999-4999-8999-999999999999", MemberType.USER, "g#EXT#@contoso.com", "Guest"
)


def test_import_binds_users_through_the_group_whose_members_they_are() -> None:
    binding = rb("people", "a", "edit", subject("User", "alice@contoso.com"), subject("User", GUEST.id))
    result = run(binding, options=ImportOptions(groups=(G2, G1)), members={G1: [ALICE, GUEST], G2: [BOB]})
    assert not result.refused
    assert specs(result) == {
        f"members-{G1}": {
            "groups": [{"id": G1}],
            "subjects": {"kind": "User"},
            "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}],
        }
    }


def test_import_refuses_users_that_are_not_exactly_a_groups_members() -> None:
    binding = rb(
        "people", "a", "edit", subject("User", "alice@contoso.com"), subject("User", "carol@contoso.com")
    )
    result = run(binding, options=ImportOptions(groups=(G1,)), members={G1: [ALICE, BOB]})
    assert not result.resources
    assert result.refused[0].reason == (
        f"its users are not exactly the members of any --group (closest {G1}: "
        "bound but not members: carol@contoso.com; members not bound: bob@contoso.com)"
    )


def test_import_skips_users_of_none_of_the_groups() -> None:
    result = run(
        rb("others", "a", "edit", subject("User", "zed@contoso.com")),
        options=ImportOptions(groups=(G1,)),
        members={G1: [ALICE]},
    )
    assert not result.resources
    assert not result.refused
    assert result.skipped == {"outside --group": 1}


# --- rendering -------------------------------------------------------------------------------------


def test_yaml_output_parses_back_to_the_manifests_and_comments_the_hand_over() -> None:
    result = run(
        rb("egb:payments:clusterrole:edit", "a", "edit", group(G1)),
        rb("legacy", "b", "view", group(G1)),
    )
    text = render_import.render_all(result, "yaml", ["--context=prod"])
    assert list(yaml.safe_load_all(text)) == [r.manifest() for r in result.resources]
    assert (
        "#   kubectl --context=prod annotate rolebinding -n a egb:payments:clusterrole:edit "
        "--overwrite entra-rbac.io/adopt=payments" in text
    )
    assert "#   kubectl --context=prod delete rolebinding -n b legacy" in text


def test_scripts_annotate_only_adoptable_and_delete_only_leftovers_after_ready() -> None:
    result = run(
        rb("egb:payments:clusterrole:edit", "a", "edit", group(G1)),
        crb("legacy", "view", group(G1)),
    )
    annotate = render_import.annotate_script(result)
    cleanup = render_import.cleanup_script(result)
    assert (
        "kubectl annotate rolebinding -n a egb:payments:clusterrole:edit "
        "--overwrite entra-rbac.io/adopt=payments" in annotate
    )
    assert "delete" not in annotate
    lines = [line for line in cleanup.splitlines() if line.startswith("kubectl")]
    assert lines == [
        f"kubectl wait --for=condition=Ready entragroupbindings/group-{G1} --timeout=300s",
        "kubectl delete clusterrolebinding legacy",
    ]
    assert "egb:payments" not in cleanup  # an adopted binding is the operator's own: never deleted


# --- bad input: one line, exit 1 ------------------------------------------------------------------

BAD_INPUT = [
    pytest.param(
        ["--group", "Payments"],
        "--group 'Payments': not an Entra group object id (a lower-case GUID)",
        id="group-name",
    ),
    pytest.param(["--group", UPPER], f"--group '{UPPER}': not an Entra group object id", id="group-upper"),
    pytest.param(
        ["-n", "Bad_NS"], "--namespace 'Bad_NS': not a namespace name (a DNS-1123 label)", id="namespace"
    ),
    pytest.param(["--output", "xml"], "--output 'xml': must be one of yaml, json", id="output"),
    pytest.param(
        ["--group-prefix", "system:x"],
        "--group-prefix: Value error, must not start with 'system:'",
        id="prefix",
    ),
    pytest.param(
        ["--annotate", "-o", "out"],
        "--annotate prints a script: it does not go with --output-dir",
        id="script-and-dir",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_import_refuses_bad_input_with_one_line_naming_the_option(
    args: list[str], message: str, tmp_path: Any
) -> None:
    result = CliRunner().invoke(kubectl_entra, ["import", *args], env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"kubectl entra import: {message}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_import_without_a_cluster_is_one_error_line(tmp_path: Any) -> None:
    result = CliRunner().invoke(kubectl_entra, ["import"], env={"KUBECONFIG": str(tmp_path / "missing")})
    assert result.exit_code == 1
    assert result.stderr.startswith("kubectl entra import: ")
    assert result.stderr.count("\n") == 1


def test_import_refuses_a_resource_the_guardrails_would_refuse_as_a_whole() -> None:
    guardrails = Guardrails(forbidden_namespaces=frozenset({"b"}))
    view = ClusterView(namespaces=NAMESPACES)
    result = run(
        rb("in-a", "a", "edit", group(G1)), rb("in-b", "b", "edit", group(G1)), guardrails=(guardrails, view)
    )
    assert not result.resources
    assert [r.binding for r in result.refused] == ["RoleBinding a/in-a", "RoleBinding b/in-b"]
    assert result.refused[0].reason.startswith(
        f"the operator would refuse EntraGroupBinding 'group-{G1}' as a whole "
        "(GuardrailViolation: spec.roleBindings[0]"
    )
    assert run(rb("in-a", "a", "edit", group(G1)), guardrails=(guardrails, view)).resources
