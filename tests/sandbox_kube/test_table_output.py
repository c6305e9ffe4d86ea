"""Server-side Table output of the EntraGroupBinding printer columns, on both servers (issue 8
item 6): what `kubectl get egb` and `kubectl get egb -o wide` ask for
(`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and what kubectl prints from it.

Column definitions and cells are compared with literals captured from the real kube-apiserver
v1.36.3; only the age (a duration since creation) is normalised, after checking it is one.
One resource has a status with every column filled, the other none (missing values).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import Any

from kubernetes import client

from .helpers import custom, raw
from .test_differential import GROUP_ID, _egb, _record

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
_AGE = re.compile(r"^\d+s$")  # created within the test: seconds only
_SPEC = {"groups": [{"id": GROUP_ID}], "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}]}
_STATUS = {
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "GroupNotFound",
            "message": "group 6f1c2f0e not found in Entra",
            "lastTransitionTime": "2026-11-28T10:00:00Z",
        }
    ],
    "summary": {"groups": "0/1", "bindings": 0, "subjects": 0},
}


def _resources(kube_api: client.ApiClient) -> None:
    api = custom(kube_api)
    api.create_cluster_custom_object(
        "entra-rbac.io", "v1alpha1", "entragroupbindings", _egb("tbl-bare", _SPEC)
    )
    suspended = _egb("tbl-full", {**_SPEC, "suspend": True})
    api.create_cluster_custom_object("entra-rbac.io", "v1alpha1", "entragroupbindings", suspended)
    api.patch_cluster_custom_object_status(
        "entra-rbac.io", "v1alpha1", "entragroupbindings", "tbl-full", {"status": _STATUS}
    )


def _age_normalised(text: str) -> str:
    return re.sub(r"(?m)(?<=\s)\d+s(?=\s|$)", "<age>", text)


def test_table_of_printer_columns(kube_api: client.ApiClient, egb: dict[str, Any]) -> None:
    _resources(kube_api)
    status, table = raw(
        kube_api, "GET", "/apis/entra-rbac.io/v1alpha1/entragroupbindings", headers={"Accept": TABLE}
    )
    assert status == 200, table
    age = [d["name"] for d in table["columnDefinitions"]].index("Age")
    rows = []
    for row in table["rows"]:
        cells = list(row["cells"])
        assert _AGE.match(cells[age]), cells[age]
        cells[age] = "<age>"
        rows.append({"cells": cells, "object": row["object"]["kind"]})
    observed = {
        "kind": table["kind"],
        "apiVersion": table["apiVersion"],
        "columnDefinitions": table["columnDefinitions"],
        "rows": rows,
    }
    _record("table", observed)
    assert observed == TABLE_ANSWER


def test_kubectl_get_and_wide(kube_api: client.ApiClient, kubectl: Kubectl, egb: dict[str, Any]) -> None:
    _resources(kube_api)
    observed = {}
    for name, flags in (("get", ()), ("wide", ("-o", "wide"))):
        result = kubectl("get", "egb", *flags)
        observed[name] = {
            "rc": result.returncode,
            "stdout": _age_normalised(result.stdout),
            "stderr": result.stderr,
        }
    _record("table-kubectl", observed)
    assert observed == KUBECTL_ANSWER


# -- what the real kube-apiserver v1.36.3 answered (captured; the sandbox must match) ----------

_BY_PATH = "Custom resource definition column (in JSONPath format): "
TABLE_ANSWER: Any = {
    "kind": "Table",
    "apiVersion": "meta.k8s.io/v1",
    "columnDefinitions": [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": (
                "Name must be unique within a namespace. Is required when creating resources, although"
                " some resources may allow a client to request the generation of an appropriate name"
                " automatically. Name is primarily intended for creation idempotence and configuration"
                " definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview"
                "/working-with-objects/names#names"
            ),
            "priority": 0,
        },
        {
            "name": "Ready",
            "type": "string",
            "format": "",
            "description": "Whether every binding matches what the resource asks for.",
            "priority": 0,
        },
        {
            "name": "Groups",
            "type": "string",
            "format": "",
            "description": "Entra groups resolved / named in spec.groups.",
            "priority": 0,
        },
        {
            "name": "Bindings",
            "type": "integer",
            "format": "",
            "description": "RoleBindings and ClusterRoleBindings the resource manages.",
            "priority": 0,
        },
        {
            "name": "Subjects",
            "type": "integer",
            "format": "",
            "description": "Distinct subjects (groups, or users in User mode) in those bindings.",
            "priority": 0,
        },
        {
            "name": "Age",
            "type": "date",
            "format": "",
            "description": _BY_PATH + ".metadata.creationTimestamp",
            "priority": 0,
        },
        {
            "name": "Expires",
            "type": "string",
            "format": "",
            "description": "When the next time-bound grant ends (empty when none is active or pending).",
            "priority": 0,
        },
        {
            "name": "Suspended",
            "type": "boolean",
            "format": "",
            "description": _BY_PATH + ".spec.suspend",
            "priority": 1,
        },
        {
            "name": "Message",
            "type": "string",
            "format": "",
            "description": _BY_PATH + '.status.conditions[?(@.type=="Ready")].message',
            "priority": 1,
        },
    ],
    "rows": [
        {
            "cells": ["tbl-bare", None, None, None, None, "<age>", None, False, None],
            "object": "PartialObjectMetadata",
        },
        {
            "cells": [
                "tbl-full",
                "False",
                "0/1",
                0,
                0,
                "<age>",
                None,
                True,
                "group 6f1c2f0e not found in Entra",
            ],
            "object": "PartialObjectMetadata",
        },
    ],
}
KUBECTL_ANSWER: Any = {
    "get": {
        "rc": 0,
        "stdout": (
            "NAME       READY   GROUPS   BINDINGS   SUBJECTS   AGE   EXPIRES\n"
            "tbl-bare                                          <age>    \n"
            "tbl-full   False   0/1      0          0          <age>    \n"
        ),
        "stderr": "",
    },
    "wide": {
        "rc": 0,
        "stdout": (
            "NAME       READY   GROUPS   BINDINGS   SUBJECTS   AGE   EXPIRES   SUSPENDED   MESSAGE\n"
            "tbl-bare                                          <age>              false       \n"
            "tbl-full   False   0/1      0          0          <age>              true        "
            "group 6f1c2f0e not found in Entra\n"
        ),
        "stderr": "",
    },
}
