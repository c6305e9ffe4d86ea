"""Behaviour of the spec models that the rest of the core relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from entra_rbac.core.models import (
    EntraGroupBindingSpec,
    EntraGroupBindingStatus,
    GroupRef,
    RoleBindingSpec,
    SubjectKind,
    error_path,
)
from entra_rbac.core.problems import invalid_spec_problems
from entra_rbac_sandbox.kube.crd_validation import validate_object


def test_group_ref_key_names_the_kind_of_reference() -> None:
    assert GroupRef(display_name="Payments Developers").key == "displayName=Payments Developers"
    assert GroupRef(mail_nickname="pay").key == "mailNickname=pay"


def test_spec_rejects_group_with_two_references() -> None:
    with pytest.raises(ValidationError, match="exactly one of id, displayName, mailNickname"):
        EntraGroupBindingSpec.model_validate(
            {
                "groups": [{"displayName": "a", "mailNickname": "b"}],
                "clusterRoleBindings": [{"clusterRole": "view"}],
            }
        )


# --- what the rest of the operator relies on -----------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {
    "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}],
    "clusterRoleBindings": [{"clusterRole": "view"}],
}


def test_group_ref_key_of_an_object_id() -> None:
    assert (
        GroupRef(id="6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f").key == "id=6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
    )


def test_spec_defaults_match_the_crd_defaults() -> None:
    spec = EntraGroupBindingSpec.model_validate(MINIMAL)
    assert (spec.subjects.kind, spec.subjects.group_prefix, spec.subjects.user_prefix) == (
        SubjectKind.GROUP,
        "",
        "",
    )
    assert spec.suspend is False
    assert spec.role_bindings == []


def test_nulls_mean_what_leaving_the_field_out_means() -> None:
    spec = EntraGroupBindingSpec.model_validate(
        {**MINIMAL, "suspend": None, "subjects": None, "roleBindings": None}
    )
    assert spec == EntraGroupBindingSpec.model_validate(MINIMAL)


def test_spec_dumps_back_to_the_wire_form() -> None:
    spec = EntraGroupBindingSpec.model_validate(MINIMAL)
    dumped = spec.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped == MINIMAL
    assert EntraGroupBindingSpec.model_validate(dumped) == spec


def test_models_are_immutable() -> None:
    spec = EntraGroupBindingSpec.model_validate(MINIMAL)
    with pytest.raises(ValidationError, match="frozen"):
        spec.suspend = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("binding", "kind", "name"),
    [
        ({"clusterRole": "edit", "namespaces": ["a"]}, "ClusterRole", "edit"),
        ({"role": "deployer", "namespaces": ["a"]}, "Role", "deployer"),
    ],
)
def test_role_binding_names_its_role(binding: dict[str, object], kind: str, name: str) -> None:
    spec = RoleBindingSpec.model_validate(binding)
    assert (spec.role_kind, spec.role_name) == (kind, name)


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("groups", 0, "id"), "spec.groups[0].id"),
        ((), "spec"),
        (
            ("roleBindings", 2, "namespaceSelector", "matchLabels", "team"),
            "spec.roleBindings[2].namespaceSelector.matchLabels.team",
        ),
        (("subjects", "kind", "enum[SubjectKind]"), "spec.subjects.kind"),
    ],
)
def test_error_paths_are_printed_as_the_api_server_prints_fields(
    loc: tuple[int | str, ...], path: str
) -> None:
    assert error_path(loc) == path


def test_invalid_spec_problems_name_each_field_and_what_is_wrong() -> None:
    bad = {
        "groups": [{"id": "X"}],
        "subjects": {"groupPrefix": "system:"},
        "clusterRoleBindings": [{"clusterRole": "view"}],
    }
    with pytest.raises(ValidationError) as caught:
        EntraGroupBindingSpec.model_validate(bad)
    lines = [problem.text() for problem in invalid_spec_problems(caught.value)]
    assert lines[0].startswith("spec.groups[0].id: String should match pattern")
    assert (
        lines[1]
        == "spec.subjects.groupPrefix: must not start with 'system:': that prefix is reserved for Kubernetes"
    )


DESIGN_STATUS = {
    "observedGeneration": 4,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "3 bindings grant their roles to 2 subjects from 1 Entra groups",
            "observedGeneration": 4,
            "lastTransitionTime": "2026-11-28T10:00:00Z",
        }
    ],
    "groups": [
        {
            "ref": "displayName=Payments Developers",
            "id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f",
            "displayName": "Payments Developers",
            "state": "Resolved",
            "members": 12,
        }
    ],
    "bindings": [
        {
            "kind": "RoleBinding",
            "namespace": "payments",
            "name": "egb:x:clusterrole:edit",
            "roleRef": "ClusterRole/edit",
            "subjects": 2,
        }
    ],
    "summary": {"groups": "1/1", "bindings": 3, "clusterRoleBindings": 1, "roleBindings": 2, "subjects": 2},
    "lastDirectorySync": "2026-11-28T10:00:00Z",
    "lastHandledConfiguration": '{"spec":{"sha256":"0f"},"metadata":{"labels":{"team":"payments"}}}',
}


def test_a_status_valid_for_the_model_is_valid_for_the_crd() -> None:
    EntraGroupBindingStatus.model_validate(DESIGN_STATUS)
    crd = yaml.safe_load((ROOT / "crds" / "entragroupbindings.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = {"apiVersion": "entra-rbac.io/v1alpha1", "kind": "EntraGroupBinding", "metadata": {"name": "x"}}
    pruned, errors = validate_object(schema, {**obj, "spec": MINIMAL, "status": DESIGN_STATUS})
    assert [e.full() for e in errors] == []
    assert pruned["status"] == DESIGN_STATUS


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"summary": {"groups": "three of four"}}, "status.summary.groups"),
        ({"groups": [{"ref": "id=x", "state": "Lost"}]}, "status.groups[0].state"),
        ({"observedGeneration": -1}, "status.observedGeneration"),
        (
            {"bindings": [{"kind": "Binding", "name": "n", "roleRef": "Role/r", "subjects": 1}]},
            "status.bindings[0].kind",
        ),
    ],
)
def test_a_bad_status_is_refused_by_both(change: dict[str, object], path: str) -> None:
    status = {**DESIGN_STATUS, **change}
    with pytest.raises(ValidationError) as caught:
        EntraGroupBindingStatus.model_validate(status)
    assert any(p.text().startswith(path) for p in invalid_spec_problems(caught.value, root="status"))
    crd = yaml.safe_load((ROOT / "crds" / "entragroupbindings.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = {"apiVersion": "entra-rbac.io/v1alpha1", "kind": "EntraGroupBinding", "metadata": {"name": "x"}}
    _, errors = validate_object(schema, {**obj, "spec": MINIMAL, "status": status})
    assert path in [e.field for e in errors]
