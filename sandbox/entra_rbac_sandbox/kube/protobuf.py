"""Decoding the Kubernetes protobuf request bodies that kubectl sends for built-in kinds.

kubectl (client-go) sends typed objects (`kubectl create configmap`, `kubectl auth can-i`'s
SelfSubjectAccessReview, ...) as `application/vnd.kubernetes.protobuf`: the bytes `k8s\\0`, then a
runtime.Unknown envelope (typeMeta, raw) whose `raw` is the object's generated message. This
module turns such a body into the JSON-shaped dict the rest of the server works with.

Holds a protobuf wire-format reader and the field tables (field number -> JSON name and type,
from the generated.proto files of k8s.io/api and k8s.io/apimachinery) of the kinds this server
serves. Written here because no maintained Python package ships the Kubernetes protobuf
messages. Responses are always JSON, which every client accepts. Holds no HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"

# message -> {field number: (json name, type, repeated)}; a type is a scalar name, "map:<value
# type>" for proto2 maps (repeated key=1/value=2 entries) or another message's name.
Field = tuple[str, str, bool]
_S, _R = False, True
SCHEMAS: dict[str, dict[int, Field]] = {
    "TypeMeta": {1: ("apiVersion", "string", _S), 2: ("kind", "string", _S)},
    "ObjectMeta": {
        1: ("name", "string", _S),
        2: ("generateName", "string", _S),
        3: ("namespace", "string", _S),
        5: ("uid", "string", _S),
        6: ("resourceVersion", "string", _S),
        7: ("generation", "int", _S),
        8: ("creationTimestamp", "Time", _S),
        9: ("deletionTimestamp", "Time", _S),
        10: ("deletionGracePeriodSeconds", "int", _S),
        11: ("labels", "map:string", _S),
        12: ("annotations", "map:string", _S),
        13: ("ownerReferences", "OwnerReference", _R),
        14: ("finalizers", "string", _R),
    },
    "OwnerReference": {
        1: ("kind", "string", _S),
        3: ("name", "string", _S),
        4: ("uid", "string", _S),
        5: ("apiVersion", "string", _S),
        6: ("controller", "bool", _S),
        7: ("blockOwnerDeletion", "bool", _S),
    },
    "Time": {1: ("seconds", "int", _S), 2: ("nanos", "int", _S)},
    "LabelSelector": {
        1: ("matchLabels", "map:string", _S),
        2: ("matchExpressions", "LabelSelectorRequirement", _R),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string", _S),
        2: ("operator", "string", _S),
        3: ("values", "string", _R),
    },
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int", _S),
        2: ("preconditions", "Preconditions", _S),
        3: ("orphanDependents", "bool", _S),
        4: ("propagationPolicy", "string", _S),
        5: ("dryRun", "string", _R),
    },
    "Preconditions": {1: ("uid", "string", _S), 2: ("resourceVersion", "string", _S)},
    "ObjectReference": {
        1: ("kind", "string", _S),
        2: ("namespace", "string", _S),
        3: ("name", "string", _S),
        4: ("uid", "string", _S),
        5: ("apiVersion", "string", _S),
        6: ("resourceVersion", "string", _S),
        7: ("fieldPath", "string", _S),
    },
    "LocalObjectReference": {1: ("name", "string", _S)},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("data", "map:string", _S),
        3: ("binaryData", "map:bytes", _S),
        4: ("immutable", "bool", _S),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("data", "map:bytes", _S),
        3: ("type", "string", _S),
        4: ("stringData", "map:string", _S),
        5: ("immutable", "bool", _S),
    },
    "Namespace": {1: ("metadata", "ObjectMeta", _S), 2: ("spec", "NamespaceSpec", _S)},
    "NamespaceSpec": {1: ("finalizers", "string", _R)},
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("secrets", "ObjectReference", _R),
        3: ("imagePullSecrets", "LocalObjectReference", _R),
        4: ("automountServiceAccountToken", "bool", _S),
    },
    "Role": {1: ("metadata", "ObjectMeta", _S), 2: ("rules", "PolicyRule", _R)},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("rules", "PolicyRule", _R),
        3: ("aggregationRule", "AggregationRule", _S),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector", _R)},
    "PolicyRule": {
        1: ("verbs", "string", _R),
        2: ("apiGroups", "string", _R),
        3: ("resources", "string", _R),
        4: ("resourceNames", "string", _R),
        5: ("nonResourceURLs", "string", _R),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("subjects", "Subject", _R),
        3: ("roleRef", "RoleRef", _S),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("subjects", "Subject", _R),
        3: ("roleRef", "RoleRef", _S),
    },
    "Subject": {
        1: ("kind", "string", _S),
        2: ("apiGroup", "string", _S),
        3: ("name", "string", _S),
        4: ("namespace", "string", _S),
    },
    "RoleRef": {1: ("apiGroup", "string", _S), 2: ("kind", "string", _S), 3: ("name", "string", _S)},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("spec", "SelfSubjectAccessReviewSpec", _S),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", _S),
        2: ("nonResourceAttributes", "NonResourceAttributes", _S),
    },
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta", _S), 2: ("spec", "SubjectAccessReviewSpec", _S)},
    "LocalSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("spec", "SubjectAccessReviewSpec", _S),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", _S),
        2: ("nonResourceAttributes", "NonResourceAttributes", _S),
        3: ("user", "string", _S),
        4: ("groups", "string", _R),
        6: ("uid", "string", _S),
    },
    "ResourceAttributes": {
        1: ("namespace", "string", _S),
        2: ("verb", "string", _S),
        3: ("group", "string", _S),
        4: ("version", "string", _S),
        5: ("resource", "string", _S),
        6: ("subresource", "string", _S),
        7: ("name", "string", _S),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta", _S),
        2: ("spec", "SelfSubjectRulesReviewSpec", _S),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", _S)},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", _S)},
    "NonResourceAttributes": {1: ("path", "string", _S), 2: ("verb", "string", _S)},
}


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf message this server can read."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for each field on the wire."""
    found: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        value: Any
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        found.append((number, wire, value))
    return found


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode("utf-8")
    if kind == "bytes":
        import base64

        return base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtobufError(f"unknown scalar type {kind}")


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    """Decode one message of `SCHEMAS` into its JSON form (unknown fields are skipped)."""
    schema = SCHEMAS[name]
    result: dict[str, Any] = {}
    for number, _, value in _fields(data):
        if number not in schema:
            continue
        json_name, kind, repeated = schema[number]
        if kind.startswith("map:"):
            entry = {n: v for n, _, v in _fields(value)}
            result.setdefault(json_name, {})[_scalar("string", entry.get(1, b""))] = _scalar(
                kind[4:], entry.get(2, b"")
            )
            continue
        if kind == "Time":
            decoded: Any = _time(value)
        elif kind in SCHEMAS:
            decoded = decode_message(kind, value)
        else:
            decoded = _scalar(kind, value)
        if repeated:
            result.setdefault(json_name, []).append(decoded)
        elif decoded not in ("", False, 0):  # Go's JSON omits these (omitempty); so do we
            result[json_name] = decoded
    return result


def _time(data: bytes) -> str:
    seconds = decode_message("Time", data).get("seconds", 0)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(body: bytes) -> dict[str, Any]:
    """A `k8s\\0`-prefixed protobuf body as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf prefix")
    envelope = {number: value for number, _, value in _fields(body[len(MAGIC) :])}
    type_meta = decode_message("TypeMeta", envelope.get(1, b""))
    kind = type_meta.get("kind", "")
    if kind not in SCHEMAS:
        raise ProtobufError(f"kind {kind!r} cannot be sent as protobuf to this server; send JSON")
    obj = decode_message(kind, envelope.get(2, b""))
    if type_meta.get("apiVersion"):
        obj["apiVersion"] = type_meta["apiVersion"]
    obj["kind"] = kind
    return obj
