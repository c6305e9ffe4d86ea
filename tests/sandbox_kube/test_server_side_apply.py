"""Server-side apply (`kubectl apply --server-side`, what Flux and Argo CD use) on both servers
(issue 8 item 6): `application/apply-patch+yaml` PATCHes with a `fieldManager`, create on apply,
managedFields per manager, a field dropped from a manager's configuration removed, conflicts
(409) and `force=true`, atomic lists (RBAC `subjects`) and maps (`roleRef`), and apply beside
the operator's status writes and kopf's annotation patches.

Each test reduces the answers to observations (status code, the object's fields, managedFields
without their times, the error's message and causes) and asserts the literals the real
kube-apiserver v1.36.3 answered (tests/sandbox_kube/test_differential.py explains the pattern).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client

from .helpers import raw
from .test_differential import GROUP_ID, _egb, _record

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
CONFIGMAP = "/api/v1/namespaces/default/configmaps/ssa-cm"
BINDING = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/ssa-rb"
EGB = "/apis/entra-rbac.io/v1alpha1/entragroupbindings/ssa-egb"


def _managed(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """managedFields in a stable order, each entry's time replaced by whether it has one (an
    apply that changes nothing records its manager without a time)."""
    entries = []
    for entry in obj["metadata"].get("managedFields") or []:
        entry = dict(entry)
        entry["time"] = bool(entry.pop("time", None))
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["operation"], e["manager"], e.get("subresource", "")))


def _step(
    kube_api: client.ApiClient,
    path: str,
    body: Any,
    manager: str | None,
    *,
    force: bool = False,
    headers: dict[str, str] = APPLY,
    keep: tuple[str, ...] = ("data", "metadata.labels"),
) -> dict[str, Any]:
    query = [("fieldManager", manager)] if manager else []
    if force:
        query.append(("force", "true"))
    if headers is APPLY:
        body = yaml.safe_dump(body)
    status, answer = raw(kube_api, "PATCH", path, body=body, query=query, headers=headers)
    if status >= 400:
        causes = (answer.get("details") or {}).get("causes")
        return {
            "code": status,
            "reason": answer.get("reason"),
            "message": answer["message"],
            "causes": causes,
        }
    observed: dict[str, Any] = {"code": status}
    for dotted in keep:
        value: Any = answer
        for part in dotted.split("."):
            value = (value or {}).get(part)
        observed[dotted] = value
    observed["managedFields"] = _managed(answer)
    return observed


def _configmap(labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "ssa-cm"}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def test_apply_configmap_managers_conflicts_and_force(kube_api: client.ApiClient) -> None:
    steps = {
        "no-manager": _step(kube_api, CONFIGMAP, _configmap({}, {"a": "1"}), None),
        "create": _step(kube_api, CONFIGMAP, _configmap({"app": "a"}, {"a": "1", "b": "2"}), "alice"),
        "second-manager": _step(kube_api, CONFIGMAP, _configmap({}, {"c": "3"}), "bob"),
        "same-value-shared": _step(kube_api, CONFIGMAP, _configmap({}, {"a": "1", "c": "3"}), "bob"),
        "conflict": _step(kube_api, CONFIGMAP, _configmap({"app": "b"}, {"a": "9", "c": "3"}), "bob"),
        "force": _step(kube_api, CONFIGMAP, _configmap({}, {"a": "9", "c": "3"}), "bob", force=True),
        "drop-field": _step(kube_api, CONFIGMAP, _configmap({"app": "a"}, {}), "alice"),
        "update-takes-over": _step(
            kube_api, CONFIGMAP, {"metadata": {"labels": {"app": "c"}}}, "carol", headers=MERGE
        ),
        "conflict-with-update": _step(kube_api, CONFIGMAP, _configmap({"app": "a"}, {}), "alice"),
    }
    _record("ssa-configmap", steps)
    assert steps == SSA_CONFIGMAP


def _binding(subjects: list[str], role: str = "view") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "ssa-rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": s} for s in subjects],
    }


def test_apply_rolebinding_atomic_subjects_and_role_ref(kube_api: client.ApiClient) -> None:
    keep = ("roleRef.name", "subjects")
    steps = {
        "create": _step(kube_api, BINDING, _binding(["g1"]), "flux", keep=keep),
        "same-list-shared": _step(kube_api, BINDING, _binding(["g1"]), "argocd", keep=keep),
        "conflict-on-list": _step(kube_api, BINDING, _binding(["g1", "g2"]), "argocd", keep=keep),
        "force-list": _step(kube_api, BINDING, _binding(["g1", "g2"]), "argocd", force=True, keep=keep),
        "role-ref-immutable": _step(kube_api, BINDING, _binding(["g1", "g2"], "edit"), "argocd", keep=keep),
    }
    _record("ssa-rolebinding", steps)
    assert steps == SSA_ROLEBINDING


def _egb_config(annotations: dict[str, str] | None = None, suspend: bool = False) -> dict[str, Any]:
    spec = {
        "groups": [{"id": GROUP_ID}],
        "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}],
        "suspend": suspend,
    }
    body = _egb("ssa-egb", spec)
    if annotations:
        body["metadata"]["annotations"] = annotations
    return body


def test_apply_beside_status_writes_and_annotation_patches(
    kube_api: client.ApiClient, egb: dict[str, Any]
) -> None:
    keep = ("spec.suspend", "metadata.annotations", "status.summary")
    status = {"status": {"observedGeneration": 1, "summary": {"groups": "1/1", "bindings": 1, "subjects": 1}}}
    kopf = {"metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": "x"}}}
    steps = {
        "create": _step(kube_api, EGB, _egb_config(), "flux", keep=keep),
        "status-write": _step(kube_api, EGB + "/status", status, "entra-rbac", headers=MERGE, keep=keep),
        "kopf-annotation": _step(kube_api, EGB, kopf, "kopf", headers=MERGE, keep=keep),
        "reapply-changed-spec": _step(kube_api, EGB, _egb_config(suspend=True), "flux", keep=keep),
        "conflict-on-annotation": _step(
            kube_api,
            EGB,
            _egb_config({"kopf.zalando.org/last-handled-configuration": "other"}),
            "flux",
            keep=keep,
        ),
        "status-in-apply-ignored": _step(
            kube_api,
            EGB,
            {**_egb_config(suspend=True), "status": {"observedGeneration": 7}},
            "flux",
            keep=keep,
        ),
    }
    _record("ssa-egb", steps)
    assert steps == SSA_EGB


NAMESPACE = yaml.safe_dump_all(
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ssa-ns", "labels": {"team": "a"}}},
        _binding(["g1"]) | {"metadata": {"name": "ssa-rb", "namespace": "ssa-ns"}},
    ]
)


def test_kubectl_apply_server_side(kubectl: Kubectl, kube_api: client.ApiClient, egb: dict[str, Any]) -> None:
    manifest = NAMESPACE + "---\n" + yaml.safe_dump(_egb_config())
    changed = manifest.replace("team: a", "team: b")
    runs = {
        "first": kubectl("apply", "--server-side", "-f", "-", stdin=manifest),
        "again": kubectl("apply", "--server-side", "-f", "-", stdin=manifest),
        "other-manager": kubectl(
            "apply", "--server-side", "--field-manager=argocd", "-f", "-", stdin=changed
        ),
        "forced": kubectl(
            "apply", "--server-side", "--field-manager=argocd", "--force-conflicts", "-f", "-", stdin=changed
        ),
    }
    observed: dict[str, Any] = {
        name: {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr} for name, r in runs.items()
    }
    _, namespace = raw(kube_api, "GET", "/api/v1/namespaces/ssa-ns")
    observed["labels"] = namespace["metadata"]["labels"]
    observed["managedFields"] = _managed(namespace)
    _record("ssa-kubectl", json.loads(json.dumps(observed)))
    assert observed == SSA_KUBECTL


# -- what the real kube-apiserver v1.36.3 answered (captured; the sandbox must match) ----------

SSA_CONFIGMAP: Any = {
    "no-manager": {
        "code": 422,
        "reason": "Invalid",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            }
        ],
    },
    "create": {
        "code": 201,
        "data": {"a": "1", "b": "2"},
        "metadata.labels": {"app": "a"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            }
        ],
    },
    "second-manager": {
        "code": 200,
        "data": {"a": "1", "b": "2", "c": "3"},
        "metadata.labels": {"app": "a"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            },
            {
                "manager": "bob",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:c": {}}},
                "time": True,
            },
        ],
    },
    "same-value-shared": {
        "code": 200,
        "data": {"a": "1", "b": "2", "c": "3"},
        "metadata.labels": {"app": "a"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            },
            {
                "manager": "bob",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}},
                "time": True,
            },
        ],
    },
    "conflict": {
        "code": 409,
        "reason": "Conflict",
        "message": 'Apply failed with 2 conflicts: conflicts with "alice":\n'
        "- .data.a\n"
        "- .metadata.labels.app",
        "causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"},
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "alice"',
                "field": ".metadata.labels.app",
            },
        ],
    },
    "force": {
        "code": 200,
        "data": {"a": "9", "b": "2", "c": "3"},
        "metadata.labels": {"app": "a"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            },
            {
                "manager": "bob",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}},
                "time": True,
            },
        ],
    },
    "drop-field": {
        "code": 200,
        "data": {"a": "9", "c": "3"},
        "metadata.labels": {"app": "a"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {}, "f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            },
            {
                "manager": "bob",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}},
                "time": True,
            },
        ],
    },
    "update-takes-over": {
        "code": 200,
        "data": {"a": "9", "c": "3"},
        "metadata.labels": {"app": "c"},
        "managedFields": [
            {
                "manager": "alice",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {}},
                "time": True,
            },
            {
                "manager": "bob",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}},
                "time": True,
            },
            {
                "manager": "carol",
                "operation": "Update",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}},
                "time": True,
            },
        ],
    },
    "conflict-with-update": {
        "code": 409,
        "reason": "Conflict",
        "message": 'Apply failed with 1 conflict: conflict with "carol" using v1: .metadata.labels.app',
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "carol" using v1',
                "field": ".metadata.labels.app",
            }
        ],
    },
}
SSA_ROLEBINDING: Any = {
    "create": {
        "code": 201,
        "roleRef.name": "view",
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g1"}],
        "managedFields": [
            {
                "manager": "flux",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:roleRef": {}, "f:subjects": {}},
                "time": True,
            }
        ],
    },
    "same-list-shared": {
        "code": 200,
        "roleRef.name": "view",
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g1"}],
        "managedFields": [
            {
                "manager": "argocd",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:roleRef": {}, "f:subjects": {}},
                "time": False,
            },
            {
                "manager": "flux",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:roleRef": {}, "f:subjects": {}},
                "time": True,
            },
        ],
    },
    "conflict-on-list": {
        "code": 409,
        "reason": "Conflict",
        "message": 'Apply failed with 1 conflict: conflict with "flux": .subjects',
        "causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "flux"', "field": ".subjects"}
        ],
    },
    "force-list": {
        "code": 200,
        "roleRef.name": "view",
        "subjects": [
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g1"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g2"},
        ],
        "managedFields": [
            {
                "manager": "argocd",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:roleRef": {}, "f:subjects": {}},
                "time": True,
            },
            {
                "manager": "flux",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:roleRef": {}},
                "time": True,
            },
        ],
    },
    "role-ref-immutable": {
        "code": 409,
        "reason": "Conflict",
        "message": 'Apply failed with 1 conflict: conflict with "flux": .roleRef',
        "causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "flux"', "field": ".roleRef"}
        ],
    },
}
SSA_EGB: Any = {
    "create": {
        "code": 201,
        "spec.suspend": False,
        "metadata.annotations": None,
        "status.summary": None,
        "managedFields": [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:groups": {}, "f:roleBindings": {}, "f:suspend": {}}},
                "manager": "flux",
                "operation": "Apply",
                "time": True,
            }
        ],
    },
    "status-write": {
        "code": 200,
        "spec.suspend": False,
        "metadata.annotations": None,
        "status.summary": {"bindings": 1, "groups": "1/1", "subjects": 1},
        "managedFields": [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:groups": {}, "f:roleBindings": {}, "f:suspend": {}}},
                "manager": "flux",
                "operation": "Apply",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:status": {
                        ".": {},
                        "f:observedGeneration": {},
                        "f:summary": {".": {}, "f:bindings": {}, "f:groups": {}, "f:subjects": {}},
                    }
                },
                "manager": "entra-rbac",
                "operation": "Update",
                "subresource": "status",
                "time": True,
            },
        ],
    },
    "kopf-annotation": {
        "code": 200,
        "spec.suspend": False,
        "metadata.annotations": {"kopf.zalando.org/last-handled-configuration": "x"},
        "status.summary": {"bindings": 1, "groups": "1/1", "subjects": 1},
        "managedFields": [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:groups": {}, "f:roleBindings": {}, "f:suspend": {}}},
                "manager": "flux",
                "operation": "Apply",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:status": {
                        ".": {},
                        "f:observedGeneration": {},
                        "f:summary": {".": {}, "f:bindings": {}, "f:groups": {}, "f:subjects": {}},
                    }
                },
                "manager": "entra-rbac",
                "operation": "Update",
                "subresource": "status",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:kopf.zalando.org/last-handled-configuration": {}}
                    }
                },
                "manager": "kopf",
                "operation": "Update",
                "time": True,
            },
        ],
    },
    "reapply-changed-spec": {
        "code": 200,
        "spec.suspend": True,
        "metadata.annotations": {"kopf.zalando.org/last-handled-configuration": "x"},
        "status.summary": {"bindings": 1, "groups": "1/1", "subjects": 1},
        "managedFields": [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:groups": {}, "f:roleBindings": {}, "f:suspend": {}}},
                "manager": "flux",
                "operation": "Apply",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:status": {
                        ".": {},
                        "f:observedGeneration": {},
                        "f:summary": {".": {}, "f:bindings": {}, "f:groups": {}, "f:subjects": {}},
                    }
                },
                "manager": "entra-rbac",
                "operation": "Update",
                "subresource": "status",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:kopf.zalando.org/last-handled-configuration": {}}
                    }
                },
                "manager": "kopf",
                "operation": "Update",
                "time": True,
            },
        ],
    },
    "conflict-on-annotation": {
        "code": 409,
        "reason": "Conflict",
        "message": 'Apply failed with 1 conflict: conflict with "kopf" using '
        "entra-rbac.io/v1alpha1: "
        ".metadata.annotations.kopf.zalando.org/last-handled-configuration",
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kopf" using entra-rbac.io/v1alpha1',
                "field": ".metadata.annotations.kopf.zalando.org/last-handled-configuration",
            }
        ],
    },
    "status-in-apply-ignored": {
        "code": 200,
        "spec.suspend": True,
        "metadata.annotations": {"kopf.zalando.org/last-handled-configuration": "x"},
        "status.summary": {"bindings": 1, "groups": "1/1", "subjects": 1},
        "managedFields": [
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:groups": {}, "f:roleBindings": {}, "f:suspend": {}}},
                "manager": "flux",
                "operation": "Apply",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:status": {
                        ".": {},
                        "f:observedGeneration": {},
                        "f:summary": {".": {}, "f:bindings": {}, "f:groups": {}, "f:subjects": {}},
                    }
                },
                "manager": "entra-rbac",
                "operation": "Update",
                "subresource": "status",
                "time": True,
            },
            {
                "apiVersion": "entra-rbac.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:kopf.zalando.org/last-handled-configuration": {}}
                    }
                },
                "manager": "kopf",
                "operation": "Update",
                "time": True,
            },
        ],
    },
}
SSA_KUBECTL: Any = {
    "first": {
        "rc": 0,
        "stdout": "namespace/ssa-ns serverside-applied\n"
        "rolebinding.rbac.authorization.k8s.io/ssa-rb serverside-applied\n"
        "entragroupbinding.entra-rbac.io/ssa-egb serverside-applied\n",
        "stderr": "",
    },
    "again": {
        "rc": 0,
        "stdout": "namespace/ssa-ns serverside-applied\n"
        "rolebinding.rbac.authorization.k8s.io/ssa-rb serverside-applied\n"
        "entragroupbinding.entra-rbac.io/ssa-egb serverside-applied\n",
        "stderr": "",
    },
    "other-manager": {
        "rc": 1,
        "stdout": "rolebinding.rbac.authorization.k8s.io/ssa-rb serverside-applied\n"
        "entragroupbinding.entra-rbac.io/ssa-egb serverside-applied\n",
        "stderr": 'error: Apply failed with 1 conflict: conflict with "kubectl": '
        ".metadata.labels.team\n"
        "Please review the fields above--they currently have other managers. "
        "Here\n"
        "are the ways you can resolve this warning:\n"
        "* If you intend to manage all of these fields, please re-run the "
        "apply\n"
        "  command with the `--force-conflicts` flag.\n"
        "* If you do not intend to manage all of the fields, please edit "
        "your\n"
        "  manifest to remove references to the fields that should keep "
        "their\n"
        "  current managers.\n"
        "* You may co-own fields by updating your manifest to match the "
        "existing\n"
        "  value; in this case, you'll become the manager if the other "
        "manager(s)\n"
        "  stop managing the field (remove it from their configuration).\n"
        "See "
        "https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts\n",
    },
    "forced": {
        "rc": 0,
        "stdout": "namespace/ssa-ns serverside-applied\n"
        "rolebinding.rbac.authorization.k8s.io/ssa-rb serverside-applied\n"
        "entragroupbinding.entra-rbac.io/ssa-egb serverside-applied\n",
        "stderr": "",
    },
    "labels": {"kubernetes.io/metadata.name": "ssa-ns", "team": "b"},
    "managedFields": [
        {
            "manager": "argocd",
            "operation": "Apply",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
            "time": True,
        }
    ],
}
