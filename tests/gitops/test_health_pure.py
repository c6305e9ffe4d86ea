"""kstatus and Argo CD's health script on the status of every condition reason (pure builders).

The status documents come from `entra_rbac.core.status.build_status`; the verdicts from the real
kstatus library (Go) and the shipped Lua script in a Lua 5.1 interpreter. tests/e2e/test_health.py
does the same with documents the operator wrote on the real control plane.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from entra_rbac.core.problems import Reason
from tests.gitops.statuses import Case, pure_cases
from tests.gitops.tools import HEALTH_LUA, ROOT, argocd_health, kstatus

CASES = pure_cases()


def test_every_reason_has_a_case() -> None:
    assert {r.value for r in Reason} <= {c.reason for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.reason for c in CASES])
def test_kstatus(case: Case) -> None:
    assert kstatus(case.resource)["status"] == case.kstatus, case.resource.get("status")


@pytest.mark.parametrize("case", CASES, ids=[c.reason for c in CASES])
def test_argocd_health(case: Case) -> None:
    verdict = argocd_health(case.resource)
    assert verdict["status"] == case.argocd, verdict
    assert verdict["message"], verdict


def test_argocd_cm_snippet_is_the_script() -> None:
    snippet = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text(encoding="utf-8"))
    key = "resource.customizations.health.entra-rbac.io_EntraGroupBinding"
    assert snippet["data"][key] == HEALTH_LUA.read_text(encoding="utf-8")


def test_the_lua_check_can_fail(tmp_path: Path) -> None:
    """The harness reads the script's answer, not a constant: a script saying Healthy is caught."""
    script = tmp_path / "always.lua"
    script.write_text('return {status = "Healthy", message = "x"}\n', encoding="utf-8")
    stalled = next(c for c in CASES if c.reason == Reason.GROUP_NOT_FOUND.value)
    assert argocd_health(stalled.resource, script)["status"] == "Healthy"
    assert argocd_health(stalled.resource)["status"] == "Degraded"
