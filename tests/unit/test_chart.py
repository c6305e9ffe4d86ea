"""The Helm chart (charts/entra-rbac-operator), judged by the real helm and held equal to deploy/.

- `helm lint --strict` passes;
- for the same settings, `helm template` renders exactly the objects `kubectl kustomize deploy/`
  does (the base, and each optional component against its value), so the two cannot drift;
- values.schema.json refuses bad values, naming the value and what is wrong;
- values change what they say (image, identity, guardrails into the `bind` rule, placement).
tests/unit/test_deploy.py runs its security checks on both renderings; the chart's install,
upgrade and uninstall on the real control plane are in tests/integration/test_helm_install.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import entra_rbac
from tests.unit.install_render import (
    CHART,
    comparable,
    helm_run,
    helm_template,
    kustomize,
)

Obj = dict[str, Any]


def _one(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


def test_helm_lint_passes_strictly() -> None:
    done = helm_run("lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("components", "values"),
    [
        pytest.param((), (), id="base"),
        pytest.param(("standby",), ("--set", "standby.enabled=true"), id="standby"),
        pytest.param(("admission/audit",), ("--set", "admission.mode=Audit"), id="admission-audit"),
        pytest.param(
            ("monitoring",),
            ("--set", "metrics.podMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true"),
            id="monitoring",
        ),
        pytest.param(("network-policy",), ("--set", "networkPolicy.enabled=true"), id="network-policy"),
    ],
)
def test_chart_renders_what_deploy_renders(
    tmp_path: Path, components: tuple[str, ...], values: tuple[str, ...]
) -> None:
    by_kustomize = comparable(kustomize(tmp_path, components))
    by_helm = comparable(helm_template(*values))
    assert sorted(by_helm) == sorted(by_kustomize), "the two installs render different objects"
    for key, expected in by_kustomize.items():
        assert by_helm[key] == expected, f"{key} differs between deploy/ and the chart"


def test_chart_and_deploy_name_the_same_released_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = entra_rbac.__version__
    assert chart["version"] == chart["appVersion"] == version
    image = _one(helm_template(), "Deployment", "entra-rbac-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert image["image"] == f"ghcr.io/entra-rbac/entra-rbac-operator:{version}"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (("--set", "image.repository=entra-rbac-operator"), "/image/repository"),
        (("--set", "image.digest=sha256:short"), "/image/digest"),
        (("--set", "workloadIdentity.clientId=not-a-guid"), "/workloadIdentity/clientId"),
        (("--set", "admission.mode=Warn"), "/admission/mode"),
        (("--set", "guardrails.allowedClusterRoles={view,view}"), "/guardrails/allowedClusterRoles"),
        (("--set", "guardrails.allowedRoles={a/b}"), "/guardrails/allowedRoles/0"),
        (("--set", "guardrails.forbiddenNamespaces={Not_A_Namespace}"), "/guardrails/forbiddenNamespaces/0"),
        (("--set", "guardrails.groupRoles.payments=view"), "/guardrails/groupRoles"),
        (("--set", "settings.REFRESH_INTERVAL=5m"), "/settings"),
        (("--set", "replicas=2"), "replicas"),
    ],
)
def test_schema_refuses_bad_values_naming_them(values: tuple[str, ...], complaint: str) -> None:
    done = helm_run("template", "entra-rbac", str(CHART), *values)
    assert done.returncode != 0, f"helm accepted {values}"
    assert "values don't meet the specifications of the schema" in done.stderr
    assert complaint in done.stderr, done.stderr


def test_values_reach_the_objects_they_name() -> None:
    group = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
    objects = helm_template(
        "--set", "image.repository=myregistry.azurecr.io/entra-rbac-operator",
        "--set", "image.digest=sha256:" + "a" * 64,
        "--set", "workloadIdentity.clientId=11111111-2222-3333-4444-555555555555",
        "--set", "workloadIdentity.tenantId=66666666-7777-8888-9999-000000000000",
        "--set", "guardrails.allowedClusterRoles={view}",
        "--set-json", "guardrails.allowedRoles=[]",
        "--set-json", f'guardrails.groupRoles={{"{group}": ["view"], "*": ["view"]}}',
        "--set", "settings.ENTRA_RBAC_REFRESH_INTERVAL=2m",
        "--set", "nodeSelector.kubernetes\\.io/os=linux",
        "--set", "priorityClassName=system-cluster-critical",
    )  # fmt: skip
    pod = _one(objects, "Deployment", "entra-rbac-operator")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "myregistry.azurecr.io/entra-rbac-operator@sha256:" + "a" * 64
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    annotations = _one(objects, "ServiceAccount", "entra-rbac-operator")["metadata"]["annotations"]
    assert annotations["azure.workload.identity/client-id"] == "11111111-2222-3333-4444-555555555555"
    assert annotations["azure.workload.identity/tenant-id"] == "66666666-7777-8888-9999-000000000000"
    # One list each: the bind rule, the operator's ConfigMap and the admission policy's params.
    bind = _one(objects, "ClusterRole", "entra-rbac-operator-bind")["rules"]
    assert bind == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": ["view"],
        }
    ], "an empty Role allowlist renders no rule (an empty resourceNames would mean every name)"
    for kind in ("ConfigMap", "Guardrails"):
        data = _one(objects, kind, "entra-rbac-guardrails")["data"]
        assert data["ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"] == "view"
        assert data["ENTRA_RBAC_ALLOWED_ROLES"] == ""
        assert data["ENTRA_RBAC_GROUP_ROLES"] == f"*=view {group}=view"
    settings = _one(objects, "ConfigMap", "entra-rbac-operator-settings")["data"]
    assert settings["ENTRA_RBAC_REFRESH_INTERVAL"] == "2m"
    assert settings["ENTRA_RBAC_LOG_FORMAT"] == "json", "the other settings keep deploy/settings.env's values"


def test_a_change_of_settings_rolls_the_pod() -> None:
    def checksum(*values: str) -> str:
        pod = _one(helm_template(*values), "Deployment", "entra-rbac-operator")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/settings"])

    assert checksum() != checksum("--set", "settings.ENTRA_RBAC_REFRESH_INTERVAL=2m")


@pytest.mark.parametrize(
    ("cloud", "hosts"),
    [
        ("usgov", ["login.microsoftonline.us", "graph.microsoft.us"]),
        ("usgov-dod", ["login.microsoftonline.us", "dod-graph.microsoft.us"]),
        ("china", ["login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"]),
    ],
)
def test_cilium_policy_names_the_clouds_hosts(cloud: str, hosts: list[str]) -> None:
    objects = helm_template(
        "--set", "networkPolicy.enabled=true", "--set", f"settings.ENTRA_RBAC_CLOUD={cloud}"
    )
    egress = _one(objects, "CiliumNetworkPolicy", "entra-rbac-operator")["spec"]["egress"]
    (names,) = [rule["toFQDNs"] for rule in egress if "toFQDNs" in rule]
    assert [n["matchName"] for n in names] == hosts


def test_cilium_policy_refuses_a_cloud_without_known_hosts() -> None:
    done = helm_run("template", "entra-rbac", str(CHART), "--set", "networkPolicy.enabled=true",
                    "--set", "settings.ENTRA_RBAC_CLOUD=custom")  # fmt: skip
    assert done.returncode != 0
    assert "no known hosts for ENTRA_RBAC_CLOUD=custom" in done.stderr


@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_network_policy_is_valid_for_kubernetes(tmp_path: Path, version: str) -> None:
    (policy,) = [o for o in kustomize(tmp_path, ("network-policy",)) if o["kind"] == "NetworkPolicy"]
    kubernetes_validate.validate(policy, version, strict=True)
    # Ingress to the metrics and health ports only; egress to DNS and HTTPS only.
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [8080, 8081]
    assert sorted({p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}) == [53, 443]
