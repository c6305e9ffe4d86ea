"""The install in deploy/ and the Helm chart: render both with the real tools and check what must hold.

Checks the security properties a cluster admin relies on (least-privilege RBAC, `bind` only on the
allowlist, a restricted pod), that the settings agree with the RBAC and the pod's ports, and that
every built-in object is valid for Kubernetes (kubernetes-validate's schemas). No cluster is used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.unit.install_render import helm_template, kustomize

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "entra-rbac-system"
SERVICE_ACCOUNT = "entra-rbac-operator"
OPERATOR = "entra-rbac-operator"
STANDBY = "entra-rbac-operator-standby"
GUARDRAILS = "entra-rbac-guardrails"
GUARD = "entra-rbac-guard"
RUN_AS = 65532
# Kinds that kubernetes-validate has no schema for; each is skipped by name, never silently.
CUSTOM_API_GROUPS = {"entra-rbac.io", "kopf.dev"}
# An old Kubernetes still found in clusters, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30", "1.37"]
# Verbs that let a holder grant more than it has; the operator holds none of them.
ESCALATING_VERBS = {"escalate", "impersonate", "*"}

Obj = dict[str, Any]
Rule = dict[str, Any]


@pytest.fixture(scope="module", params=["kustomize", "helm"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The install as `kubectl kustomize deploy/` and as the Helm chart renders it: both are checked."""
    if request.param == "helm":
        return helm_template()
    return kustomize(tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="module", params=["kustomize", "helm"])
def rendered_with_standby(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Obj]:
    if request.param == "helm":
        return helm_template("--set", "standby.enabled=true")
    return kustomize(tmp_path_factory.mktemp("repository-standby"), ("standby",))


def _one(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _settings(objects: list[Obj], deployment: str = OPERATOR) -> dict[str, str]:
    # The ConfigMap name carries kustomize's content hash; find it through the Deployment.
    (source,) = _container(objects, deployment)["envFrom"]
    return dict(_one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])


def _config_map_key(objects: list[Obj], ref: Obj) -> str:
    return str(_one(objects, "ConfigMap", ref["name"])["data"][ref["key"]])


def _pod_env(objects: list[Obj], deployment: str = OPERATOR) -> dict[str, str]:
    """The plain environment a pod of `deployment` gets: the ConfigMap, then its own values (which win)."""
    own = {}
    for entry in _container(objects, deployment).get("env", []):
        if "value" in entry:
            own[entry["name"]] = entry["value"]
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            own[entry["name"]] = _config_map_key(objects, entry["valueFrom"]["configMapKeyRef"])
    return {**_settings(objects, deployment), **own}


def _guardrails(objects: list[Obj]) -> dict[str, list[str]]:
    """The guardrails ConfigMap's comma lists (ENTRA_RBAC_GROUP_ROLES: its space-separated entries)."""
    data = _one(objects, "ConfigMap", GUARDRAILS)["data"]
    return {
        key: value.split()
        if key == "ENTRA_RBAC_GROUP_ROLES"
        else [n.strip() for n in value.split(",") if n.strip()]
        for key, value in data.items()
    }


def _pod_spec(objects: list[Obj], deployment: str = OPERATOR) -> Obj:
    spec: Obj = _one(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def _container(objects: list[Obj], deployment: str = OPERATOR) -> Obj:
    (container,) = _pod_spec(objects, deployment)["containers"]
    return dict(container)


def _roles(objects: list[Obj]) -> Iterator[Obj]:
    return (o for o in objects if o["kind"] in {"ClusterRole", "Role"})


def _operator_rules(objects: list[Obj]) -> list[Rule]:
    """Every rule the operator's ServiceAccount gets through the rendered ClusterRoleBindings."""
    bound = {
        b["roleRef"]["name"]
        for b in objects
        if b["kind"] == "ClusterRoleBinding"
        and {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE} in b["subjects"]
    }
    return [
        rule
        for o in objects
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] in bound
        for rule in o.get("rules", [])
    ]


def _allows(rules: list[Rule], group: str, resource: str, verb: str, name: str | None = None) -> bool:
    """RBAC's own matching: a rule without resourceNames covers every name."""
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def _bind_names(objects: list[Obj], resource: str) -> set[str]:
    return {
        name
        for rule in _operator_rules(objects)
        if "bind" in rule["verbs"] and resource in rule["resources"]
        for name in rule["resourceNames"]
    }


def test_deploy_renders_every_part_of_the_install(rendered: list[Obj]) -> None:
    kinds_and_names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    expected = {
        ("Namespace", NAMESPACE),
        ("CustomResourceDefinition", "entragroupbindings.entra-rbac.io"),
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("ClusterKopfPeering", "entra-rbac-operator"),
        ("ServiceAccount", SERVICE_ACCOUNT),
        ("ClusterRole", "entra-rbac-operator"),
        ("ClusterRoleBinding", "entra-rbac-operator"),
        ("ClusterRole", "entra-rbac-operator-bind"),
        ("ClusterRoleBinding", "entra-rbac-operator-bind"),
        ("ClusterRole", "entra-rbac-operator-viewer"),
        ("ClusterRole", "entra-rbac-operator-editor"),
        ("Deployment", "entra-rbac-operator"),
        ("Service", "entra-rbac-operator-metrics"),
        ("ConfigMap", GUARDRAILS),
        ("CustomResourceDefinition", "guardrails.entra-rbac.io"),
        ("Guardrails", GUARDRAILS),
        ("ValidatingAdmissionPolicy", GUARD),
        ("ValidatingAdmissionPolicyBinding", GUARD),
    }
    assert expected <= kinds_and_names
    assert any(
        kind == "ConfigMap" and name.startswith("entra-rbac-operator-settings")
        for kind, name in kinds_and_names
    )


def test_namespaced_objects_live_in_the_operator_namespace(rendered: list[Obj]) -> None:
    for o in rendered:
        if o["kind"] in {"ServiceAccount", "ConfigMap", "Deployment", "Service"}:
            assert o["metadata"].get("namespace") == NAMESPACE, f"{o['kind']}/{o['metadata']['name']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_in_object_is_valid_for_kubernetes(rendered: list[Obj], version: str) -> None:
    skipped = []
    for o in rendered:
        if o["apiVersion"].split("/")[0] in CUSTOM_API_GROUPS:
            skipped.append(o["kind"])
            continue
        kubernetes_validate.validate(o, version, strict=True)
    # The custom objects of the base are checked against their own CRDs instead.
    assert sorted(skipped) == ["ClusterKopfPeering", "Guardrails"], "kinds kubernetes-validate lacks"
    for crd_name, kind, name in (
        ("guardrails.entra-rbac.io", "Guardrails", GUARDRAILS),
        ("clusterkopfpeerings.kopf.dev", "ClusterKopfPeering", "entra-rbac-operator"),
    ):
        (served,) = _one(rendered, "CustomResourceDefinition", crd_name)["spec"]["versions"]
        jsonschema.validate(_one(rendered, kind, name), served["schema"]["openAPIV3Schema"])


def test_kubernetes_validate_rejects_a_broken_deployment(rendered: list[Obj]) -> None:
    # Proves the validation above can fail: the same Deployment with an unknown field.
    broken = _one(rendered, "Deployment", "entra-rbac-operator")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_no_role_uses_a_wildcard(rendered: list[Obj]) -> None:
    for role in _roles(rendered):
        for rule in role.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: '*' in {field}"


def test_no_role_grants_escalate_or_impersonate(rendered: list[Obj]) -> None:
    for role in _roles(rendered):
        for rule in role.get("rules", []):
            assert not ESCALATING_VERBS & set(rule["verbs"]), role["metadata"]["name"]


def test_bind_is_granted_only_on_named_roles(rendered: list[Obj]) -> None:
    bind_rules = [r for role in _roles(rendered) for r in role.get("rules", []) if "bind" in r["verbs"]]
    assert bind_rules, "the operator needs bind on the allowlisted roles"
    for rule in bind_rules:
        # An empty resourceNames would mean every role: the allowlist must name them.
        assert rule.get("resourceNames"), f"bind without resourceNames: {rule}"
        assert rule["verbs"] == ["bind"], "keep bind in rules of its own, so the list is the allowlist"
        assert set(rule["resources"]) <= {"clusterroles", "roles"}


@pytest.mark.parametrize("resource", ["clusterroles", "roles"])
def test_bind_allowlist_names_roles_of_each_kind(rendered: list[Obj], resource: str) -> None:
    names = _bind_names(rendered, resource)
    assert names
    assert "cluster-admin" not in names


@pytest.mark.parametrize(
    ("setting", "resource"),
    [("ENTRA_RBAC_ALLOWED_CLUSTER_ROLES", "clusterroles"), ("ENTRA_RBAC_ALLOWED_ROLES", "roles")],
)
def test_the_guardrails_allowlist_is_the_operators_and_the_bind_allowlist(
    rendered: list[Obj], setting: str, resource: str
) -> None:
    # One list: guardrails.env feeds the admission policy (Guardrails) and the operator's environment;
    # bind-allowlist.yaml's resourceNames cannot be derived by kustomize, so they are held equal here.
    guardrails = set(_guardrails(rendered)[setting])
    assert guardrails == _bind_names(rendered, resource)
    configured = {name.strip() for name in _pod_env(rendered)[setting].split(",") if name.strip()}
    assert configured == guardrails
    assert setting not in _settings(rendered), "the allowlist lives in guardrails.env only"


def test_guardrails_name_only_allowed_roles_and_forbid_the_operator_namespace(rendered: list[Obj]) -> None:
    guardrails = _guardrails(rendered)
    allowed = set(guardrails["ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"]) | set(
        guardrails["ENTRA_RBAC_ALLOWED_ROLES"]
    )
    assert set(guardrails["ENTRA_RBAC_PRIVILEGED_ROLES"]) <= allowed
    assert NAMESPACE in guardrails["ENTRA_RBAC_FORBIDDEN_NAMESPACES"]
    for entry in guardrails["ENTRA_RBAC_GROUP_ROLES"]:
        group, _, roles = entry.partition("=")
        assert group, entry
        assert set(roles.split(",")) <= allowed, entry
    # The policy's params: the Guardrails object, a copy of the ConfigMap's data made by kustomize.
    binding = _one(rendered, "ValidatingAdmissionPolicyBinding", GUARD)["spec"]
    assert binding["paramRef"] == {"name": GUARDRAILS, "parameterNotFoundAction": "Deny"}
    params = _one(rendered, "Guardrails", GUARDRAILS)
    assert params["data"] == _one(rendered, "ConfigMap", GUARDRAILS)["data"]


@pytest.mark.parametrize(
    ("group", "resource", "verbs"),
    [
        ("entra-rbac.io", "entragroupbindings", ["get", "list", "watch", "patch"]),
        ("entra-rbac.io", "entragroupbindings/status", ["patch"]),
        ("", "namespaces", ["get", "list", "watch"]),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            ["get", "list", "watch", "create", "update", "patch", "delete"],
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            ["get", "list", "watch", "create", "update", "patch", "delete"],
        ),
        ("rbac.authorization.k8s.io", "roles", ["get", "list", "watch"]),
        ("rbac.authorization.k8s.io", "clusterroles", ["get", "list", "watch"]),
        ("", "events", ["create", "patch"]),
        ("events.k8s.io", "events", ["create", "patch"]),
        ("apiextensions.k8s.io", "customresourcedefinitions", ["get", "list", "watch"]),
        ("kopf.dev", "clusterkopfpeerings", ["get", "list", "watch", "patch"]),
    ],
)
def test_operator_holds_what_it_needs(
    rendered: list[Obj], group: str, resource: str, verbs: list[str]
) -> None:
    rules = _operator_rules(rendered)
    missing = [verb for verb in verbs if not _allows(rules, group, resource, verb)]
    assert not missing, f"{group or 'core'}/{resource}: missing {missing}"


@pytest.mark.parametrize(
    ("group", "resource", "verb", "name"),
    [
        ("", "secrets", "get", None),
        ("", "secrets", "list", None),
        ("", "pods", "create", None),
        ("", "serviceaccounts", "impersonate", None),
        ("", "users", "impersonate", None),
        ("", "groups", "impersonate", None),
        ("rbac.authorization.k8s.io", "clusterroles", "create", None),
        ("rbac.authorization.k8s.io", "clusterroles", "update", None),
        ("rbac.authorization.k8s.io", "roles", "create", None),
        ("rbac.authorization.k8s.io", "clusterroles", "escalate", "cluster-admin"),
        ("rbac.authorization.k8s.io", "clusterroles", "bind", "cluster-admin"),
        ("entra-rbac.io", "entragroupbindings", "create", None),
        ("entra-rbac.io", "entragroupbindings", "delete", None),
        ("apiextensions.k8s.io", "customresourcedefinitions", "create", None),
    ],
)
def test_operator_cannot_do_more(
    rendered: list[Obj], group: str, resource: str, verb: str, name: str | None
) -> None:
    assert not _allows(_operator_rules(rendered), group, resource, verb, name)


def test_egb_read_is_aggregated_to_view_and_write_to_nothing(rendered: list[Obj]) -> None:
    viewer = _one(rendered, "ClusterRole", "entra-rbac-operator-viewer")
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {v for r in viewer["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    # Whoever writes an EntraGroupBinding borrows the operator's bind power: cluster admins only.
    editor = _one(rendered, "ClusterRole", "entra-rbac-operator-editor")
    assert not any(
        k.startswith("rbac.authorization.k8s.io/aggregate-to") for k in editor["metadata"].get("labels", {})
    )


def test_namespace_enforces_restricted_pod_security(rendered: list[Obj]) -> None:
    labels = _one(rendered, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_service_account_carries_a_workload_identity_client_id(rendered: list[Obj]) -> None:
    annotations = _one(rendered, "ServiceAccount", SERVICE_ACCOUNT)["metadata"]["annotations"]
    client_id = annotations["azure.workload.identity/client-id"]
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", client_id)


def test_deployment_runs_one_replica_replaced_with_recreate(rendered: list[Obj]) -> None:
    spec = _one(rendered, "Deployment", "entra-rbac-operator")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_pod_uses_workload_identity_and_the_operator_account(rendered: list[Obj]) -> None:
    template = _one(rendered, "Deployment", "entra-rbac-operator")["spec"]["template"]
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert template["spec"]["serviceAccountName"] == SERVICE_ACCOUNT


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pod.runAsNonRoot", True),
        ("pod.runAsUser", RUN_AS),
        ("pod.seccompProfile.type", "RuntimeDefault"),
        ("container.runAsNonRoot", True),
        ("container.runAsUser", RUN_AS),
        ("container.allowPrivilegeEscalation", False),
        ("container.readOnlyRootFilesystem", True),
        ("container.privileged", False),
        ("container.capabilities.drop", ["ALL"]),
        ("container.seccompProfile.type", "RuntimeDefault"),
    ],
)
def test_pod_security_context_is_restricted(rendered: list[Obj], path: str, expected: object) -> None:
    level, *keys = path.split(".")
    value: Any = (_pod_spec(rendered) if level == "pod" else _container(rendered))["securityContext"]
    for key in keys:
        value = value[key]
    assert value == expected
    assert "add" not in _container(rendered)["securityContext"]["capabilities"]


def test_only_tmp_is_writable_and_it_is_an_empty_dir(rendered: list[Obj]) -> None:
    volumes = {v["name"]: v for v in _pod_spec(rendered)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(rendered)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert "emptyDir" in volumes["tmp"]


def test_container_declares_resources(rendered: list[Obj]) -> None:
    resources = _container(rendered)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_probes_hit_the_health_port_the_settings_name(rendered: list[Obj]) -> None:
    container = _container(rendered)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == int(_settings(rendered)["ENTRA_RBAC_HEALTH_PORT"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe


def test_metrics_port_is_declared_annotated_and_served(rendered: list[Obj]) -> None:
    metrics_port = int(_settings(rendered)["ENTRA_RBAC_METRICS_PORT"])
    assert {p["name"]: p["containerPort"] for p in _container(rendered)["ports"]}["metrics"] == metrics_port
    template = _one(rendered, "Deployment", "entra-rbac-operator")["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    service = _one(rendered, "Service", "entra-rbac-operator-metrics")["spec"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    assert service["ports"][0]["targetPort"] == "metrics"


def test_settings_use_only_known_names_and_reserve_the_own_namespace(rendered: list[Obj]) -> None:
    settings = _settings(rendered)
    assert all(name.startswith("ENTRA_RBAC_") for name in settings)
    assert NAMESPACE in settings["ENTRA_RBAC_RESERVED_NAMESPACES"].split(",")
    env = {e["name"]: e for e in _container(rendered)["env"]}
    assert env["ENTRA_RBAC_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


# What the workload identity webhook injects into the pod (docs/design.md, Platform facts: workload identity).
WEBHOOK_ENV = {
    "AZURE_CLIENT_ID": "3f2b8a4e-6c1d-4e5f-9a7b-0c1d2e3f4a5b",
    "AZURE_TENANT_ID": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
}


def test_every_setting_in_the_config_map_is_one_the_operator_reads(rendered: list[Obj]) -> None:
    # The settings class ignores unknown variables, so a misspelt name here would silently do nothing.
    fields = pytest.importorskip("entra_rbac.settings").Settings.model_fields
    unknown = [name for name in _settings(rendered) if name.removeprefix("ENTRA_RBAC_").lower() not in fields]
    assert not unknown


def _load_settings(pod_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The operator's own settings loader, run on a pod's environment plus the webhook's."""
    settings_module = pytest.importorskip("entra_rbac.settings")
    for name in list(os.environ):
        if name.startswith(("ENTRA_RBAC_", "AZURE_")) or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    for name, value in {**pod_env, **WEBHOOK_ENV, "ENTRA_RBAC_OPERATOR_NAMESPACE": NAMESPACE}.items():
        monkeypatch.setenv(name, value)
    return settings_module.load_settings()


def test_operator_settings_load_from_the_config_map_and_workload_identity(
    rendered: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _load_settings(_pod_env(rendered), monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in _container(rendered)["ports"]}
    assert (settings.metrics_port, settings.health_port) == (ports["metrics"], ports["health"])
    assert set(settings.allowed_cluster_roles) == _bind_names(rendered, "clusterroles")
    assert set(settings.allowed_cluster_roles) == set(
        _guardrails(rendered)["ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"]
    )
    assert set(settings.allowed_roles) == _bind_names(rendered, "roles")
    assert settings.credential == "workload-identity"
    # Peering on by default: a second instance (a botched upgrade, a second install) pauses.
    assert not settings.standalone
    assert (
        settings.peering_name
        == _one(rendered, "ClusterKopfPeering", settings.peering_name)["metadata"]["name"]
    )
    assert NAMESPACE in settings.reserved_namespace_set


def test_standby_is_a_second_single_replica_deployment_with_its_own_pods(
    rendered_with_standby: list[Obj],
) -> None:
    primary, standby = (
        _one(rendered_with_standby, "Deployment", name)["spec"] for name in (OPERATOR, STANDBY)
    )
    for spec in (primary, standby):
        assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    # Deployments whose selectors match each other's pods fight over them.
    for selector_of, pods_of in ((primary, standby), (standby, primary)):
        assert (
            not selector_of["selector"]["matchLabels"].items()
            <= pods_of["template"]["metadata"]["labels"].items()
        )


def test_standby_pod_is_as_restricted_as_the_primary(rendered_with_standby: list[Obj]) -> None:
    primary, standby = (_container(rendered_with_standby, name) for name in (OPERATOR, STANDBY))
    assert standby["securityContext"] == primary["securityContext"]
    assert standby["image"] == primary["image"]
    assert (
        _pod_spec(rendered_with_standby, STANDBY)["securityContext"]
        == _pod_spec(rendered_with_standby)["securityContext"]
    )


def test_standby_joins_the_peering_object_with_a_lower_priority(
    rendered_with_standby: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> None:
    peering = _one(rendered_with_standby, "ClusterKopfPeering", "entra-rbac-operator")
    primary = _load_settings(_pod_env(rendered_with_standby, OPERATOR), monkeypatch)
    standby = _load_settings(_pod_env(rendered_with_standby, STANDBY), monkeypatch)
    assert primary.peering_name == standby.peering_name == peering["metadata"]["name"]
    # Equal priorities make both replicas pause (docs/design.md, Platform facts: kopf peering).
    assert primary.peering_priority > standby.peering_priority


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_standby_objects_are_valid_for_kubernetes(rendered_with_standby: list[Obj], version: str) -> None:
    for o in rendered_with_standby:
        if o["apiVersion"].split("/")[0] not in CUSTOM_API_GROUPS:
            kubernetes_validate.validate(o, version, strict=True)


def test_image_runs_as_the_user_the_pod_demands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert re.search(rf"^USER {RUN_AS}:{RUN_AS}$", final_stage, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["entra-rbac", "run"\]$', final_stage, re.MULTILINE)
