"""The sandbox's ValidatingAdmissionPolicies beyond what the shipped guard exercises on both servers
(tests/integration/test_admission_guard.py): Warn bindings, missing params, and the CEL cost limits
of authorizer checks the real API server enforces (350,000 a check, 1,000,000 an expression,
10,000,000 a binding's evaluation). On both servers: the real one applies a policy through its
informers, so each test waits until what it installed is in force, and until it is gone after.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
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


def _until(kubectl: Kubectl, in_force: Callable[[subprocess.CompletedProcess[str]], bool], what: str) -> None:
    """Poll a server-side dry-run create until `in_force` holds for its answer (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        answer = kubectl("create", "configmap", "probe", "--from-literal=k=v", "--dry-run=server")
        if in_force(answer):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within 30 s; last answer: {answer.stderr or answer.stdout}")
        time.sleep(0.1)  # polling a condition with a deadline


def _says(text: str) -> Callable[[subprocess.CompletedProcess[str]], bool]:
    return lambda answer: text in answer.stderr


@pytest.fixture(autouse=True)
def _no_policy_left(kubectl: Kubectl) -> Iterator[None]:
    yield
    kubectl("delete", "validatingadmissionpolicybinding", "b", "--ignore-not-found")
    kubectl("delete", "validatingadmissionpolicy", "p", "--ignore-not-found")
    _until(
        kubectl,
        lambda answer: answer.returncode == 0 and "ValidatingAdmissionPolicy" not in answer.stderr,
        "the test's policy gone",
    )


def test_a_warn_binding_admits_and_warns(kubectl: Kubectl) -> None:
    _install(kubectl, _policy([{"expression": "false", "message": "never"}]), _binding(["Warn"]))
    _until(kubectl, _says("never"), "the policy")
    done = _create_config_map(kubectl)
    assert done.returncode == 0, done.stderr
    assert "Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': never" in done.stderr


def test_a_deny_binding_refuses_with_the_reason_and_message(kubectl: Kubectl) -> None:
    _install(
        kubectl,
        _policy(
            [
                {
                    "expression": "object.metadata.name == 'd'",
                    "messageExpression": "'no ' + object.metadata.name",
                    "reason": "Forbidden",
                }
            ]
        ),
        _binding(["Deny"]),
    )
    _until(kubectl, _says("denied request"), "the policy")
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
        # Not ConfigMap: kube-apiserver v1.36 never restarts the param informer of a built-in kind
        # once the last policy using it is gone, so this test would break later ConfigMap params.
        _policy([{"expression": "true"}], paramKind={"apiVersion": "v1", "kind": "ServiceAccount"}),
        _binding(["Deny"], paramRef=ref),
    )
    _until(kubectl, _says("denied request"), "the policy")
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
    _until(kubectl, _says("denied request"), "the policy")
    done = _create_config_map(kubectl)
    assert "resulted in error: operation cancelled: actual cost limit exceeded" in done.stderr
    assert f"expression '{CHECK} && {CHECK} && {CHECK}'" in done.stderr


def test_a_binding_runs_out_of_budget_after_28_checks(kubectl: Kubectl) -> None:
    variables = [{"name": f"v{i}", "expression": CHECK} for i in range(29)]

    def upto(n: int) -> str:
        return "[" + ", ".join(f"variables.v{i}" for i in range(n)) + "].size() > 0"

    # In force and passing: indistinguishable from absent, so first a policy that warns.
    _install(kubectl, _policy([{"expression": "false", "message": "installed"}]), _binding(["Warn"]))
    _until(kubectl, _says("installed"), "the policy")
    _install(kubectl, _policy([{"expression": upto(28)}], variables), _binding(["Deny"]))
    _until(kubectl, lambda answer: "installed" not in answer.stderr, "28 checks")
    assert _create_config_map(kubectl, "c28").returncode == 0
    _install(kubectl, _policy([{"expression": upto(29)}], variables))
    _until(kubectl, _says("running out of cost budget"), "29 checks")
    done = _create_config_map(kubectl, "c29")
    assert (
        "validation failed due to running out of cost budget, no further validation rules will be run"
        in done.stderr
    )
