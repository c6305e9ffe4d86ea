"""The pure parts of plan: the proposal reader, the offline directory, plan_resource and its rendering."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from entra_rbac.adapters.directory.file import DirectoryFileError, FileDirectory
from entra_rbac.core.desired import Owner, build_binding
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.guardrails import Guardrails
from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef, GroupState, SubjectKind
from entra_rbac.core.subjects import Subject, SubjectSet
from entra_rbac.insight.inputs import InputError, parse_proposal
from entra_rbac.insight.plan import ClusterState, plan_deletion, plan_resource
from entra_rbac.insight.render_plan import as_markdown, as_text
from entra_rbac.insight.sources import _OFFLINE, policy_in_force
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.resolve import read_directory
from entra_rbac.settings import Settings, load_settings

TEAM, NESTED, OTHER = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
ALICE, BOB = "a0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"
DIRECTORY = FileDirectory.parse(
    {
        "users": [
            {"id": ALICE, "userPrincipalName": "alice@contoso.com"},
            {"id": BOB, "userPrincipalName": "bob@contoso.com"},
        ],
        "groups": [
            {"id": TEAM, "displayName": "Team", "members": [ALICE, NESTED]},
            {"id": NESTED, "displayName": "Nested", "members": [BOB, TEAM]},  # a cycle is harmless
            {"id": OTHER, "displayName": "team", "deleted": True},
        ],
    }
)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _lookup(**ref: str) -> GroupLookup:
    return GroupLookup(ref=GroupRef.model_validate(ref))


def test_file_directory_decides_as_graph_does() -> None:
    found = asyncio.run(
        DIRECTORY.lookup_groups([_lookup(displayName="Team"), _lookup(displayName="TEAM"), _lookup(id=OTHER)])
    )
    assert [r.state for r in found] == [GroupState.RESOLVED, GroupState.NOT_FOUND, GroupState.NOT_FOUND]
    assert "differing only in case: 'Team'" in found[1].message  # the deleted 'team' is gone from Graph
    members = asyncio.run(DIRECTORY.transitive_members(TEAM))
    assert sorted(m.id for m in members) == sorted([ALICE, BOB, NESTED])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a mapping"),
        ({"groups": [{"id": TEAM}]}, r"groups\[0\]\.displayName: is required"),
        (
            {
                "users": [{"id": ALICE, "userPrincipalName": "a"}],
                "groups": [{"id": ALICE, "displayName": "x"}],
            },
            "used twice",
        ),
    ],
)
def test_a_bad_directory_file_names_the_field(document: Any, message: str) -> None:
    with pytest.raises(DirectoryFileError, match=message):
        FileDirectory.parse(document, "dir.yaml")


def egb(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


SPEC = {"groups": [{"id": TEAM}], "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]}


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (
            [{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}],
            r"holds no EntraGroupBinding \(found ConfigMap x\)",
        ),
        (
            [{"apiVersion": "entra-rbac.io/v1alpha1", "kind": "Guardrails", "metadata": {"name": "g"}}],
            "is not an EntraGroupBinding",
        ),
        (
            [egb("x", {"groups": [{"id": TEAM}]})],
            "'x': spec: at least one of clusterRoleBindings, roleBindings",
        ),
        ([egb("x", SPEC), egb("x", SPEC)], "'x' is also in f.yaml"),
        (["text"], r"not a Kubernetes object \(no kind\)"),
    ],
)
def test_wrong_input_is_one_error_naming_where(documents: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_proposal([("f.yaml", d) for d in documents], "f.yaml")


def test_the_proposal_keeps_its_namespaces_and_roles() -> None:
    proposal = parse_proposal(
        [
            ("f", egb("x", SPEC)),
            ("f", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"t": "1"}}}),
            ("f", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}}),
            ("f", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ],
        "f",
    )
    assert [r.name for r in proposal.resources] == ["x"]
    assert [(n.name, dict(n.labels)) for n in proposal.namespaces] == [("a", {"t": "1"})]
    assert [r["metadata"]["name"] for r in proposal.roles] == ["r"]
    assert proposal.ignored == ("ConfigMap c",)


def _state(resources: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> ClusterState:
    return ClusterState.from_lists(
        resources,
        bindings,
        [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
        [{"metadata": {"name": n}} for n in ("edit", "view")],
        [],
    )


def _plan(spec: dict[str, Any], state: ClusterState, name: str = "x") -> Any:
    parsed = EntraGroupBindingSpec.model_validate(spec)
    read = asyncio.run(read_directory(DIRECTORY, parsed.groups, {}, parsed.subjects.kind))
    return plan_resource(name, parsed, read, state, Policy(), now=NOW)


LIVE = {"metadata": {"name": "x", "uid": "u-1"}, "spec": SPEC}


def _operator_binding(role: str, namespace: str, subjects: tuple[Subject, ...]) -> dict[str, Any]:
    subject_set = SubjectSet(subjects, (TEAM,))
    return {
        "kind": "RoleBinding",
        **build_binding(Owner("x", "u-1"), "ClusterRole", role, namespace, subject_set).to_manifest(),
    }


def test_a_new_resource_creates_and_gains() -> None:
    result = _plan(SPEC, _state([], []))
    assert result.change == "create"
    assert [(a.verb, a.namespace, a.name) for a in result.plan.actions] == [
        ("create", "a", "egb:x:clusterrole:edit")
    ]
    assert [(g.subject.name, g.role, g.namespace) for g in result.gained] == [(TEAM, "ClusterRole/edit", "a")]
    assert result.names == {TEAM: "Team"}


def test_nothing_to_do_when_the_cluster_matches() -> None:
    state = _state([LIVE], [_operator_binding("edit", "a", (Subject("Group", TEAM),))])
    result = _plan(SPEC, state)
    assert (result.change, result.plan.actions, result.gained, result.lost) == ("none", (), (), ())


def test_a_role_change_is_make_before_break_and_shows_the_access_lost() -> None:
    state = _state([LIVE], [_operator_binding("edit", "a", (Subject("Group", TEAM),))])
    result = _plan({**SPEC, "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}]}, state)
    assert [(a.verb, a.name) for a in result.plan.actions] == [
        ("create", "egb:x:clusterrole:view"),
        ("delete", "egb:x:clusterrole:edit"),
    ]
    assert [g.role for g in result.lost] == ["ClusterRole/edit"]
    assert "- Group Team (" in as_text([result])


def test_a_foreign_binding_at_the_name_is_a_conflict_never_a_write() -> None:
    foreign = {
        **_operator_binding("edit", "a", (Subject("User", "mallory"),)),
        "metadata": {"name": "egb:x:clusterrole:edit", "namespace": "a"},
    }
    result = _plan(SPEC, _state([], [foreign]))
    assert result.plan.actions == ()
    assert [p.reason for p in result.problems] == ["Conflict"]


def test_user_mode_plans_the_transitive_members() -> None:
    spec = {**SPEC, "subjects": {"kind": SubjectKind.USER.value}}
    result = _plan(spec, _state([], []))
    assert [s.name for s in result.plan.actions[0].added] == ["alice@contoso.com", "bob@contoso.com"]


def test_deleting_a_resource_lists_every_access_it_removes() -> None:
    live = {**LIVE, "status": {"groups": [{"id": TEAM, "displayName": "Team"}]}}
    state = _state(
        [live],
        [
            _operator_binding("edit", "a", (Subject("Group", TEAM),)),
            _operator_binding("edit", "b", (Subject("Group", TEAM),)),
        ],
    )
    result = plan_deletion("x", state)
    assert [(a.verb, a.namespace) for a in result.plan.actions] == [("delete", "a"), ("delete", "b")]
    assert [(g.namespace, g.role) for g in result.lost] == [
        ("a", "ClusterRole/edit"),
        ("b", "ClusterRole/edit"),
    ]
    assert "| lost | Group Team (" in as_markdown([result])


def test_a_guardrail_refusal_is_shown_and_grants_nothing() -> None:
    state = _state([LIVE], [_operator_binding("edit", "a", (Subject("Group", TEAM),))])
    parsed = EntraGroupBindingSpec.model_validate(SPEC)
    read = asyncio.run(read_directory(DIRECTORY, parsed.groups, {}, parsed.subjects.kind))
    policy = Policy(guardrails=Guardrails(forbidden_namespaces=frozenset({"a"})))
    result = plan_resource("x", parsed, read, state, policy, now=NOW)
    assert result.problems
    assert {p.field for p in result.problems} == {"spec.roleBindings[0].namespaces[0]"}
    assert [(a.verb, a.namespace) for a in result.plan.actions] == [("delete", "a")]
    assert [g.role for g in result.lost] == ["ClusterRole/edit"]


SETTINGS_SOURCE = "the operator's settings"


def _guardrails_object(data: Any) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "Guardrails",
        "metadata": {"name": "entra-rbac-guardrails"},
        "data": data,
    }


@pytest.mark.parametrize(
    ("body", "forbidden", "source", "warning"),
    [
        (None, {"from-settings"}, SETTINGS_SOURCE, None),  # no object, or no Guardrails kind
        (
            _guardrails_object({"ENTRA_RBAC_FORBIDDEN_NAMESPACES": "a,b"}),
            {"a", "b"},
            "Guardrails entra-rbac-guardrails",
            None,
        ),
        (
            _guardrails_object(
                {"ENTRA_RBAC_FORBIDEN_NAMESPACES": "a"}
            ),  # a typo: ignored, as the operator does
            {"from-settings"},
            SETTINGS_SOURCE,
            "Guardrails entra-rbac-guardrails is not valid (ENTRA_RBAC_FORBIDEN_NAMESPACES: is not a",
        ),
    ],
)
def test_plan_applies_the_live_guardrails_object_else_the_settings(
    body: dict[str, Any] | None, forbidden: set[str], source: str, warning: str | None
) -> None:
    settings = load_cli_settings_offline(forbidden_namespaces="from-settings")
    policy, said = policy_in_force(settings, body)
    assert (set(policy.guardrails.forbidden_namespaces), policy.guardrails.source) == (forbidden, source)
    assert policy.reserved_namespaces == settings.reserved_namespace_set  # the rest is the settings'
    if warning is None:
        assert said is None
    else:
        assert said is not None
        assert said.startswith(warning)


def load_cli_settings_offline(**values: str) -> Settings:
    return load_settings(**{**_OFFLINE, **values})
