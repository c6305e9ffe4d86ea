"""The sandbox's ValidatingAdmissionPolicies beyond what the shipped guard exercises on both servers
(tests/integration/test_admission_guard.py): Warn bindings, missing params, and the CEL cost limits
of authorizer checks the real API server enforces (350,000 a check, 1,000,000 an expression,
10,000,000 a binding's evaluation).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
CHECK = "authorizer.group('').resource('pods').check('get').allowed()"


def _policy(
    validations: list[dict[str, Any]], variables: list[dict[str, str]] | None = None, **spec: Any
) -> Any:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "variables": variables or [],
            "validations": validations,
            **spec,
        },
    }


def _binding(actions: list[str], **spec: Any) -> Any:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "b"},
        "spec": {"policyName": "p", "validationActions": actions, **spec},
    }


def _install(kubectl: Kubectl, *documents: Any) -> None:
    done = kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    assert done.returncode == 0, done.stderr


def _create_config_map(kubectl: Kubectl, name: str = "c") -> subprocess.CompletedProcess[str]:
    return kubectl("create", "configmap", name, "--from-literal=k=v")


def test_a_warn_binding_admits_and_warns(kubectl: Kubectl) -> None:
    _install(kubectl, _policy([{"expression": "false", "message": "never"}]), _binding(["Warn"]))
    done = _create_config_map(kubectl)
    assert done.returncode == 0, done.stderr
    assert "Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': never" in done.stderr


def test_a_deny_binding_refuses_with_the_reason_and_message(kubectl: Kubectl) -> None:
    _install(
        kubectl,
        _policy(
            [
                {
                    "expression": "object.metadata.name != 'c'",
                    "messageExpression": "'no ' + object.metadata.name",
                    "reason": "Forbidden",
                }
            ]
        ),
        _binding(["Deny"]),
    )
    done = _create_config_map(kubectl)
    assert done.returncode != 0
    assert (
        "configmaps \"c\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no c"
        in done.stderr
    )
    assert _create_config_map(kubectl, "d").returncode == 0


def test_missing_params_refuse_when_the_binding_says_deny(kubectl: Kubectl) -> None:
    ref = {"name": "absent", "namespace": "default", "parameterNotFoundAction": "Deny"}
    _install(
        kubectl,
        _policy([{"expression": "true"}], paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
        _binding(["Deny"], paramRef=ref),
    )
    done = _create_config_map(kubectl)
    assert (
        "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        in done.stderr
    )


def test_an_expression_may_check_twice_not_three_times(kubectl: Kubectl) -> None:
    _install(
        kubectl,
        _policy([{"expression": f"{CHECK} && {CHECK}"}, {"expression": f"{CHECK} && {CHECK} && {CHECK}"}]),
        _binding(["Deny"]),
    )
    done = _create_config_map(kubectl)
    assert "resulted in error: operation cancelled: actual cost limit exceeded" in done.stderr
    assert f"expression '{CHECK} && {CHECK} && {CHECK}'" in done.stderr


def test_a_binding_runs_out_of_budget_after_28_checks(kubectl: Kubectl) -> None:
    variables = [{"name": f"v{i}", "expression": CHECK} for i in range(29)]

    def upto(n: int) -> str:
        return "[" + ", ".join(f"variables.v{i}" for i in range(n)) + "].size() > 0"

    _install(kubectl, _policy([{"expression": upto(28)}], variables), _binding(["Deny"]))
    assert _create_config_map(kubectl, "c28").returncode == 0
    _install(kubectl, _policy([{"expression": upto(29)}], variables))
    done = _create_config_map(kubectl, "c29")
    assert (
        "validation failed due to running out of cost budget, no further validation rules will be run"
        in done.stderr
    )
