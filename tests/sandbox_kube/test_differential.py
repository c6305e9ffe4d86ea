"""The named comparisons of issue 8 item 6, each on both servers (params `sandbox` and `real`).

Each test reduces what a server answered to a normalised observation (status code, reason,
message text, kubectl's stdout and stderr) and asserts it equals a literal captured from the real
kube-apiserver v1.36.3: the real server is the reference, so the sandbox param fails where the
sandbox diverges. Only what legitimately varies is normalised (uids, timestamps,
resourceVersions, hosts and ports, ages). A divergence not fixed in the sandbox is marked
`@pytest.mark.sandbox_diverges(reason=...)` (a strict xfail on the sandbox param) and listed in
docs/sandbox.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from .helpers import api_error, core, eventually, raw, rbac

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "entragroupbindings.yaml"
GROUP_ID = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"


def _record(name: str, value: Any) -> None:
    folder = os.environ.get("DIFF_RECORD")
    if folder:
        Path(folder, name + ".json").write_text(json.dumps(value, indent=1))


def _run(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {"rc": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


def _status(error: client.ApiException) -> dict[str, Any]:
    body = json.loads(error.body)
    return {
        "code": error.status,
        "reason": body.get("reason"),
        "message": body.get("message"),
        "causes": (body.get("details") or {}).get("causes"),
    }


def _binding(name: str, role: str, group: str = GROUP_ID) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


def _egb(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


# -- 1. kubectl explain ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["entragroupbindings.spec", "entragroupbindings.spec.roleBindings", "entragroupbindings.spec.groups"],
)
def test_explain(kubectl: Kubectl, kube_api: client.ApiClient, egb: dict[str, Any], path: str) -> None:
    # The real server publishes a new CRD's OpenAPI asynchronously: wait for its group version.
    def published() -> bool:
        _, root = raw(kube_api, "GET", "/openapi/v3")
        return "apis/entra-rbac.io/v1alpha1" in root.get("paths", {})

    eventually(published, timeout=30, interval=0.1)
    observed = _run(kubectl("explain", path))
    _record("explain-" + path, observed)
    assert observed == EXPLAIN[path]


# -- 2. CRD validation and CEL messages -----------------------------------------------------------

INVALID = [
    _egb(
        "bad-guid",
        {"groups": [{"id": "not-a-guid"}], "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}]},
    ),
    _egb(
        "two-refs",
        {
            "groups": [{"id": GROUP_ID, "displayName": "Payments"}],
            "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}],
        },
    ),
    _egb(
        "empty-selector",
        {"groups": [{"id": GROUP_ID}], "roleBindings": [{"clusterRole": "view", "namespaceSelector": {}}]},
    ),
    _egb(
        "too-many",
        {"groups": [{"id": GROUP_ID}] * 101, "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}]},
    ),
]


def test_validation_and_cel_messages(kubectl: Kubectl, egb: dict[str, Any]) -> None:
    manifest = yaml.safe_dump_all(INVALID)
    observed = _run(kubectl("apply", "-f", "-", stdin=manifest))
    _record("validation", observed)
    assert observed == VALIDATION


# -- 3. roleRef immutability ----------------------------------------------------------------------


def test_role_ref_is_immutable(kube_api: client.ApiClient) -> None:
    api = rbac(kube_api)
    api.create_namespaced_role_binding("default", _binding("diff-immutable", "view"))
    changed = _binding("diff-immutable", "edit")
    error = api_error(lambda: api.replace_namespaced_role_binding("diff-immutable", "default", changed))
    observed = _status(error)
    _record("roleref", observed)
    assert observed == ROLE_REF


# -- 4. the escalation check ----------------------------------------------------------------------


@pytest.mark.sandbox_diverges(
    reason="the escalation message lists each missing rule one verb at a time, separated by '; ', "
    'where the real server compacts them per resource ({..., Verbs:["get" "list" "watch"]}), '
    "one per line"
)
def test_escalation_message(kube_api: client.ApiClient, kube_api_as: Callable[..., client.ApiClient]) -> None:
    admin = rbac(kube_api)
    admin.create_namespaced_role(
        "default",
        {
            "metadata": {"name": "diff-binder"},
            "rules": [
                {
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["rolebindings"],
                    "verbs": ["create"],
                }
            ],
        },
    )
    grant = _binding("diff-binder", "x")
    grant["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "diff-binder"}
    grant["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dora"}]
    admin.create_namespaced_role_binding("default", grant)
    dora = rbac(kube_api_as("dora"))
    error = api_error(
        lambda: dora.create_namespaced_role_binding("default", _binding("diff-escalate", "admin"))
    )
    observed = _status(error)
    _record("escalation", observed)
    assert observed == ESCALATION


# -- 5. strict field validation -------------------------------------------------------------------

UNKNOWN_CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: diff-unknown\nbogus: 1\ndata:\n  k: v\n"
)
UNKNOWN_EGB = yaml.safe_dump(
    _egb(
        "diff-unknown",
        {
            "groups": [{"id": GROUP_ID, "bogus": 1}],
            "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}],
        },
    )
)


@pytest.mark.parametrize("validate", ["strict", "warn"])
def test_unknown_fields(kubectl: Kubectl, egb: dict[str, Any], validate: str) -> None:
    flags = ["--validate=warn"] if validate == "warn" else []
    observed = {
        "configmap": _run(kubectl("apply", *flags, "-f", "-", stdin=UNKNOWN_CONFIGMAP)),
        "egb": _run(kubectl("apply", *flags, "-f", "-", stdin=UNKNOWN_EGB)),
    }
    _record("unknown-" + validate, observed)
    assert observed == UNKNOWN[validate]


# -- 6. garbage collection of namespaced dependents of a cluster-scoped owner ----------------------


def test_cluster_owned_dependent_is_collected(kube_api: client.ApiClient) -> None:
    owner = rbac(kube_api).create_cluster_role({"metadata": {"name": "diff-owner"}, "rules": []})
    reference = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "diff-owner"}
    reference["uid"] = owner.metadata.uid
    body = {"metadata": {"name": "diff-owned", "ownerReferences": [reference]}, "data": {"k": "v"}}
    core(kube_api).create_namespaced_config_map("default", body)
    rbac(kube_api).delete_cluster_role("diff-owner")

    def collected() -> bool:
        try:
            core(kube_api).read_namespaced_config_map("diff-owned", "default")
        except client.ApiException as error:
            return error.status == 404
        return False

    # The real garbage collector re-reads discovery every 30 s: a generous deadline, polled.
    eventually(collected, timeout=90, interval=0.25)


# -- 7. namespace termination and a write into a terminating namespace ----------------------------


def test_write_into_a_terminating_namespace(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespace({"metadata": {"name": "diff-ending"}})
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {"k": "v"}}
    api.create_namespaced_config_map("diff-ending", held)
    api.delete_namespace("diff-ending")
    eventually(lambda: api.read_namespace("diff-ending").status.phase == "Terminating", timeout=10)
    error = api_error(lambda: api.create_namespaced_config_map("diff-ending", {"metadata": {"name": "late"}}))
    observed = _status(error)
    _record("terminating", observed)
    assert observed == TERMINATING
    # The namespace waits for its held object, then goes once the finalizer is removed.
    eventually(
        lambda: api.read_namespaced_config_map("held", "diff-ending").metadata.deletion_timestamp, timeout=30
    )
    api.patch_namespaced_config_map("held", "diff-ending", {"metadata": {"finalizers": None}})

    def namespace_gone() -> bool:
        try:
            api.read_namespace("diff-ending")
        except client.ApiException as error:
            return error.status == 404
        return False

    eventually(namespace_gone, timeout=60, interval=0.25)


# -- 8. watch resumption --------------------------------------------------------------------


def _watch(kube_api: client.ApiClient, version: str, want: int) -> list[dict[str, Any]]:
    response = core(kube_api).list_namespaced_config_map(
        "default", watch=True, resource_version=version, timeout_seconds=5, _preload_content=False
    )
    events: list[dict[str, Any]] = []
    try:
        for line in response:
            for piece in line.splitlines():
                if piece.strip():
                    events.append(json.loads(piece))
            if len(events) >= want:
                break
    finally:
        response.release_conn()
    return events


def test_watch_resumes_from_a_version(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    version = api.list_namespaced_config_map("default").metadata.resource_version
    for name in ("diff-w1", "diff-w2"):
        api.create_namespaced_config_map("default", {"metadata": {"name": name}})
    resumed = [[e["type"], e["object"]["metadata"]["name"]] for e in _watch(kube_api, version, 2)]
    # 410 for a too-old version is not compared here: in a short session the real server's etcd
    # has not compacted yet (kube-apiserver compacts every 5 minutes), so a watch from
    # resourceVersion=1 there replays ADDED events instead (docs/sandbox.md).
    observed = {"resumed": resumed}
    _record("watch", observed)
    assert observed == WATCH


# -- 10. SubjectAccessReview and impersonation ---------------------------------------------------

CASES = [
    ("list", "configmaps", "default"),
    ("create", "configmaps", "default"),
    ("list", "configmaps", "kube-system"),
]


@pytest.mark.sandbox_diverges(
    reason="an allowed SubjectAccessReview's reason is 'allowed by RBAC'; the real server names the "
    'grant: RBAC: allowed by RoleBinding "diff-viewers/default" of ClusterRole "view" to Group "..."'
)
def test_access_reviews_and_impersonation(kube_api: client.ApiClient, kubectl: Kubectl) -> None:
    rbac(kube_api).create_namespaced_role_binding("default", _binding("diff-viewers", "view"))
    answers = []
    for verb, resource, namespace in CASES:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "alice",
                "groups": [GROUP_ID],
                "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace},
            },
        }
        status = client.AuthorizationV1Api(kube_api).create_subject_access_review(review).status
        answers.append({"allowed": status.allowed, "denied": status.denied, "reason": status.reason})
    can_i = [
        _run(kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", "alice", "--as-group", GROUP_ID))
        for verb, resource, ns in CASES
    ]
    whoami = _run(kubectl("auth", "whoami", "--as", "alice", "--as-group", GROUP_ID))
    observed = {"reviews": answers, "can_i": can_i, "whoami": whoami}
    _record("reviews", observed)
    assert observed == REVIEWS


# -- what the real kube-apiserver v1.36.3 answered (captured; the sandbox must match) ----------

EXPLAIN: Any = {
    "entragroupbindings.spec": {
        "rc": 0,
        "stdout": (
            "GROUP:      entra-rbac.io\n"
            "KIND:       EntraGroupBinding\n"
            "VERSION:    v1alpha1\n"
            "\n"
            "FIELD: spec <Object>\n"
            "\n"
            "\n"
            "DESCRIPTION:\n"
            "    <empty>\n"
            "FIELDS:\n"
            "  clusterRoleBindings\t<[]Object>\n"
            "    Cluster-wide grants, one ClusterRoleBinding per ClusterRole.\n"
            "\n"
            "  groups\t<[]Object> -required-\n"
            "    The Entra groups, each named by exactly one of id, displayName,\n"
            "    mailNickname.\n"
            "\n"
            "  roleBindings\t<[]Object>\n"
            "    Namespaced grants: one RoleBinding per target namespace and role. The\n"
            "    targets are the union of the namespaces listed and those the selector\n"
            "    matches.\n"
            "\n"
            "  subjects\t<Object>\n"
            "    What the bindings name as subjects.\n"
            "\n"
            "  suspend\t<boolean>\n"
            "    true: leave the managed bindings exactly as they are until set back to\n"
            "    false.\n"
            "\n"
            "  validFrom\t<string>\n"
            "    RFC 3339 time with a zone (e.g. 2026-12-01T18:00:00Z): every grant of the\n"
            "    resource (an entry narrows this window, never widens it) starts then\n"
            "    (inclusive).\n"
            "\n"
            "  validUntil\t<string>\n"
            "    RFC 3339 time with a zone: every grant of the resource (an entry narrows\n"
            "    this window, never widens it) ends then, its bindings deleted within\n"
            "    seconds.\n"
            "\n"
            "\n"
        ),
        "stderr": "",
    },
    "entragroupbindings.spec.roleBindings": {
        "rc": 0,
        "stdout": (
            "GROUP:      entra-rbac.io\n"
            "KIND:       EntraGroupBinding\n"
            "VERSION:    v1alpha1\n"
            "\n"
            "FIELD: roleBindings <[]Object>\n"
            "\n"
            "\n"
            "DESCRIPTION:\n"
            "    Namespaced grants: one RoleBinding per target namespace and role. The\n"
            "    targets are the union of the namespaces listed and those the selector\n"
            "    matches.\n"
            "    \n"
            "FIELDS:\n"
            "  clusterRole\t<string>\n"
            "    A ClusterRole to grant in each target namespace.\n"
            "\n"
            "  namespaceSelector\t<Object>\n"
            "    Target namespaces by label. Never empty (that would select every namespace);\n"
            "    never selects kube-system, kube-public, kube-node-lease or the operator's\n"
            "    own.\n"
            "\n"
            "  namespaces\t<[]string>\n"
            "    Target namespaces by name (reserved namespaces only this way).\n"
            "\n"
            "  role\t<string>\n"
            "    A Role, by name, that must exist in each target namespace.\n"
            "\n"
            "  validFrom\t<string>\n"
            "    RFC 3339 time with a zone (e.g. 2026-12-01T18:00:00Z): the grant starts then\n"
            "    (inclusive).\n"
            "\n"
            "  validUntil\t<string>\n"
            "    RFC 3339 time with a zone: the grant ends then, its bindings deleted within\n"
            "    seconds.\n"
            "\n"
            "\n"
        ),
        "stderr": "",
    },
    "entragroupbindings.spec.groups": {
        "rc": 0,
        "stdout": (
            "GROUP:      entra-rbac.io\n"
            "KIND:       EntraGroupBinding\n"
            "VERSION:    v1alpha1\n"
            "\n"
            "FIELD: groups <[]Object>\n"
            "\n"
            "\n"
            "DESCRIPTION:\n"
            "    The Entra groups, each named by exactly one of id, displayName,\n"
            "    mailNickname.\n"
            "    \n"
            "FIELDS:\n"
            "  displayName\t<string>\n"
            "    The group's display name (Entra allows up to 256 characters), resolved once\n"
            "    and then pinned to its id. Display names are not unique: two groups with the\n"
            "    same name make the reference Ambiguous.\n"
            "\n"
            "  id\t<string>\n"
            "    The group's object ID, a lower-case GUID (preferred).\n"
            "\n"
            "  mailNickname\t<string>\n"
            "    The group's mail nickname (up to 64 printable ASCII characters, none of @ (\n"
            '    ) \\ [ ] " ; : < > , or space), resolved once and then pinned.\n'
            "\n"
            "\n"
        ),
        "stderr": "",
    },
}

VALIDATION: Any = {
    "rc": 1,
    "stdout": "",
    "stderr": (
        'Error from server (Invalid): error when creating "STDIN": EntraGroupBinding.entr'
        'a-rbac.io "bad-guid" is invalid: spec.groups[0].id: Invalid value: "not-a-guid":'
        " spec.groups[0].id in body should match '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0"
        "-9a-f]{4}-[0-9a-f]{12}$'\n"
        'Error from server (Invalid): error when creating "STDIN": EntraGroupBinding.entr'
        'a-rbac.io "two-refs" is invalid: spec.groups[0]: Invalid value: exactly one of i'
        "d, displayName, mailNickname must be set\n"
        'Error from server (Invalid): error when creating "STDIN": EntraGroupBinding.entr'
        'a-rbac.io "empty-selector" is invalid: spec.roleBindings[0].namespaceSelector: I'
        "nvalid value: must not be empty: it would select every namespace\n"
        'Error from server (Invalid): error when creating "STDIN": EntraGroupBinding.entr'
        'a-rbac.io "too-many" is invalid: [spec.groups: Too many: 101: must have at most '
        "100 items, <nil>: Invalid value: null: some validation rules were not checked be"
        "cause the object was invalid; correct the existing errors to complete validation"
        "]\n"
    ),
}

ROLE_REF: Any = {
    "code": 422,
    "reason": "Invalid",
    "message": (
        'RoleBinding.rbac.authorization.k8s.io "diff-immutable" is invalid: roleRef: Inva'
        'lid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"ClusterRole","Name":"'
        'edit"}: cannot change roleRef'
    ),
    "causes": [
        {
            "reason": "FieldValueInvalid",
            "message": (
                'Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"ClusterRole","Nam'
                'e":"edit"}: cannot change roleRef'
            ),
            "field": "roleRef",
        },
    ],
}

ESCALATION: Any = {
    "code": 403,
    "reason": "Forbidden",
    "message": (
        'rolebindings.rbac.authorization.k8s.io "diff-escalate" is forbidden: user "dora"'
        ' (groups=["system:authenticated"]) is attempting to grant RBAC permissions not c'
        "urrently held:\n"
        '{APIGroups:[""], Resources:["bindings"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["configmaps"], Verbs:["create" "delete" "deletecolle'
        'ction" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["endpoints"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["events"], Verbs:["create" "delete" "deletecollectio'
        'n" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["limitranges"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["namespaces"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["namespaces/status"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["persistentvolumeclaims"], Verbs:["create" "delete" '
        '"deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["persistentvolumeclaims/status"], Verbs:["get" "list'
        '" "watch"]}\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["create" "delete" "deletecollection"'
        ' "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["pods/attach"], Verbs:["get" "list" "watch" "create"'
        ' "delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["pods/eviction"], Verbs:["create"]}\n'
        '{APIGroups:[""], Resources:["pods/exec"], Verbs:["get" "list" "watch" "create" "'
        'delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["pods/log"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["pods/portforward"], Verbs:["get" "list" "watch" "cr'
        'eate" "delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["pods/proxy"], Verbs:["get" "list" "watch" "create" '
        '"delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["pods/status"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["replicationcontrollers"], Verbs:["create" "delete" '
        '"deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["replicationcontrollers/scale"], Verbs:["create" "de'
        'lete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["replicationcontrollers/status"], Verbs:["get" "list'
        '" "watch"]}\n'
        '{APIGroups:[""], Resources:["resourcequotas"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["resourcequotas/status"], Verbs:["get" "list" "watch'
        '"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch" "create" "de'
        'lete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["serviceaccounts"], Verbs:["impersonate" "create" "d'
        'elete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["serviceaccounts/token"], Verbs:["create"]}\n'
        '{APIGroups:[""], Resources:["services"], Verbs:["create" "delete" "deletecollect'
        'ion" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["services/proxy"], Verbs:["get" "list" "watch" "crea'
        'te" "delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:[""], Resources:["services/status"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["controllerrevisions"], Verbs:["get" "list" "wat'
        'ch"]}\n'
        '{APIGroups:["apps"], Resources:["daemonsets"], Verbs:["create" "delete" "deletec'
        'ollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["daemonsets/status"], Verbs:["get" "list" "watch'
        '"]}\n'
        '{APIGroups:["apps"], Resources:["deployments"], Verbs:["create" "delete" "delete'
        'collection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["deployments/rollback"], Verbs:["create" "delete'
        '" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:["apps"], Resources:["deployments/scale"], Verbs:["create" "delete" "'
        'deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["deployments/status"], Verbs:["get" "list" "watc'
        'h"]}\n'
        '{APIGroups:["apps"], Resources:["replicasets"], Verbs:["create" "delete" "delete'
        'collection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["replicasets/scale"], Verbs:["create" "delete" "'
        'deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["replicasets/status"], Verbs:["get" "list" "watc'
        'h"]}\n'
        '{APIGroups:["apps"], Resources:["statefulsets"], Verbs:["create" "delete" "delet'
        'ecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["statefulsets/scale"], Verbs:["create" "delete" '
        '"deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["apps"], Resources:["statefulsets/status"], Verbs:["get" "list" "wat'
        'ch"]}\n'
        '{APIGroups:["authorization.k8s.io"], Resources:["localsubjectaccessreviews"], Ve'
        'rbs:["create"]}\n'
        '{APIGroups:["autoscaling"], Resources:["horizontalpodautoscalers"], Verbs:["crea'
        'te" "delete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["autoscaling"], Resources:["horizontalpodautoscalers/status"], Verbs'
        ':["get" "list" "watch"]}\n'
        '{APIGroups:["batch"], Resources:["cronjobs"], Verbs:["create" "delete" "deleteco'
        'llection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["batch"], Resources:["cronjobs/status"], Verbs:["get" "list" "watch"'
        "]}\n"
        '{APIGroups:["batch"], Resources:["jobs"], Verbs:["create" "delete" "deletecollec'
        'tion" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["batch"], Resources:["jobs/status"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:["coordination.k8s.io"], Resources:["leases"], Verbs:["create" "delet'
        'e" "deletecollection" "get" "list" "patch" "update" "watch"]}\n'
        '{APIGroups:["discovery.k8s.io"], Resources:["endpointslices"], Verbs:["get" "lis'
        't" "watch"]}\n'
        '{APIGroups:["events.k8s.io"], Resources:["events"], Verbs:["create" "delete" "de'
        'letecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["daemonsets"], Verbs:["create" "delete" "d'
        'eletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["daemonsets/status"], Verbs:["get" "list" '
        '"watch"]}\n'
        '{APIGroups:["extensions"], Resources:["deployments"], Verbs:["create" "delete" "'
        'deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["deployments/rollback"], Verbs:["create" "'
        'delete" "deletecollection" "patch" "update"]}\n'
        '{APIGroups:["extensions"], Resources:["deployments/scale"], Verbs:["create" "del'
        'ete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["deployments/status"], Verbs:["get" "list"'
        ' "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["ingresses"], Verbs:["create" "delete" "de'
        'letecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["ingresses/status"], Verbs:["get" "list" "'
        'watch"]}\n'
        '{APIGroups:["extensions"], Resources:["networkpolicies"], Verbs:["create" "delet'
        'e" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["replicasets"], Verbs:["create" "delete" "'
        'deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["replicasets/scale"], Verbs:["create" "del'
        'ete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["replicasets/status"], Verbs:["get" "list"'
        ' "watch"]}\n'
        '{APIGroups:["extensions"], Resources:["replicationcontrollers/scale"], Verbs:["c'
        'reate" "delete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["networking.k8s.io"], Resources:["ingresses"], Verbs:["create" "dele'
        'te" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["networking.k8s.io"], Resources:["ingresses/status"], Verbs:["get" "'
        'list" "watch"]}\n'
        '{APIGroups:["networking.k8s.io"], Resources:["networkpolicies"], Verbs:["create"'
        ' "delete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["policy"], Resources:["poddisruptionbudgets"], Verbs:["create" "dele'
        'te" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["policy"], Resources:["poddisruptionbudgets/status"], Verbs:["get" "'
        'list" "watch"]}\n'
        '{APIGroups:["rbac.authorization.k8s.io"], Resources:["rolebindings"], Verbs:["de'
        'lete" "deletecollection" "get" "list" "patch" "update" "watch"]}\n'
        '{APIGroups:["rbac.authorization.k8s.io"], Resources:["roles"], Verbs:["create" "'
        'delete" "deletecollection" "get" "list" "patch" "update" "watch"]}\n'
        '{APIGroups:["resource.k8s.io"], Resources:["resourceclaims"], Verbs:["create" "d'
        'elete" "deletecollection" "patch" "update" "get" "list" "watch"]}\n'
        '{APIGroups:["resource.k8s.io"], Resources:["resourceclaims/status"], Verbs:["get'
        '" "list" "watch"]}\n'
        '{APIGroups:["resource.k8s.io"], Resources:["resourceclaimtemplates"], Verbs:["cr'
        'eate" "delete" "deletecollection" "patch" "update" "get" "list" "watch"]}'
    ),
    "causes": None,
}

UNKNOWN: Any = {
    "strict": {
        "configmap": {
            "rc": 1,
            "stdout": "",
            "stderr": (
                'Error from server (BadRequest): error when creating "STDIN": ConfigMap in versio'
                'n "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "b'
                'ogus"\n'
            ),
        },
        "egb": {
            "rc": 1,
            "stdout": "",
            "stderr": (
                'Error from server (BadRequest): error when creating "STDIN": EntraGroupBinding i'
                'n version "v1alpha1" cannot be handled as a EntraGroupBinding: strict decoding e'
                'rror: unknown field "spec.groups[0].bogus"\n'
            ),
        },
    },
    "warn": {
        "configmap": {
            "rc": 0,
            "stdout": "configmap/diff-unknown created\n",
            "stderr": 'Warning: unknown field "bogus"\n',
        },
        "egb": {
            "rc": 0,
            "stdout": "entragroupbinding.entra-rbac.io/diff-unknown created\n",
            "stderr": 'Warning: unknown field "spec.groups[0].bogus"\n',
        },
    },
}
TERMINATING: Any = {
    "code": 403,
    "reason": "Forbidden",
    "message": (
        'configmaps "late" is forbidden: unable to create new content in namespace diff-e'
        "nding because it is being terminated"
    ),
    "causes": [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace diff-ending is being terminated",
            "field": "metadata.namespace",
        },
    ],
}

WATCH: Any = {
    "resumed": [
        [
            "ADDED",
            "diff-w1",
        ],
        [
            "ADDED",
            "diff-w2",
        ],
    ],
}

REVIEWS: Any = {
    "reviews": [
        {
            "allowed": True,
            "denied": None,
            "reason": (
                'RBAC: allowed by RoleBinding "diff-viewers/default" of ClusterRole "view" to Gro'
                'up "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"'
            ),
        },
        {
            "allowed": False,
            "denied": None,
            "reason": None,
        },
        {
            "allowed": False,
            "denied": None,
            "reason": None,
        },
    ],
    "can_i": [
        {
            "rc": 0,
            "stdout": "yes\n",
            "stderr": "",
        },
        {
            "rc": 1,
            "stdout": "no\n",
            "stderr": "",
        },
        {
            "rc": 1,
            "stdout": "no\n",
            "stderr": "",
        },
    ],
    "whoami": {
        "rc": 0,
        "stdout": (
            "ATTRIBUTE   VALUE\n"
            "Username    alice\n"
            "Groups      [6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f system:authenticated]\n"
        ),
        "stderr": "",
    },
}
