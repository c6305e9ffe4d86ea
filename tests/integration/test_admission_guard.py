"""The escalation guard and guardrails (deploy/admission/), on the real kube-apiserver and the sandbox.

Each case is one request by a least-privileged user (client certificates on the real control plane,
tokens on the sandbox) against both servers set up alike from deploy/: the CRD, the Guardrails
(its CRD and object), the ValidatingAdmissionPolicy and its binding. A case passes when each server gives the
expected answer AND both give the same status code, reason and message: the differential test of
the sandbox's admission against the real one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from entra_rbac_sandbox.kube.server import ApiServerThread
from tests.controlplane.harness import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
GROUP, VERSION, PLURAL = "entra-rbac.io", "v1alpha1", "entragroupbindings"
PAYMENTS, SHIPPING = "guard-payments", "guard-shipping"
TEAM_GROUP = "0f0e0d0c-0b0a-4909-8807-060504030201"
# Guardrails for these tests: the shipped ones, plus a group that may receive only `view`.
VIEW_ONLY_GROUP = "11111111-2222-4333-8444-555555555555"
GROUP_ROLES = f"{VIEW_ONLY_GROUP}=view *=view,edit,admin,deployer"
# Break-glass: admin only for at most four hours (issue 11, point 5).
MAX_WINDOW_ROLES, MAX_WINDOW = "admin", "4h"
FOUR_HOURS = {"validFrom": "2030-01-01T22:00:00Z", "validUntil": "2030-01-02T02:00:00+00:00"}
MARK = {"entra-rbac.io/test": "admission-guard"}
DEADLINE = 60.0


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    message: str


class Server:
    """One API server with the guard installed, and how to sign in to it as someone."""

    def __init__(self, name: str, admin: Path, sign_in: Callable[[str, tuple[str, ...]], Path], work: Path):
        self.name, self.admin_kubeconfig, self._sign_in, self.work = name, admin, sign_in, work
        self._clients: dict[str, client.ApiClient] = {}

    def api(self, user: str | None = None) -> client.ApiClient:
        key = user or ""
        if key not in self._clients:
            path = self.admin_kubeconfig if user is None else self._sign_in(user, ())
            self._clients[key] = cast(
                client.ApiClient,
                config.new_client_from_config(config_file=str(path)),  # type: ignore[no-untyped-call]
            )
        return self._clients[key]

    def kubeconfig(self, user: str) -> Path:
        return self._sign_in(user, ())

    def kubectl(self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> Any:
        argv = [
            str(KUBECTL),
            f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            f"--cache-dir={self.work / 'kube-cache'}",
            *args,
        ]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)

    def apply(self, documents: list[dict[str, Any]]) -> None:
        done = self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
        assert done.returncode == 0, f"{self.name}: {done.stderr}"

    def close(self) -> None:
        for api in self._clients.values():
            api.close()


def _rendered() -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "deploy")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _guard_objects() -> list[dict[str, Any]]:
    """From deploy/: the CRD, the operator's namespace, the guardrails, the policy and its binding."""
    wanted = {
        ("CustomResourceDefinition", "entragroupbindings.entra-rbac.io"),
        ("Namespace", "entra-rbac-system"),
        ("CustomResourceDefinition", "guardrails.entra-rbac.io"),
        ("Guardrails", "entra-rbac-guardrails"),
        ("ValidatingAdmissionPolicy", "entra-rbac-guard"),
        ("ValidatingAdmissionPolicyBinding", "entra-rbac-guard"),
    }
    found = [d for d in _rendered() if (d["kind"], d["metadata"]["name"]) in wanted]
    assert len(found) == len(wanted)
    for document in found:
        if document["kind"] == "Guardrails":
            document["data"]["ENTRA_RBAC_GROUP_ROLES"] = GROUP_ROLES
            document["data"]["ENTRA_RBAC_MAX_WINDOW_ROLES"] = MAX_WINDOW_ROLES
            document["data"]["ENTRA_RBAC_MAX_WINDOW"] = MAX_WINDOW
    return found


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def _binding(kind: str, name: str, role: str, user: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


WRITE = {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create", "update", "patch", "get", "list"]}
BIND_EDIT = {
    "apiGroups": ["rbac.authorization.k8s.io"],
    "resources": ["clusterroles"],
    "verbs": ["bind"],
    "resourceNames": ["edit"],
}


def _people() -> list[dict[str, Any]]:
    """alice writes only; bob also binds edit cluster-wide; carol binds edit in payments only;
    dave may only delete; erin is a cluster admin."""
    return [
        _cluster_role("guard-test-writer", [WRITE]),
        _cluster_role(
            "guard-test-deleter", [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["delete"]}]
        ),
        _cluster_role("guard-test-bind-edit", [BIND_EDIT]),
        *(
            _binding("ClusterRoleBinding", f"guard-test-{who}-writes", "guard-test-writer", f"guard-{who}")
            for who in ("alice", "bob", "carol")
        ),
        _binding("ClusterRoleBinding", "guard-test-bob-binds", "guard-test-bind-edit", "guard-bob"),
        _binding("RoleBinding", "guard-test-carol-binds", "guard-test-bind-edit", "guard-carol", PAYMENTS),
        _binding("ClusterRoleBinding", "guard-test-dave-deletes", "guard-test-deleter", "guard-dave"),
        _binding("ClusterRoleBinding", "guard-test-erin-admin", "cluster-admin", "guard-erin"),
    ]


def _namespaces() -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (PAYMENTS, SHIPPING)]


def _egb(name: str, spec: dict[str, Any], group: str = TEAM_GROUP) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name, "labels": dict(MARK)},
        "spec": {"groups": [{"id": group}], **spec},
    }


def _answer(call: Callable[[], Any]) -> Answer:
    try:
        call()
    except ApiException as error:
        body = json.loads(error.body or "{}")
        return Answer(int(error.status), body.get("reason", ""), body.get("message", ""))
    return Answer(200, "", "")


def _wait(condition: Callable[[], object], what: str, last: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {DEADLINE}s {last()}")
        time.sleep(0.2)  # polling a condition, with the deadline above


def _may(server: Server, user: str, verb: str, resource: str, name: str, namespace: str = "") -> bool:
    review = {
        "spec": {
            "user": user,
            "resourceAttributes": {
                "verb": verb,
                "group": "rbac.authorization.k8s.io",
                "resource": resource,
                "name": name,
                "namespace": namespace,
            },
        }
    }
    answer = client.AuthorizationV1Api(server.api()).create_subject_access_review(review)  # type: ignore[arg-type]
    return bool(answer.status.allowed)


def _install(server: Server) -> None:
    server.apply(_namespaces())
    crds = [d for d in _guard_objects() if d["kind"] == "CustomResourceDefinition"]
    server.apply(crds)  # first: the Guardrails object cannot be sent before its kind is served
    names = [f"crd/{d['metadata']['name']}" for d in crds]
    established = server.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    assert established.returncode == 0, established.stderr
    server.apply(_guard_objects())
    server.apply(_people())
    # The real server learns RBAC, policies and params through informers: wait until it knows.
    _wait(lambda: _may(server, "guard-carol", "bind", "clusterroles", "edit", PAYMENTS), "carol's bind")
    _wait(lambda: _may(server, "guard-bob", "bind", "clusterroles", "edit"), "bob's bind")
    custom = client.CustomObjectsApi(server.api("guard-alice"))
    probe = _egb("guard-probe", {"clusterRoleBindings": [{"clusterRole": "edit"}]})
    answers: list[Answer] = []

    def refused() -> bool:
        answers.append(
            _answer(lambda: custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, probe, dry_run="All"))
        )
        return "may not bind ClusterRole edit" in answers[-1].message

    _wait(
        refused,
        f"{server.name}: the policy in force with its params",
        lambda: (
            answers[-1:],
            server.kubectl(
                "get", "ns/entra-rbac-system", "cm/entra-rbac-guardrails", "-n", "entra-rbac-system"
            ),
        ),
    )


def _uninstall(server: Server) -> None:
    server.kubectl("delete", PLURAL, "-l", "entra-rbac.io/test=admission-guard", "--wait=false")
    guard = [d for d in _guard_objects() if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
    removed = yaml.safe_dump_all(guard + _people() + _namespaces())
    server.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=removed)
    # Later tests on the shared real server must not meet the policy: wait until it is out of force.
    custom = client.CustomObjectsApi(server.api())
    refused = _egb("guard-probe", {"clusterRoleBindings": [{"clusterRole": "cluster-admin"}]})
    _wait(
        lambda: (
            _answer(
                lambda: custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, refused, dry_run="All")
            ).status
            == 200
        ),
        f"{server.name}: the policy out of force",
    )
    # Then the kinds and namespaces themselves, waited for: the suites after this one share the
    # real server and create the EntraGroupBinding CRD and these namespaces afresh.
    kinds = ("CustomResourceDefinition", "Namespace")
    crds = yaml.safe_dump_all([d for d in _guard_objects() if d["kind"] in kinds])
    done = server.kubectl(
        "delete", "--ignore-not-found", "--wait=true", "--timeout=50s", "-f", "-", stdin=crds
    )
    assert done.returncode == 0, done.stderr
    names = [f"namespace/{d['metadata']['name']}" for d in _namespaces()]
    done = server.kubectl("wait", "--for=delete", "--timeout=50s", *names)
    assert done.returncode == 0 or "not found" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def servers(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """The real control plane and a sandbox API server, each with the guard installed."""
    work = tmp_path_factory.mktemp("admission-guard")
    sandbox = ApiServerThread(tls=True, cert_dir=work / "pki")
    with sandbox:
        admin = sandbox.write_kubeconfig(work / "sandbox-admin.kubeconfig")

        def sandbox_user(user: str, groups: tuple[str, ...]) -> Path:
            sandbox.add_identity(user, list(groups))
            return sandbox.write_kubeconfig(work / f"sandbox-{user}.kubeconfig", user=user)

        made = [
            Server("real", control_plane.admin_kubeconfig, control_plane.kubeconfig_for, work / "real"),
            Server("sandbox", admin, sandbox_user, work / "sandbox"),
        ]
        for server in made:
            _install(server)
        try:
            yield made
        finally:
            _uninstall(made[0])  # the sandbox goes with its thread
            for server in made:
                server.close()


def _same_answer(servers: list[Server], call: Callable[[Server], Any]) -> Answer:
    answers = {server.name: _answer(lambda server=server: call(server)) for server in servers}
    real, sandbox = answers["real"], answers["sandbox"]
    assert sandbox == real, f"the sandbox answers differently:\n real:    {real}\n sandbox: {sandbox}"
    return real


def _create(servers: list[Server], user: str, body: dict[str, Any], **options: Any) -> Answer:
    return _same_answer(
        servers,
        lambda s: client.CustomObjectsApi(s.api(user)).create_cluster_custom_object(
            GROUP, VERSION, PLURAL, body, **options
        ),
    )


def _denied(answer: Answer, name: str, why: str) -> None:
    assert (answer.status, answer.reason) == (403, "Forbidden"), answer
    assert answer.message == (
        f"{PLURAL}.{GROUP} \"{name}\" is forbidden: ValidatingAdmissionPolicy 'entra-rbac-guard' with "
        f"binding 'entra-rbac-guard' denied request: {why}"
    )


WIDE_EDIT = {"clusterRoleBindings": [{"clusterRole": "edit"}]}


def test_a_user_who_may_only_create_is_refused_edit(servers: list[Server]) -> None:
    answer = _create(servers, "guard-alice", _egb("alice-edit", WIDE_EDIT))
    _denied(
        answer,
        "alice-edit",
        "spec.clusterRoleBindings[0]: user guard-alice may not bind ClusterRole edit cluster-wide "
        "(needs verb bind on clusterroles/edit cluster-wide)",
    )


def test_bind_on_edit_cluster_wide_is_enough_for_edit_cluster_wide(servers: list[Server]) -> None:
    assert _create(servers, "guard-bob", _egb("bob-edit", WIDE_EDIT)).status == 200


def test_bind_in_one_namespace_grants_there_only(servers: list[Server]) -> None:
    there = _egb("carol-payments", {"roleBindings": [{"clusterRole": "edit", "namespaces": [PAYMENTS]}]})
    assert _create(servers, "guard-carol", there).status == 200
    also = _egb(
        "carol-shipping", {"roleBindings": [{"clusterRole": "edit", "namespaces": [PAYMENTS, SHIPPING]}]}
    )
    _denied(
        _create(servers, "guard-carol", also),
        "carol-shipping",
        f"spec.roleBindings[0]: user guard-carol may not bind ClusterRole edit in namespace {SHIPPING} "
        f"(needs verb bind on clusterroles/edit in namespace {SHIPPING})",
    )


def test_bind_in_one_namespace_is_not_enough_for_a_selector(servers: list[Server]) -> None:
    selected = _egb(
        "carol-selector",
        {
            "roleBindings": [
                {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "payments"}}}
            ]
        },
    )
    _denied(
        _create(servers, "guard-carol", selected),
        "carol-selector",
        "spec.roleBindings[0]: user guard-carol may not bind ClusterRole edit cluster-wide "
        "(needs verb bind on "
        "clusterroles/edit cluster-wide: a namespaceSelector can match namespaces created later)",
    )


def test_a_cluster_admin_may_grant_every_allowed_role(servers: list[Server]) -> None:
    everything = _egb(
        "erin-all",
        {
            "clusterRoleBindings": [{"clusterRole": "admin", **FOUR_HOURS}, {"clusterRole": "view"}],
            "roleBindings": [
                {"role": "deployer", "namespaces": [PAYMENTS, SHIPPING]},
                {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"a": "b"}}},
            ],
        },
    )
    assert _create(servers, "guard-erin", everything).status == 200


def _replace(servers: list[Server], user: str, name: str, change: Callable[[dict[str, Any]], None]) -> Answer:
    def call(server: Server) -> Any:
        api = client.CustomObjectsApi(server.api(user))
        current = api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        change(current)
        return api.replace_cluster_custom_object(GROUP, VERSION, PLURAL, name, current)

    return _same_answer(servers, call)


def test_an_update_that_adds_a_role_is_checked_like_a_create(servers: list[Server]) -> None:
    body = _egb("carol-update", {"roleBindings": [{"clusterRole": "edit", "namespaces": [PAYMENTS]}]})
    assert _create(servers, "guard-carol", body).status == 200
    answer = _replace(
        servers,
        "guard-carol",
        "carol-update",
        lambda o: o["spec"]["roleBindings"].append({"clusterRole": "view", "namespaces": [PAYMENTS]}),
    )
    _denied(
        answer,
        "carol-update",
        f"spec.roleBindings[1]: user guard-carol may not bind ClusterRole view in namespace {PAYMENTS} "
        f"(needs verb bind on clusterroles/view in namespace {PAYMENTS})",
    )


def test_an_update_that_leaves_spec_alone_needs_no_bind(servers: list[Server]) -> None:
    body = _egb("bob-labelled", WIDE_EDIT)
    assert _create(servers, "guard-bob", body).status == 200
    relabel = _replace(
        servers, "guard-alice", "bob-labelled", lambda o: o["metadata"]["labels"].update(owner="alice")
    )
    assert relabel.status == 200


def test_guardrails_refuse_a_role_a_group_may_not_receive(servers: list[Server]) -> None:
    answer = _create(servers, "guard-erin", _egb("erin-pair", WIDE_EDIT, group=VIEW_ONLY_GROUP))
    _denied(
        answer,
        "erin-pair",
        f"spec.groups[0]: group {VIEW_ONLY_GROUP} may not receive ClusterRole edit "
        "(spec.clusterRoleBindings[0]; "
        "ENTRA_RBAC_GROUP_ROLES in Guardrails entra-rbac-guardrails)",
    )
    view = _egb("erin-pair-view", {"clusterRoleBindings": [{"clusterRole": "view"}]}, group=VIEW_ONLY_GROUP)
    assert _create(servers, "guard-erin", view).status == 200


def test_guardrails_refuse_a_forbidden_namespace_and_a_role_not_allowed(servers: list[Server]) -> None:
    own = _egb(
        "erin-own-namespace", {"roleBindings": [{"clusterRole": "view", "namespaces": ["entra-rbac-system"]}]}
    )
    _denied(
        _create(servers, "guard-erin", own),
        "erin-own-namespace",
        "spec.roleBindings[0]: namespace entra-rbac-system may never be targeted "
        "(ENTRA_RBAC_FORBIDDEN_NAMESPACES in Guardrails entra-rbac-guardrails)",
    )
    root = _egb("erin-cluster-admin", {"clusterRoleBindings": [{"clusterRole": "cluster-admin"}]})
    _denied(
        _create(servers, "guard-erin", root),
        "erin-cluster-admin",
        "spec.clusterRoleBindings[0]: ClusterRole cluster-admin is not allowed by the guardrails "
        "(ENTRA_RBAC_ALLOWED_CLUSTER_ROLES in Guardrails entra-rbac-guardrails)",
    )


def test_guardrails_grant_break_glass_roles_only_for_a_bounded_window(servers: list[Server]) -> None:
    why = (
        "ClusterRole admin may only be granted for at most 4h: set validFrom and validUntil (on the "
        "grant or the spec) at most that far apart (ENTRA_RBAC_MAX_WINDOW_ROLES in Guardrails "
        "entra-rbac-guardrails)"
    )
    refused = {
        "erin-admin-forever": {"clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": "admin"}]},
        "erin-admin-open-start": {
            "roleBindings": [
                {"clusterRole": "admin", "namespaces": [PAYMENTS], "validUntil": "2030-01-02T02:00:00Z"}
            ]
        },
        "erin-admin-five-hours": {
            "clusterRoleBindings": [
                {"clusterRole": "view"},
                {
                    "clusterRole": "admin",
                    "validFrom": "2030-01-01T21:00:00Z",
                    "validUntil": "2030-01-02T02:00:00Z",
                },
            ]
        },
    }
    paths = {
        "erin-admin-forever": "spec.clusterRoleBindings[1]",
        "erin-admin-open-start": "spec.roleBindings[0]",
        "erin-admin-five-hours": "spec.clusterRoleBindings[1]",
    }
    for name, spec in refused.items():
        _denied(_create(servers, "guard-erin", _egb(name, spec)), name, f"{paths[name]}: {why}")
    allowed = {
        "erin-admin-four-hours": {"clusterRoleBindings": [{"clusterRole": "admin", **FOUR_HOURS}]},
        # Five hours on the grant, narrowed to four by the spec's window: the effective one counts.
        "erin-admin-narrowed": {
            **FOUR_HOURS,
            "roleBindings": [
                {
                    "clusterRole": "admin",
                    "namespaces": [PAYMENTS],
                    "validFrom": "2030-01-01T21:00:00Z",
                    "validUntil": "2030-01-02T02:00:00Z",
                }
            ],
        },
        "erin-edit-forever": WIDE_EDIT,  # roles not named are not bounded
    }
    for name, spec in allowed.items():
        assert _create(servers, "guard-erin", _egb(name, spec)).status == 200, name


def test_apply_dry_run_server_shows_the_refusal_and_writes_nothing(servers: list[Server]) -> None:
    body = yaml.safe_dump(_egb("alice-dry-run", WIDE_EDIT))
    outputs = []
    for server in servers:
        done = server.kubectl(
            "apply", "--dry-run=server", "-f", "-", kubeconfig=server.kubeconfig("guard-alice"), stdin=body
        )
        assert done.returncode != 0
        outputs.append(done.stderr)
        gone = _answer(
            lambda s=server: client.CustomObjectsApi(s.api()).get_cluster_custom_object(
                GROUP, VERSION, PLURAL, "alice-dry-run"
            )
        )
        assert gone.status == 404
    assert outputs[0] == outputs[1]
    assert "user guard-alice may not bind ClusterRole edit cluster-wide" in outputs[0]


def test_deletion_is_never_blocked(servers: list[Server]) -> None:
    assert _create(servers, "guard-erin", _egb("dave-deletes", WIDE_EDIT)).status == 200
    deleted = _same_answer(
        servers,
        lambda s: client.CustomObjectsApi(s.api("guard-dave")).delete_cluster_custom_object(
            GROUP, VERSION, PLURAL, "dave-deletes"
        ),
    )
    assert deleted.status == 200
