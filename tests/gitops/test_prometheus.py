"""Prometheus, checked with its own tool: /metrics lints clean, the alerts fire when they should,
and the dashboard and the alerts use only metrics the operator exposes.

promtool is Debian's (package `prometheus`; `make tools` installs it). Missing, the tests fail
with that remedy; they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from entra_rbac.metrics import OperatorMetrics, start_metrics_server
from tests.gitops.tools import INSTALL_HINT, ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
# Words of PromQL that are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless", "le", "inf", "nan"}


def promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool is not installed: {INSTALL_HINT}", pytrace=False)
    return subprocess.run(
        [found, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture
def scraped() -> Iterator[str]:
    """The text of a real /metrics endpoint (the runner's own server) after every metric was used."""
    metrics = OperatorMetrics()
    metrics.reconcile_finished("Reconciled", 0.2)
    metrics.reconcile_finished("error", 1.5)
    metrics.set_managed_bindings("u-1", cluster_role_bindings=1, role_bindings=3)
    metrics.graph_request("groups", "200")
    metrics.throttled("groups", 2.0)
    metrics.cache_lookup("group", hit=True)
    metrics.directory_verified()
    server = start_metrics_server(metrics, 0, address="127.0.0.1", ephemeral=True)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as answer:
            yield answer.read().decode()
    finally:
        server.close()


def exposed_names(text: str) -> set[str]:
    """Every series name in an exposition (samples and # TYPE lines)."""
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    names |= {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and line[0] != "#"}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, ranges, strings, grouping removed)."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    words = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\()(?![a-zA-Z0-9_:])", stripped)
    return {w for w in words if w.lower() not in KEYWORDS}


def rule_expressions() -> list[str]:
    spec = yaml.safe_load(RULES.read_text(encoding="utf-8"))["spec"]
    return [rule["expr"] for group in spec["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_metrics_pass_promtool_check_metrics(scraped: str) -> None:
    done = promtool("check", "metrics", stdin=scraped)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not done.stdout.strip(), done.stdout


def test_promtool_check_metrics_can_fail() -> None:
    bad = "# HELP x_reconciles Reconciles.\n# TYPE x_reconciles counter\nx_reconciles 1\n"
    done = promtool("check", "metrics", stdin=bad)
    assert done.returncode != 0
    assert "_total" in done.stdout + done.stderr


def test_alerts_pass_promtool_test_rules(tmp_path: Path) -> None:
    spec = yaml.safe_load(RULES.read_text(encoding="utf-8"))["spec"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    shutil.copy(ALERT_TESTS, tmp_path / "tests.yaml")
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in spec["groups"] for rule in group["rules"]}
    tested_alerts = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text(encoding="utf-8")))
    assert alerts == tested_alerts, "every alert has a promtool test, and only those"


def test_metric_name_extraction() -> None:
    assert metric_names('sum by (le) (rate(a_bucket{x="y(z)"}[5m])) / b') == {"a_bucket", "b"}
    assert metric_names("max(a) > 900 and on (pod) c") == {"a", "c"}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_expressions_use_only_exposed_metrics(source: str, scraped: str) -> None:
    expressions = dashboard_expressions() if source == "dashboard" else rule_expressions()
    used = set().union(*(metric_names(e) for e in expressions))
    assert used, expressions
    assert used <= exposed_names(scraped), sorted(used - exposed_names(scraped))


def test_monitoring_is_an_optional_component(tmp_path: Path) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only.
                "resources": [os.path.relpath(ROOT / "deploy", overlay)],
                "components": [os.path.relpath(MONITORING, overlay)],
            }
        ),
        encoding="utf-8",
    )

    def kinds(path: Path) -> list[str]:
        done = subprocess.run(
            [str(kubectl), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [d["kind"] for d in yaml.safe_load_all(done.stdout) if d]

    assert {"PodMonitor", "PrometheusRule"} <= set(kinds(overlay))
    assert not {"PodMonitor", "PrometheusRule"} & set(kinds(ROOT / "deploy"))
