"""The bindings a resource asks for (docs/design.md: The API; Ownership; Triggers), computed from plain
inputs.

Holds the `Binding` value (with `to_manifest()`), the inputs that describe the cluster
(`Owner`, `NamespaceInfo`, `AllowedRoles`, `RoleInventory`) and `compute_desired`, the one entry
point. Pure: the reconciler passes the namespaces, roles and subjects it read; nothing here reads
the cluster, the directory or the clock. Problems are returned as values, never raised, so one
bad namespace or role never blocks the others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import Any, Protocol

from entra_rbac.constants import (
    API_VERSION,
    DEFAULT_RESERVED_NAMESPACES,
    GROUPS_ANNOTATION,
    KIND,
    OWNER_NAME_ANNOTATION,
    RBAC_API_VERSION,
    RBAC_GROUP,
)
from entra_rbac.core.json_size import compact_size, mapping_bound, string_bound
from entra_rbac.core.models import EntraGroupBindingSpec, RoleBindingSpec
from entra_rbac.core.naming import (
    BindingKey,
    BindingKind,
    RoleKind,
    binding_name,
    owner_labels,
    shard_index,
    shard_name,
)
from entra_rbac.core.problems import Problem, Reason, sort_problems
from entra_rbac.core.selectors import selector_matches
from entra_rbac.core.shards import Sharding, split_subjects, stays_whole, subjects_bound
from entra_rbac.core.subjects import Subject, SubjectSet, render_subjects
from entra_rbac.core.windows import grants_of

# A shard's name is at most a few bytes longer than its binding's.
_SHARD_NAME_SPARE = 32


@dataclass(frozen=True)
class Owner:
    """The EntraGroupBinding the bindings belong to."""

    name: str
    uid: str
    generation: int | None = None

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any]) -> Owner:
        """From the resource's body (a kopf `body` or an API object)."""
        meta = obj.get("metadata") or {}
        return cls(name=str(meta["name"]), uid=str(meta["uid"]), generation=meta.get("generation"))

    def reference(self) -> dict[str, Any]:
        """A controller ownerReference: the garbage collector removes the bindings with the owner."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace as observed: its labels, and whether it is being deleted (phase Terminating)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    terminating: bool = False

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any]) -> NamespaceInfo:
        """From a Namespace object: terminating once deleted (phase Terminating or a deletionTimestamp)."""
        meta = obj.get("metadata") or {}
        phase = (obj.get("status") or {}).get("phase")
        return cls(
            name=str(meta["name"]),
            labels=dict(meta.get("labels") or {}),
            terminating=phase == "Terminating" or bool(meta.get("deletionTimestamp")),
        )


@dataclass(frozen=True)
class AllowedRoles:
    """The roles the operator may bind (its `bind` allowlist); None or a `*` entry means any name.

    Built from the settings as `AllowedRoles(frozenset(s.allowed_cluster_roles), frozenset(s.allowed_roles))`.
    """

    cluster_roles: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    def allows(self, kind: RoleKind, name: str) -> bool:
        allowed = self.cluster_roles if kind == "ClusterRole" else self.roles
        return allowed is None or "*" in allowed or name in allowed


@dataclass(frozen=True)
class RoleInventory:
    """The roles that exist: ClusterRole names, and Role names by namespace."""

    cluster_roles: frozenset[str] = frozenset()
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has(self, kind: RoleKind, name: str, namespace: str | None) -> bool:
        if kind == "ClusterRole":
            return name in self.cluster_roles
        return name in self.roles.get(namespace or "", frozenset())


@dataclass(frozen=True, order=True)
class RoleRef:
    kind: str
    name: str

    def to_manifest(self) -> dict[str, str]:
        return {"apiGroup": RBAC_GROUP, "kind": self.kind, "name": self.name}

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


# `to_manifest([])` without its strings and mappings: the keys, the punctuation and the constant
# apiVersion and roleRef apiGroup; a namespace adds its key and comma.
_MANIFEST_FRAME = (
    len('{"apiVersion":,"kind":,"metadata":{"name":,"labels":,"annotations":,"ownerReferences":[]},')
    + len('"roleRef":{"apiGroup":,"kind":,"name":},"subjects":[]}')
    + string_bound(RBAC_API_VERSION)
    + string_bound(RBAC_GROUP)
)
_NAMESPACE_FRAME = len(',"namespace":')


@dataclass(frozen=True)
class Binding:
    """One RoleBinding (namespace set) or ClusterRoleBinding (namespace None) to write."""

    kind: BindingKind
    namespace: str | None
    name: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_reference: Mapping[str, Any]

    @property
    def key(self) -> BindingKey:
        return BindingKey.of(self.kind, self.namespace, self.name)

    def unsplit_bound(self, counted: dict[int, int] | None = None) -> int:
        """At least the compact JSON length of `to_manifest([])` (exact for printable-ASCII
        strings), counted from the fields without building or encoding it (`core.json_size`).
        `counted`: the bounds of mappings already counted, by `id` (a resource's bindings share
        their labels, annotations and owner reference: each object is counted once)."""
        bounds = {} if counted is None else counted
        size = _MANIFEST_FRAME + string_bound(self.kind) + string_bound(self.name)
        for mapping in (self.labels, self.annotations, self.owner_reference):
            bound = bounds.get(id(mapping))
            if bound is None:
                bound = bounds[id(mapping)] = mapping_bound(mapping)
            size += bound
        if self.namespace is not None:
            size += _NAMESPACE_FRAME + string_bound(self.namespace)
        return size + string_bound(self.role_ref.kind) + string_bound(self.role_ref.name)

    def to_manifest(self, subjects: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The object to write. `subjects`: this binding's subjects already rendered, shared with
        the resource's other bindings (`core.plan` renders each distinct tuple once)."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "ownerReferences": [dict(self.owner_reference)],
        }
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        return {
            "apiVersion": RBAC_API_VERSION,
            "kind": self.kind,
            "metadata": metadata,
            "roleRef": self.role_ref.to_manifest(),
            "subjects": subjects if subjects is not None else render_subjects(self.subjects),
        }


@dataclass(frozen=True, order=True)
class Target:
    """One grant at one place (namespace None: cluster-wide), whether or not subjects remain."""

    role_kind: RoleKind
    role: str
    namespace: str | None

    def key(self, owner: Owner) -> BindingKey:
        kind: BindingKind = "ClusterRoleBinding" if self.namespace is None else "RoleBinding"
        return BindingKey.of(kind, self.namespace, binding_name(owner.name, self.role_kind, self.role))


@dataclass(frozen=True)
class DesiredState:
    """Everything `make_plan` needs: the bindings (sorted by key), the problems, and the
    namespaces whose bindings must be left exactly as they are (terminating ones).

    `targets` are every grant the spec makes at every place it selects (allowed roles, live
    namespaces), also when no subject is left and so no binding is desired: the roles to check,
    and the names at which this resource's bindings stand.
    """

    owner: Owner
    bindings: tuple[Binding, ...]
    problems: tuple[Problem, ...]
    subjects: tuple[Subject, ...]
    group_ids: tuple[str, ...]
    frozen_namespaces: frozenset[str] = frozenset()
    targets: tuple[Target, ...] = ()
    max_shards: int = 1

    def target_keys(self, shards: int | None = None) -> TargetKeys:
        """The names and namespaces at which this resource's bindings stand (docs/design.md,
        Ownership), each target's shards 2..`shards` included (at most `max_shards`; all of them
        when None): a binding carrying its marks anywhere else is not counted as its own."""
        upto = self.max_shards if shards is None else min(shards, self.max_shards)
        return TargetKeys.of((t.key(self.owner) for t in self.targets), upto)


@dataclass(frozen=True)
class TargetKeys(Collection[BindingKey]):
    """The keys of the targets and of their shards 2..max_shards, answered without listing every
    shard key: shard names depend on the binding name only, not on the namespace."""

    bases: frozenset[BindingKey]
    shard_bases: Mapping[str, str]  # shard name -> the binding name it is a shard of

    @classmethod
    def of(cls, keys: Iterable[BindingKey], max_shards: int) -> TargetKeys:
        bases = frozenset(keys)
        names = {key.name for key in bases}
        shards = {shard_name(name, k): name for name in names for k in range(2, max_shards + 1)}
        return cls(bases, shards)

    def __contains__(self, key: object) -> bool:
        if key in self.bases:
            return True
        if not isinstance(key, BindingKey) or key.name not in self.shard_bases:
            return False
        return key._replace(name=self.shard_bases[key.name]) in self.bases

    def __iter__(self) -> Iterator[BindingKey]:
        return iter(sorted(self.bases))

    def __len__(self) -> int:
        return len(self.bases)


def build_binding(
    owner: Owner,
    role_kind: RoleKind,
    role: str,
    namespace: str | None,
    subject_set: SubjectSet,
    *,
    presorted: bool = False,
    marks: _Marks | None = None,
) -> Binding:
    """The binding granting `role` to every subject of `subject_set`, cluster-wide when namespace
    is None. `presorted`: the subjects are already sorted and unique (`compute_desired` sorts them
    once for all of a resource's bindings instead of checking thousands again for each).
    `marks`: the labels, annotations and owner reference, made once for all of a resource's
    bindings (read-only: `to_manifest` copies them)."""
    labels, annotations, reference = marks or _marks_of(owner, subject_set)
    return Binding(
        kind="ClusterRoleBinding" if namespace is None else "RoleBinding",
        namespace=namespace,
        name=binding_name(owner.name, role_kind, role),
        role_ref=RoleRef(role_kind, role),
        subjects=subject_set.subjects if presorted else _sorted_unique(subject_set.subjects),
        labels=labels,
        annotations=annotations,
        owner_reference=reference,
    )


_Marks = tuple[Mapping[str, str], Mapping[str, str], Mapping[str, Any]]


def _marks_of(owner: Owner, subject_set: SubjectSet) -> _Marks:
    annotations = {OWNER_NAME_ANNOTATION: owner.name, GROUPS_ANNOTATION: ",".join(subject_set.group_ids)}
    return owner_labels(owner.uid), annotations, owner.reference()


def compute_desired(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subject_set: SubjectSet,
    namespaces: Iterable[NamespaceInfo],
    *,
    reserved_namespaces: Collection[str] = DEFAULT_RESERVED_NAMESPACES,
    allowed_roles: AllowedRoles | None = None,
    existing_roles: RoleInventory | None = None,
    now: datetime | None = None,
    sharding: Sharding | None = None,
    shards_now: int = 1,
) -> DesiredState:
    """The exact bindings `spec` asks for, given the subjects and the cluster's namespaces.

    - A role outside `allowed_roles` is reported (RoleNotAllowed) and never bound.
    - With `existing_roles`, a missing role is reported (RoleNotFound) but still bound: Kubernetes
      accepts the reference, it grants nothing until the role exists, and access follows at once.
    - Explicit namespaces that do not exist are reported (NamespaceNotFound); the others proceed.
    - Selectors never match `reserved_namespaces` (they can still be named explicitly).
    - Terminating namespaces get no binding, and their existing ones are left alone (frozen).
    - No subjects: no bindings (an empty binding grants nothing; deleting it is clearer).
    - With `now`, a grant outside its time window (docs/design.md, Time-bound grants) is left
      out entirely: no binding, no target, no role check. Without it, windows are not looked at.
    - With `sharding`, a binding whose subjects pass its byte limit is split into shards of the
      same role at the same place (`core.shards`): shard 1 at the binding's name, shard k at
      `shard_name(name, k)`. Without it, one binding holds every subject. `shards_now`: how
      many shards the resource's bindings are written as now (`shards_in_use`), from which the
      count moves only past the hysteresis (`core.shards.split_subjects`).
    """
    allowed = allowed_roles or AllowedRoles()
    by_name = {ns.name: ns for ns in namespaces}
    frozen = frozenset(name for name, ns in by_name.items() if ns.terminating)
    problems = list(subject_set.problems)
    targets: list[Target] = []
    active = {g.path: g.active(now) for g in grants_of(spec)} if now is not None else {}

    for index, crb in enumerate(spec.cluster_role_bindings):
        if now is not None and not active[f"spec.clusterRoleBindings[{index}]"]:
            continue
        path = f"spec.clusterRoleBindings[{index}].clusterRole"
        problem = _role_problem(allowed, existing_roles, "ClusterRole", crb.cluster_role, None, path)
        if problem is not None:
            problems.append(problem)
        if problem is None or problem.reason is Reason.ROLE_NOT_FOUND:
            targets.append(Target("ClusterRole", crb.cluster_role, None))

    for index, rb in enumerate(spec.role_bindings):
        path = f"spec.roleBindings[{index}]"
        if now is not None and not active[path]:
            continue
        if not allowed.allows(rb.role_kind, rb.role_name):
            problems.append(not_allowed(rb.role_kind, rb.role_name, f"{path}.{_role_field(rb)}"))
            continue
        chosen, missing = _namespaces_of(rb, by_name, reserved_namespaces)
        problems.extend(
            Problem(
                Reason.NAMESPACE_NOT_FOUND,
                f"namespace {name!r} does not exist; create it or remove it from the list",
                f"{path}.namespaces[{position}]",
            )
            for position, name in missing
        )
        for namespace in sorted(chosen - frozen):
            problem = _role_problem(
                allowed, existing_roles, rb.role_kind, rb.role_name, namespace, f"{path}.{_role_field(rb)}"
            )
            if problem is not None:
                problems.append(problem)
            targets.append(Target(rb.role_kind, rb.role_name, namespace))

    # Sorted once here for every binding of the resource (thousands in user mode).
    subjects = tuple(sorted(set(subject_set.subjects)))
    sorted_set = SubjectSet(subjects, subject_set.group_ids)
    bindings: dict[BindingKey, Binding] = {}
    if subjects:
        marks = _marks_of(owner, sorted_set)
        whole = [
            build_binding(owner, t.role_kind, t.role, t.namespace, sorted_set, presorted=True, marks=marks)
            for t in targets
        ]
        for binding in _sharded(whole, subjects, sharding, shards_now):
            bindings[binding.key] = binding
    return DesiredState(
        owner=owner,
        bindings=tuple(bindings[key] for key in sorted(bindings)),
        problems=sort_problems(problems),
        subjects=subjects,
        group_ids=subject_set.group_ids,
        frozen_namespaces=frozen,
        targets=tuple(sorted(set(targets), key=_target_order)),
        max_shards=sharding.max_shards if sharding is not None else 1,
    )


def _sharded(
    whole: list[Binding], subjects: tuple[Subject, ...], sharding: Sharding | None, shards_now: int
) -> Iterator[Binding]:
    """Each binding of `whole` (all holding `subjects`) as its non-empty shards. The split is made
    once for the resource, with the largest binding's metadata counted in the budget, so every
    binding's shards share their subject tuples (and a member is in the same shard everywhere)."""
    if sharding is None or not whole or _provably_whole(whole, subjects, sharding, shards_now):
        yield from whole
        return
    # A shard's name is at most a few bytes longer than the binding's: 32 bytes spare for them.
    overhead = max(compact_size(b.to_manifest([])) for b in whole) + _SHARD_NAME_SPARE
    parts = split_subjects(subjects, sharding.max_bytes - overhead, sharding.max_shards, shards_now)
    if len(parts) == 1:
        yield from whole
        return
    for binding in whole:
        for index, part in enumerate(parts, start=1):
            if part:
                yield replace(binding, name=shard_name(binding.name, index), subjects=part)


def _provably_whole(
    whole: list[Binding], subjects: tuple[Subject, ...], sharding: Sharding, shards_now: int
) -> bool:
    """Whether `split_subjects` is sure to keep `subjects` in one binding, judged from upper
    bounds of the sizes (`Binding.unsplit_bound`, `subjects_bound`): a group-mode binding of a few
    hundred bytes against a limit of a MiB is never encoded to learn that it fits. A bound counts
    high, never low, so a yes here is the exact count's yes; a no sends the caller to the exact
    count (docs/design.md, Subjects the operator emits: bindings too large to write)."""
    bounds: dict[int, int] = {}
    overhead = max(b.unsplit_bound(bounds) for b in whole) + _SHARD_NAME_SPARE
    budget = sharding.max_bytes - overhead
    total = subjects_bound(subjects, max(budget, 0))
    return stays_whole(total, budget, sharding.max_shards, shards_now)


class _Written(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def role_ref(self) -> RoleRef: ...


def shards_in_use(owner_name: str, bindings: Iterable[_Written]) -> int:
    """How many shards `bindings` (the resource's own, at its targets) are written as: the highest
    shard index among them, 1 when none is a shard (or there are none)."""
    indices = (
        shard_index(b.name, binding_name(owner_name, _role_kind(b.role_ref.kind), b.role_ref.name))
        for b in bindings
        if b.role_ref.kind in ("ClusterRole", "Role")
    )
    return max((index for index in indices if index is not None), default=1)


def _role_kind(kind: str) -> RoleKind:
    return "ClusterRole" if kind == "ClusterRole" else "Role"


def _target_order(target: Target) -> tuple[str, str, str]:
    return (target.namespace or "", target.role_kind, target.role)


def _sorted_unique(subjects: tuple[Subject, ...]) -> tuple[Subject, ...]:
    if all(a < b for a, b in pairwise(subjects)):
        return subjects
    return tuple(sorted(set(subjects)))


def namespace_selected(
    rb: RoleBindingSpec, name: str, labels: Mapping[str, str], reserved: Collection[str] = ()
) -> bool:
    """The namespace-selection rule, the one place it is stated: a namespace is chosen when it
    is named explicitly, or when the selector matches its labels and it is not reserved.

    The triggers ask it too, to find the resources a namespace event concerns.
    """
    if name in rb.namespaces:
        return True
    return (
        rb.namespace_selector is not None
        and name not in reserved
        and selector_matches(rb.namespace_selector, labels)
    )


def _namespaces_of(
    rb: RoleBindingSpec, by_name: Mapping[str, NamespaceInfo], reserved: Collection[str]
) -> tuple[set[str], list[tuple[int, str]]]:
    """(namespaces chosen, (position, name) of explicit names that do not exist)."""
    chosen = {name for name, ns in by_name.items() if namespace_selected(rb, name, ns.labels, reserved)}
    missing = [(position, name) for position, name in enumerate(rb.namespaces) if name not in by_name]
    return chosen, missing


def _role_field(rb: RoleBindingSpec) -> str:
    return "clusterRole" if rb.cluster_role is not None else "role"


def not_allowed(kind: RoleKind, name: str, path: str) -> Problem:
    return Problem(
        Reason.ROLE_NOT_ALLOWED,
        f"{kind} {name!r} is not in the operator's bind allowlist; ask a cluster admin to add it "
        "or choose an allowed role",
        path,
    )


def _role_problem(
    allowed: AllowedRoles,
    existing: RoleInventory | None,
    kind: RoleKind,
    name: str,
    namespace: str | None,
    path: str,
) -> Problem | None:
    if not allowed.allows(kind, name):
        return not_allowed(kind, name, path)
    if existing is not None and not existing.has(kind, name, namespace):
        where = f" in namespace {namespace!r}" if kind == "Role" else ""
        return Problem(
            Reason.ROLE_NOT_FOUND,
            f"{kind} {name!r} does not exist{where}; the binding grants nothing until it does",
            path,
        )
    return None
