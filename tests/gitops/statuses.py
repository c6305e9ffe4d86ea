"""Status documents for every condition reason, from the operator's own pure builders.

`pure_cases()` gives one EntraGroupBinding per reason of `entra_rbac.core.problems.Reason`, its
status built by `entra_rbac.core.status.build_status` exactly as the reconciler builds it, with the
health kstatus and Argo CD must compute for it (issue 14: Current when converged, InProgress
while reconciling, Failed when it needs a person, Terminating while deleted; Argo CD's Healthy /
Progressing / Degraded for the same cases and Suspended for `suspend: true`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import STALLING, TRANSIENT, Problem, Reason
from entra_rbac.core.status import build_status

NOW = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
GROUP = "00000000-0000-0000-0000-000000000100"
SPEC = {"groups": [{"id": GROUP}], "clusterRoleBindings": [{"clusterRole": "view"}]}

# The health each tool must report, by kind of case.
CONVERGED = ("Current", "Healthy")
WORKING = ("InProgress", "Progressing")
NEEDS_A_PERSON = ("Failed", "Degraded")
DELETING = ("Terminating", "Progressing")


@dataclass(frozen=True)
class Case:
    reason: str
    resource: dict[str, Any]
    kstatus: str
    argocd: str


def resource(status: dict[str, Any] | None, *, generation: int = 3, **metadata: Any) -> dict[str, Any]:
    spec = dict(SPEC)
    body: dict[str, Any] = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "payments", "uid": "u-1", "generation": generation, **metadata},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def built(**kwargs: Any) -> dict[str, Any]:
    status: dict[str, Any] = build_status(
        None,
        now=NOW,
        generation=3,
        spec=EntraGroupBindingSpec.model_validate(SPEC),
        resolutions=None,
        bindings=(),
        **kwargs,
    )
    return status


def expired() -> dict[str, Any]:
    """Every grant ended an hour before NOW: Ready=True, reason Expired."""
    spec = {**SPEC, "validUntil": "2026-11-28T09:00:00Z"}
    status = build_status(
        None,
        now=NOW,
        generation=3,
        spec=EntraGroupBindingSpec.model_validate(spec),
        resolutions=None,
        bindings=(),
    )
    body = resource(status)
    body["spec"] = spec
    return body


def pure_cases() -> list[Case]:
    cases = [
        Case(Reason.RECONCILED.value, resource(built()), *CONVERGED),
        Case(Reason.PROGRESSING.value, resource(built(reconciling=True)), *WORKING),
        Case(Reason.EXPIRED.value, expired(), *CONVERGED),  # finished, not failed
    ]
    for reason in STALLING:
        problem = Problem(reason, f"a {reason.value} problem", "spec.groups[0]")
        cases.append(Case(reason.value, resource(built(problems=[problem])), *NEEDS_A_PERSON))
    for reason in TRANSIENT:
        problem = Problem(reason, f"a {reason.value} problem")
        cases.append(Case(reason.value, resource(built(problems=[problem])), *WORKING))
    suspended = resource(built(suspended=True))
    suspended["spec"]["suspend"] = True
    # kstatus reads Ready=False (no Reconciling, no Stalled) as InProgress: a Flux `wait` on a
    # suspended resource waits until its timeout (docs/gitops.md says so).
    cases.append(Case(Reason.SUSPENDED.value, suspended, "InProgress", "Suspended"))
    # A new generation the operator has not observed yet (status still says Reconciled for 3).
    cases.append(Case("(generation 4 not yet observed)", resource(built(), generation=4), *WORKING))
    # Before the operator's first write there is no observedGeneration to compare: kstatus calls
    # that Current (its rule for any resource without status); Argo CD's script says Progressing.
    cases.append(Case("(no status yet)", resource(None), "Current", "Progressing"))
    deleting = resource(built(), deletionTimestamp="2026-11-28T10:05:00Z", finalizers=["example.com/hold"])
    cases.append(Case("(being deleted)", deleting, *DELETING))
    return cases
