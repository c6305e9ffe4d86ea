"""The EntraGroupBinding API as kubectl sees it on the sandbox API server: the CRD installs,
the examples apply, bad specs are refused naming the field, `kubectl get egb` has its columns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def installed(kubectl: Kubectl) -> Kubectl:
    ok(kubectl("apply", "-f", str(ROOT / "crds" / "entragroupbindings.yaml")))
    ok(
        kubectl(
            "wait", "--for=condition=Established", "crd/entragroupbindings.entra-rbac.io", "--timeout=20s"
        )
    )
    return kubectl


def test_the_examples_apply_and_are_defaulted(installed: Kubectl) -> None:
    assert "created" in ok(installed("apply", "-k", str(ROOT / "examples")))
    listed = json.loads(ok(installed("get", "egb", "-o", "json")))
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert {"auditors", "payments-developers", "platform-admins", "developers"} <= names
    auditors = next(i for i in listed["items"] if i["metadata"]["name"] == "auditors")
    assert auditors["spec"]["subjects"] == {"kind": "Group", "groupPrefix": "", "userPrefix": ""}
    assert auditors["spec"]["suspend"] is False


def _egb(spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "entra-rbac.io/v1alpha1",
            "kind": "EntraGroupBinding",
            "metadata": {"name": "bad"},
            "spec": spec,
        }
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"groups": [{"id": "NOT-A-GUID"}], "clusterRoleBindings": [{"clusterRole": "view"}]},
            "spec.groups[0].id: Invalid value",
        ),
        (
            {
                "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f", "displayName": "x"}],
                "clusterRoleBindings": [{"clusterRole": "view"}],
            },
            "spec.groups[0]: Invalid value: exactly one of id, displayName, mailNickname",
        ),
        (
            {
                "groups": [{"displayName": "x"}],
                "subjects": {"kind": "Robot"},
                "clusterRoleBindings": [{"clusterRole": "view"}],
            },
            'spec.subjects.kind: Unsupported value: "Robot": supported values: "Group", "User"',
        ),
        ({"groups": [{"displayName": "x"}]}, "at least one of clusterRoleBindings, roleBindings must be set"),
        (
            {
                "groups": [{"displayName": "x"}],
                "roleBindings": [{"clusterRole": "view", "namespaceSelector": {}}],
            },
            "spec.roleBindings[0].namespaceSelector",
        ),
    ],
    ids=["pattern", "one-of", "enum", "no-target", "empty-selector"],
)
def test_bad_specs_are_refused_naming_the_field(
    installed: Kubectl, tmp_path: Path, spec: dict[str, Any], expected: str
) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_text(_egb(spec))
    result = installed("apply", "-f", str(manifest))
    assert result.returncode != 0
    assert expected in result.stderr.replace("'", '"'), result.stderr


def test_get_shows_the_printer_columns(installed: Kubectl) -> None:
    ok(installed("apply", "-f", str(ROOT / "examples" / "01-auditors-view-by-id.yaml")))
    header = ok(installed("get", "egb", "-o", "wide")).splitlines()[0].split()
    assert header == [
        "NAME",
        "READY",
        "GROUPS",
        "BINDINGS",
        "SUBJECTS",
        "AGE",
        "EXPIRES",
        "SUSPENDED",
        "MESSAGE",
    ]
    assert ok(installed("get", "entra", "-o", "name")) == "entragroupbinding.entra-rbac.io/auditors\n"


def test_unknown_fields_are_refused_as_kubectl_validates_strictly(installed: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "typo.json"
    manifest.write_text(_egb({"groups": [{"displayName": "x"}], "clusterRoles": ["view"]}))
    result = installed("apply", "-f", str(manifest))
    assert result.returncode != 0
    assert 'unknown field "spec.clusterRoles"' in result.stderr, result.stderr
