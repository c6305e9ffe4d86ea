"""The fields each built-in kind has, so unknown ones are dropped or refused as on a real server.

kube-apiserver decodes built-in objects into Go structs: an unknown field is silently dropped,
or refused with 400 under `fieldValidation=Strict` (kubectl's default). Holds the field tree of
the kinds this server serves (from k8s.io/api types) and prune_unknown(). A `None` leaf accepts
any value (maps of strings, free-form parts); a one-element list means "a list of these".
Holds no HTTP and no storage.
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, Any]


def _any(names: str) -> Tree:
    """Fields (space-separated names) that accept any value."""
    return dict.fromkeys(names.split())


_METADATA: Tree = {
    **_any("name generateName namespace selfLink uid resourceVersion generation creationTimestamp"),
    **_any("deletionTimestamp deletionGracePeriodSeconds labels annotations finalizers managedFields"),
    "ownerReferences": [_any("apiVersion kind name uid controller blockOwnerDeletion")],
}
_OBJECT_REFERENCE = _any("kind namespace name uid apiVersion resourceVersion fieldPath")
_RULE = _any("verbs apiGroups resources resourceNames nonResourceURLs")
_SUBJECT = _any("kind apiGroup name namespace")
_ROLE_REF = _any("apiGroup kind name")
_SELECTOR: Tree = {"matchLabels": None, "matchExpressions": [_any("key operator values")]}
_SOURCE = _any("component host")


def _kind(fields: str = "", **nested: Any) -> Tree:
    return {"apiVersion": None, "kind": None, "metadata": _METADATA, **_any(fields), **nested}


KNOWN: dict[tuple[str, str], Tree] = {
    ("", "ConfigMap"): _kind("data binaryData immutable"),
    ("", "Secret"): _kind("data stringData type immutable"),
    ("", "Namespace"): _kind(spec=_any("finalizers"), status=_any("phase conditions")),
    ("", "ServiceAccount"): _kind(
        "automountServiceAccountToken", secrets=[_OBJECT_REFERENCE], imagePullSecrets=[_any("name")]
    ),
    ("", "Event"): _kind(
        "reason message firstTimestamp lastTimestamp count type eventTime series action "
        "reportingComponent reportingInstance",
        involvedObject=_OBJECT_REFERENCE,
        related=_OBJECT_REFERENCE,
        source=_SOURCE,
    ),
    ("events.k8s.io", "Event"): _kind(
        "eventTime series reportingController reportingInstance action reason note type "
        "deprecatedFirstTimestamp deprecatedLastTimestamp deprecatedCount",
        regarding=_OBJECT_REFERENCE,
        related=_OBJECT_REFERENCE,
        deprecatedSource=_SOURCE,
    ),
    ("rbac.authorization.k8s.io", "Role"): _kind(rules=[_RULE]),
    ("rbac.authorization.k8s.io", "ClusterRole"): _kind(
        rules=[_RULE], aggregationRule={"clusterRoleSelectors": [_SELECTOR]}
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): _kind(subjects=[_SUBJECT], roleRef=_ROLE_REF),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _kind(subjects=[_SUBJECT], roleRef=_ROLE_REF),
    # The CRD's spec is validated by its own rules (validation.py); only its top level here.
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _kind("spec status"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _kind("spec status"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): _kind("spec"),
}


def _prune(tree: Any, value: Any, path: str, dropped: list[str]) -> None:
    if tree is None:
        return
    if isinstance(tree, list):
        if isinstance(value, list):
            for index, item in enumerate(value):
                _prune(tree[0], item, f"{path}[{index}]", dropped)
        return
    if not isinstance(value, dict):
        return
    for key in list(value):
        child = f"{path}.{key}" if path else key
        if key not in tree:
            dropped.append(child)
            del value[key]
        else:
            _prune(tree[key], value[key], child, dropped)


def prune_unknown(group: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Drop the fields `kind` does not have from `obj` (in place); their paths, e.g. `spec.x`."""
    tree = KNOWN.get((group, kind))
    dropped: list[str] = []
    if tree is not None:
        _prune(tree, obj, "", dropped)
    return dropped
