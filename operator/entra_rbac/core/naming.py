"""Names of managed bindings and label values (docs/design.md, Ownership).

Holds `BindingKey` (the one identity of a binding: kind, namespace, name), pure functions that
turn (resource, role) into a binding name and any text into a valid label value, and the
validators the tests use. Must not depend on anything but constants.

Why the names are collision-free: a binding name is `egb:<resource>:<kind>:<role>` where kind is
`clusterrole` or `role`. A resource name (DNS-1123 subdomain) never holds ':', so the text up to
the second ':' is the resource and the text up to the third ':' is the kind; the rest is the role,
which may itself hold ':' (`system:aggregate-to-edit`) without ambiguity. When that name would be
longer than 253 characters, the kind token carries a hash of the full name (`clusterrole-<hash>`),
which no unhashed name has, so a shortened name never equals an unshortened one, and two
shortened names are equal only if their hashes are.

A binding too large for one object is written as shards (docs/design.md, Subjects the operator
emits: bindings too large to write): shard 1 keeps the binding's name, shard k >= 2 is named by
`shard_name`, the kind token ending in `.<k>` (`egb:payments:clusterrole.2:edit`). No unsharded
name has a '.' in its kind token, so a shard's name is never another binding's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple, cast, get_args

from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL

RoleKind = Literal["ClusterRole", "Role"]
BindingKind = Literal["ClusterRoleBinding", "RoleBinding"]
_BINDING_KINDS: Final = get_args(BindingKind)


class BindingKey(NamedTuple):
    """Which binding: kind, namespace ("" for a ClusterRoleBinding) and name.

    A tuple, so keys sort cluster-wide first (`ClusterRoleBinding` < `RoleBinding`), then by
    namespace and name: the order of plans, logs and status. Build it with `of` or
    `from_manifest`, which spell the namespace the one way.
    """

    kind: BindingKind
    namespace: str
    name: str

    @classmethod
    def of(cls, kind: BindingKind, namespace: str | None, name: str) -> BindingKey:
        return cls(kind, namespace or "", name)

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any]) -> BindingKey:
        """The key of an API object, without parsing the rest of it (list items may lack `kind`)."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        kind = obj.get("kind") or ("RoleBinding" if namespace else "ClusterRoleBinding")
        if kind not in _BINDING_KINDS:
            raise ValueError(f"{kind} {meta.get('name')!r} is not a RoleBinding or ClusterRoleBinding")
        return cls(cast(BindingKind, kind), namespace, str(meta.get("name", "")))

    @property
    def namespace_or_none(self) -> str | None:
        """The namespace as the API paths take it: None for a ClusterRoleBinding."""
        return self.namespace or None


PREFIX: Final = "egb"
MAX_NAME_LENGTH: Final = 253
MAX_LABEL_VALUE_LENGTH: Final = 63
NAME_HASH_LENGTH: Final = 16  # hex digits: 64 bits
LABEL_HASH_LENGTH: Final = 10
# A shortened name keeps this much of the resource name, leaving the rest for the role.
SHORT_RESOURCE_LENGTH: Final = 63

_KIND_TOKENS: Final[dict[str, str]] = {"ClusterRole": "clusterrole", "Role": "role"}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_INVALID_CHARS = re.compile(r"[^-A-Za-z0-9_.]")


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of text within max_bytes of UTF-8 (never splitting a character)."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", errors="ignore")


def binding_name(resource: str, role_kind: RoleKind, role: str) -> str:
    """The name of the binding that gives `resource`'s subjects `role` (same for cluster and namespace).

    Readable when it fits (`egb:payments-developers:clusterrole:edit`); otherwise shortened with a
    hash in the kind token. Deterministic; at most 253 bytes; a valid RBAC object name.
    """
    kind = _KIND_TOKENS[role_kind]
    full = f"{PREFIX}:{resource}:{kind}:{role}"
    if _utf8_len(full) <= MAX_NAME_LENGTH:
        return full
    head = f"{PREFIX}:{_cut(resource, SHORT_RESOURCE_LENGTH)}:{kind}-{_digest(full, NAME_HASH_LENGTH)}:"
    return head + _cut(role, MAX_NAME_LENGTH - _utf8_len(head))


def shard_name(base: str, index: int) -> str:
    """The name of shard `index` (1-based) of the binding named `base` (a `binding_name`).

    Shard 1 is `base` itself, so a binding that never needs sharding keeps its name. Shard k >= 2
    inserts `.<k>` after the kind token; should that pass 253 bytes, the kind token carries a hash
    of that full text instead (as `binding_name` shortens), keeping the `.<k>`."""
    if index == 1:
        return base
    prefix, resource, kind, role = base.split(":", 3)
    full = f"{prefix}:{resource}:{kind}.{index}:{role}"
    if _utf8_len(full) <= MAX_NAME_LENGTH:
        return full
    token = kind.split("-", 1)[0]
    head = (
        f"{PREFIX}:{_cut(resource, SHORT_RESOURCE_LENGTH)}:{token}-{_digest(full, NAME_HASH_LENGTH)}.{index}:"
    )
    return head + _cut(role, MAX_NAME_LENGTH - _utf8_len(head))


def shard_index(name: str, base: str) -> int | None:
    """Which shard of the binding named `base` the name `name` is (1 for `base` itself), or None
    when it is none of them."""
    if name == base:
        return 1
    parts = name.split(":", 3)
    if len(parts) != 4 or "." not in parts[2]:
        return None
    number = parts[2].rsplit(".", 1)[1]
    if not number.isdigit() or number.startswith("0"):
        return None
    index = int(number)
    return index if index >= 2 and shard_name(base, index) == name else None


def shard_number(name: str) -> int:
    """The shard a managed binding's name says it is: k for a `shard_name` of shard k, 1 for any
    other name. Read off the kind token alone, so only for a name already known to be one of a
    resource's (`shard_index` checks a name against its base)."""
    parts = name.split(":", 3)
    number = parts[2].rsplit(".", 1)[1] if len(parts) == 4 and "." in parts[2] else ""
    return int(number) if number.isdigit() else 1


def is_valid_binding_name(name: str) -> bool:
    """RBAC object names are path segment names (no '/', no '%', not '.' or '..'), here ≤ 253."""
    return (
        0 < _utf8_len(name) <= MAX_NAME_LENGTH
        and "/" not in name
        and "%" not in name
        and name not in (".", "..")
    )


def is_valid_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE.match(value) is not None


def label_value(text: str) -> str:
    """`text` itself when it is a valid label value; otherwise a valid, deterministic stand-in.

    The stand-in keeps the readable characters and ends with a hash of the original, so two
    different texts that need one do not share it.
    """
    if is_valid_label_value(text):
        return text
    readable = _LABEL_INVALID_CHARS.sub("-", text)
    readable = readable[: MAX_LABEL_VALUE_LENGTH - LABEL_HASH_LENGTH - 1].strip("-_.")
    digest = _digest(text, LABEL_HASH_LENGTH)
    return f"{readable}-{digest}" if readable else digest


def owner_labels(owner_uid: str) -> dict[str, str]:
    """The labels every managed binding of one resource carries."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: label_value(owner_uid)}


def owner_selector(owner_uid: str) -> str:
    """The label selector that lists every binding managed for one resource (for list calls)."""
    return ",".join(f"{key}={value}" for key, value in sorted(owner_labels(owner_uid).items()))


def managed_selector() -> str:
    """The label selector that lists every binding this operator manages (for watches and indices)."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
