"""The examples are valid, cover every feature of the API, and name only groups that
examples/directory.yaml holds (the demo and `make sandbox` run them against it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef, SelectorOperator, SubjectKind
from entra_rbac_sandbox.entra.directory import parse_directory
from entra_rbac_sandbox.kube.crd_validation import unknown_fields, validate_object

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRD = yaml.safe_load((ROOT / "crds" / "entragroupbindings.yaml").read_text())
SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
DIRECTORY: dict[str, Any] = yaml.safe_load((EXAMPLES / "directory.yaml").read_text())
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
Obj = dict[str, Any]


def _documents() -> Iterator[tuple[str, Obj]]:
    for path in sorted(EXAMPLES.glob("[0-9]*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


DOCUMENTS = list(_documents())
BINDINGS = [(name, d) for name, d in DOCUMENTS if d["kind"] == "EntraGroupBinding"]
SPECS = [EntraGroupBindingSpec.model_validate(d["spec"]) for _, d in BINDINGS]


@pytest.mark.parametrize(("file", "obj"), BINDINGS, ids=[f for f, _ in BINDINGS])
def test_every_example_is_valid_for_the_crd_and_the_models(file: str, obj: Obj) -> None:
    _, errors = validate_object(SCHEMA, obj)
    assert [e.full() for e in errors] == []
    assert unknown_fields(SCHEMA, obj) == []
    assert obj["apiVersion"] == "entra-rbac.io/v1alpha1"
    EntraGroupBindingSpec.model_validate(obj["spec"])


@pytest.mark.parametrize(("file", "obj"), [(f, d) for f, d in DOCUMENTS if d["kind"] != "EntraGroupBinding"])
def test_every_other_example_object_is_valid_for_kubernetes(file: str, obj: Obj) -> None:
    kubernetes_validate.validate(obj, "1.30", strict=True)


def test_the_examples_cover_every_feature_of_the_api() -> None:
    refs = [g for spec in SPECS for g in spec.groups]
    role_bindings = [rb for spec in SPECS for rb in spec.role_bindings]
    selectors = [rb.namespace_selector for rb in role_bindings if rb.namespace_selector]
    operators = {e.operator for s in selectors for e in s.match_expressions}
    features = {
        "object id": any(g.id for g in refs),
        "display name": any(g.display_name for g in refs),
        "mail nickname": any(g.mail_nickname for g in refs),
        "Group subjects": any(s.subjects.kind is SubjectKind.GROUP for s in SPECS),
        "User subjects": any(s.subjects.kind is SubjectKind.USER for s in SPECS),
        "group prefix": any(s.subjects.group_prefix for s in SPECS),
        "user prefix": any(s.subjects.user_prefix for s in SPECS),
        "cluster role bindings": any(s.cluster_role_bindings for s in SPECS),
        "role bindings by namespace": any(rb.namespaces for rb in role_bindings),
        "selector matchLabels": any(s.match_labels for s in selectors),
        "selector matchExpressions": bool(operators),
        "a selector and names together": any(rb.namespaces and rb.namespace_selector for rb in role_bindings),
        "a Role": any(rb.role for rb in role_bindings),
        "suspend": any(s.suspend for s in SPECS),
        "several groups": any(len(s.groups) > 1 for s in SPECS),
        "a time-bound grant": any(rb.valid_from and rb.valid_until for rb in role_bindings),
    }
    assert [name for name, covered in features.items() if not covered] == []
    assert operators >= {SelectorOperator.NOT_IN, SelectorOperator.EXISTS}


def test_the_directory_file_parses_and_holds_every_kind_of_member() -> None:
    parse_directory(DIRECTORY, "examples/directory.yaml")
    users = DIRECTORY["users"]
    group_ids = {g["id"] for g in DIRECTORY["groups"]}
    assert any(u.get("userType", "Member") == "Member" for u in users)
    assert any(u["userType"] == "Guest" and "#EXT#" in u["userPrincipalName"] for u in users)
    assert DIRECTORY["servicePrincipals"]
    assert any(set(g.get("members", [])) & group_ids for g in DIRECTORY["groups"]), "no nested group"


def _matches(ref: GroupRef) -> list[str]:
    if ref.id is not None:
        return [g["id"] for g in DIRECTORY["groups"] if g["id"] == ref.id]
    if ref.display_name is not None:
        return [g["id"] for g in DIRECTORY["groups"] if g["displayName"] == ref.display_name]
    return [g["id"] for g in DIRECTORY["groups"] if g.get("mailNickname") == ref.mail_nickname]


def test_every_group_named_by_the_examples_is_in_the_directory() -> None:
    ambiguous = []
    for (file, _), spec in zip(BINDINGS, SPECS, strict=True):
        for ref in spec.groups:
            found = _matches(ref)
            assert found, f"{file}: {ref.key} is not in examples/directory.yaml"
            if len(found) > 1:
                ambiguous.append(file)
    assert ambiguous == ["07-ambiguous-display-name.yaml"]


def test_every_guid_is_lower_case() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        upper = [g for g in GUID.findall(path.read_text()) if g != g.lower()]
        assert upper == [], path.name


def test_every_role_an_example_names_is_defined_in_its_namespaces() -> None:
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for _, d in DOCUMENTS if d["kind"] == "Role"}
    namespaces = {d["metadata"]["name"] for _, d in DOCUMENTS if d["kind"] == "Namespace"}
    for spec in SPECS:
        for rb in spec.role_bindings:
            assert set(rb.namespaces) - {"kube-system"} <= namespaces
            if rb.role:
                assert {(ns, rb.role) for ns in rb.namespaces} <= roles


def test_the_kustomization_lists_every_example() -> None:
    listed = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())["resources"]
    assert listed == sorted(p.name for p in EXAMPLES.glob("[0-9]*.yaml"))


def test_kubectl_renders_the_examples_offline() -> None:
    kubectl = shutil.which("kubectl") or str(
        Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"
    )
    rendered = subprocess.run(
        [kubectl, "kustomize", str(EXAMPLES)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert kinds.count("EntraGroupBinding") == len(BINDINGS)
