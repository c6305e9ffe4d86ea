"""The plan: what to write so the cluster holds exactly the desired bindings (docs/design.md, Ownership).

Holds `ObservedBinding` (a binding as read from the API), the `Action`s (create / patch /
replace / delete), `Conflict`, `Plan` and `make_plan`, the one entry point. Pure: the reconciler
reads the actual bindings and carries out the actions; nothing here talks to the API server.

Safety rules enforced here, not by the caller:
- An object is ours only with the managed-by label AND a controller ownerReference to the
  resource's UID. Anything else is never written or deleted; at a desired name it is a Conflict.
- Those marks can be forged by anyone who may write RoleBindings in a namespace, so a marked
  binding counts (plan, revocation guard, status) only at a name and namespace the resource
  targets (`split_owned`); one anywhere else is only ever deleted as cleanup (`cleanup_plan`).
- Every create comes before any delete: a role change (a new name, since the name holds the
  role) creates the new binding before deleting the old one, so nobody loses access in between.
- Bindings in terminating namespaces are left alone (writes there are refused anyway).
- Adoption (`adoption_refusal`) is the one way in for a binding the operator did not write: at a
  name the resource targets, annotated `entra-rbac.io/adopt=<that resource>`, controlled by
  nobody, managed by no other tool, with the roleRef the resource asks for. It is patched into
  exactly the desired binding (marks, subjects, annotations); anything else stays a Conflict.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import Any

from entra_rbac.constants import (
    ADOPT_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_UID_LABEL,
)
from entra_rbac.core.desired import Binding, DesiredState, RoleRef
from entra_rbac.core.naming import BindingKey, BindingKind, owner_labels
from entra_rbac.core.problems import Problem, Reason
from entra_rbac.core.subjects import (
    RenderedSubjects,
    SharedSubjects,
    Subject,
    parse_subjects,
    rendered_subjects,
)

# Subject lists that carry their subjects already parsed, canonical: the cache's (parsed when it
# took the binding in) and the plan's own (rendered from the tuple, met again when the plan is
# simulated, `core.revocation.after_plan`).
_CARRYING_PARSED = (SharedSubjects, RenderedSubjects)

# Distinct subject lists remembered while parsing a listing (`ObservedBinding.from_manifests`):
# one resource's bindings hold one list, or two while a change is being written.
_SHARED_LISTS = 4


@dataclass(frozen=True)
class ObservedBinding:
    """A RoleBinding or ClusterRoleBinding as the API server returned it."""

    kind: BindingKind
    namespace: str | None
    name: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_references: tuple[Mapping[str, Any], ...]
    uid: str | None = None
    resource_version: str | None = None
    # False when a subject carries anything we would not write (e.g. another apiGroup): healed.
    canonical_subjects: bool = True

    @property
    def key(self) -> BindingKey:
        return BindingKey.of(self.kind, self.namespace, self.name)

    @classmethod
    def from_manifest(
        cls, obj: Mapping[str, Any], parsed: tuple[tuple[Subject, ...], bool] | None = None
    ) -> ObservedBinding:
        """Parse an API object. List items may lack `kind`: a namespace then means RoleBinding.
        `parsed`: its subjects already parsed (`parse_subjects`), shared with other bindings."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or None
        kind: BindingKind = "RoleBinding" if namespace else "ClusterRoleBinding"
        if obj.get("kind", kind) != kind:
            raise ValueError(f"{obj.get('kind')} {meta.get('name')!r} is not a {kind}")
        role_ref = obj.get("roleRef") or {}
        if parsed is None:
            raw = obj.get("subjects") or ()
            # Parsed already (`_CARRYING_PARSED`): a restart's sweep read 2,000 cached bindings one
            # by one and parsed each again (35% of its CPU at 1,000 subjects, issue 17 point 7).
            parsed = (raw.parsed, True) if isinstance(raw, _CARRYING_PARSED) else parse_subjects(raw)
        subjects, canonical = parsed
        return cls(
            kind=kind,
            namespace=namespace if kind == "RoleBinding" else None,
            name=str(meta.get("name", "")),
            role_ref=RoleRef(str(role_ref.get("kind", "")), str(role_ref.get("name", ""))),
            subjects=subjects,
            canonical_subjects=canonical,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            owner_references=tuple(meta.get("ownerReferences") or ()),
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        )

    @classmethod
    def from_manifests(cls, objs: Iterable[Mapping[str, Any]]) -> list[ObservedBinding]:
        """Parse API objects; bindings holding equal subject lists (as every binding of one
        resource does) share one parsed tuple: the lists are compared in C, parsed once and held
        once, and the plan's comparisons of shared tuples are answered once (issue 17 point 7)."""
        recent: list[tuple[Any, tuple[tuple[Subject, ...], bool]]] = []
        found: list[ObservedBinding] = []
        for obj in objs:
            raw = obj.get("subjects") or []
            if isinstance(raw, _CARRYING_PARSED):
                found.append(cls.from_manifest(obj, (raw.parsed, True)))
                continue
            parsed = next((done for seen, done in recent if seen == raw), None)
            if parsed is None:
                parsed = parse_subjects(raw)
                recent = [(raw, parsed), *recent[: _SHARED_LISTS - 1]]
            found.append(cls.from_manifest(obj, parsed))
        return found

    def owned_by(self, owner_uid: str) -> bool:
        """Both marks of ownership: the managed-by label and a controller reference to owner_uid."""
        return carries_ownership(self.labels, self.owner_references, owner_uid)


def carries_ownership(
    labels: Mapping[str, Any], owner_references: Iterable[Mapping[str, Any]], owner_uid: str
) -> bool:
    """Both marks of ownership on an object's metadata: the managed-by label and a controller
    reference to `owner_uid` (what `ObservedBinding.owned_by` asks, without parsing the object)."""
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and any(
        ref.get("controller") is True and ref.get("uid") == owner_uid for ref in owner_references
    )


def bears_marks(
    labels: Mapping[str, Any], owner_references: Iterable[Mapping[str, Any]], owner_uid: str
) -> bool:
    """What `split_owned` asks of a binding before looking at where it stands: both marks of
    ownership and the owner-uid label the operator writes (read off the metadata, so the
    read-only commands ask it of every binding without parsing one)."""
    return (
        carries_ownership(labels, owner_references, owner_uid)
        and labels.get(OWNER_UID_LABEL) == owner_labels(owner_uid)[OWNER_UID_LABEL]
    )


class Verb(StrEnum):
    """In plan order: every create before any delete."""

    CREATE = "create"
    PATCH = "patch"
    REPLACE = "replace"
    DELETE = "delete"


_VERB_ORDER = {verb: i for i, verb in enumerate(Verb)}
_PAST = {Verb.CREATE: "Created", Verb.PATCH: "Updated", Verb.REPLACE: "Replaced", Verb.DELETE: "Deleted"}
MAX_DESCRIBED_SUBJECTS = 10  # an Event stays readable when a user-mode group has thousands


@dataclass(frozen=True)
class Action:
    """One write.

    - create: POST `manifest`.
    - patch: JSON merge patch (`application/merge-patch+json`) `patch` on the object; it carries
      `metadata.resourceVersion`, so the API server refuses it (409) if the object changed since
      it was read: re-read and plan again.
    - replace: the object at this name has another roleRef, which Kubernetes cannot change; delete
      it (preconditions `uid`, `resource_version`) then create `manifest`. Only happens at the same
      name; a role change in the spec gives a new name and is a create plus a later delete.
    - delete: delete with preconditions `uid` and `resource_version` (a foreign object put at the
      name since it was read is never deleted).
    `added` / `removed` name the subjects gained / lost, for Events and logs. `adopted`: a patch
    that takes over a hand-made binding annotated for adoption (`adoption_refusal`).
    """

    verb: Verb
    kind: BindingKind
    namespace: str | None
    name: str
    role_ref: RoleRef
    manifest: Mapping[str, Any] | None = None
    patch: Mapping[str, Any] | None = None
    uid: str | None = None
    resource_version: str | None = None
    changes: tuple[str, ...] = ()
    added: tuple[Subject, ...] = ()
    removed: tuple[Subject, ...] = ()
    adopted: bool = False

    @property
    def key(self) -> BindingKey:
        return BindingKey.of(self.kind, self.namespace, self.name)

    @property
    def event_reason(self) -> str:
        """`Created`, `Updated`, `Adopted`, `Replaced` or `Deleted`: the reason of the audit Event."""
        return "Adopted" if self.adopted else _PAST[self.verb]

    def describe(self) -> str:
        """One audit line naming the binding, its role and the subjects gained and lost, e.g.
        `Created RoleBinding payments/egb:a:clusterrole:edit (ClusterRole/edit); +Group <id>`."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        text = f"{self.event_reason} {self.kind} {where} ({self.role_ref})"
        if self.changes:
            text += f": {', '.join(self.changes)} changed"
        subjects = self.subject_changes()
        return f"{text}; {subjects}" if subjects else text

    def subject_changes(self) -> str:
        """The subjects gained (+) and lost (-), the first few by name: `+Group <id> -User bob`."""
        # Only the named few are formatted: a user-mode create adds thousands (issue 17 point 7).
        shown = [
            *(("+", s) for s in self.added[:MAX_DESCRIBED_SUBJECTS]),
            *(("-", s) for s in self.removed[:MAX_DESCRIBED_SUBJECTS]),
        ][:MAX_DESCRIBED_SUBJECTS]
        parts = [f"{sign}{s.kind} {s.name}" for sign, s in shown]
        hidden = len(self.added) + len(self.removed) - len(parts)
        if hidden:
            parts.append(f"and {hidden} more")
        return " ".join(parts)


@dataclass(frozen=True)
class Conflict:
    """A desired binding's name is taken by an object this resource does not own."""

    kind: BindingKind
    namespace: str | None
    name: str
    message: str

    @property
    def key(self) -> BindingKey:
        return BindingKey.of(self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Plan:
    """Sorted actions (create, patch, replace, delete; each by kind, namespace, name) and conflicts."""

    actions: tuple[Action, ...]
    conflicts: tuple[Conflict, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.actions)

    def of(self, verb: Verb) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.verb is verb)

    def problems(self) -> tuple[Problem, ...]:
        """The conflicts as Problems (reason Conflict), for status."""
        return tuple(Problem(Reason.CONFLICT, c.message) for c in self.conflicts)


def make_plan(
    desired: DesiredState, actual: Iterable[Mapping[str, Any] | ObservedBinding], owner_uid: str | None = None
) -> Plan:
    """The writes that turn `actual` into `desired`, touching only objects owned by `owner_uid`.

    `actual` is what the reconciler observed: at least every binding labelled for this owner and
    any object at a desired name (a foreign one there becomes a Conflict). `owner_uid` defaults
    to the desired owner's UID.
    """
    uid = owner_uid or desired.owner.uid
    observed = {o.key: o for o in as_observed(actual)}
    same = _SharedWork()
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    wanted = {b.key for b in desired.bindings}
    for binding in desired.bindings:
        current = observed.get(binding.key)
        if current is None:
            actions.append(_create(binding, same))
        elif not current.owned_by(uid):
            refusal = adoption_refusal(current, binding.role_ref, desired.owner.name)
            if refusal is None:
                actions.append(_adopt(binding, current, same))
            else:
                conflicts.append(_conflict(binding, current, refusal))
        elif current.role_ref != binding.role_ref:
            actions.append(_replace(binding, current, same))
        else:
            patch = _patch(binding, current, same)
            if patch is not None:
                actions.append(patch)
    for key, current in observed.items():
        if key not in wanted and current.owned_by(uid) and current.namespace not in desired.frozen_namespaces:
            actions.append(_delete(current))
    actions.sort(key=lambda a: (_VERB_ORDER[a.verb], a.key))
    return Plan(actions=tuple(actions), conflicts=tuple(sorted(conflicts, key=lambda c: c.key)))


@dataclass(frozen=True)
class OwnedBindings:
    """The bindings carrying a resource's marks, split by whether the operator can tell it wrote them.

    `ours`: at a name and namespace the resource targets, with exactly the labels the operator
    sets and its controller reference; only these count for the plan, the revocation guard and
    status. `strays`: the same marks anywhere else. A stray is either the operator's own binding
    left behind by a spec or namespace change, or a forgery (docs/design.md, Ownership); the two
    look the same, so a stray is never counted and only deleted (`cleanup_plan`).
    """

    ours: tuple[ObservedBinding, ...]
    strays: tuple[ObservedBinding, ...]


def split_owned(
    marked: Iterable[ObservedBinding], owner_uid: str, targets: Collection[BindingKey]
) -> OwnedBindings:
    """Sort the bindings carrying `owner_uid`'s marks into those at `targets` and the strays.

    Anything without both marks (the managed-by label and the controller reference) is neither:
    it is dropped here, as it is never the operator's to change.
    """
    ours: list[ObservedBinding] = []
    strays: list[ObservedBinding] = []
    for binding in sorted(marked, key=lambda b: b.key):
        if not bears_marks(binding.labels, binding.owner_references, owner_uid):
            continue
        (ours if binding.key in targets else strays).append(binding)
    return OwnedBindings(ours=tuple(ours), strays=tuple(strays))


def cleanup_plan(strays: Iterable[ObservedBinding], frozen_namespaces: Collection[str] = ()) -> Plan:
    """Deletes of the strays (each with uid and resourceVersion preconditions), sorted; those in
    terminating namespaces are left alone, as every binding there is."""
    deletes = [_delete(s) for s in strays if s.namespace not in frozen_namespaces]
    return Plan(actions=tuple(sorted(deletes, key=lambda a: a.key)))


def as_observed(items: Iterable[Mapping[str, Any] | ObservedBinding]) -> list[ObservedBinding]:
    """Each item as an `ObservedBinding`; the manifests among them parsed together (shared subjects)."""
    listed = list(items)
    manifests = ObservedBinding.from_manifests(i for i in listed if not isinstance(i, ObservedBinding))
    parsed = iter(manifests)
    return [i if isinstance(i, ObservedBinding) else next(parsed) for i in listed]


@dataclass
class _SharedWork:
    """What one `make_plan` computes once per distinct subject tuple (or pair of them) rather than
    once per binding: a resource's bindings share one desired tuple, and the cache's bindings of
    it one observed tuple (issue 17 point 7). Keyed by identity: every tuple stays alive in the
    plan's inputs while this lives. The rendered lists are shared by the actions' manifests and
    patches (never mutated: they are only serialised)."""

    same: dict[tuple[int, int], bool] = dataclass_field(default_factory=dict)
    rendered: dict[int, RenderedSubjects] = dataclass_field(default_factory=dict)
    diffs: dict[tuple[int, int], tuple[tuple[Subject, ...], tuple[Subject, ...]]] = dataclass_field(
        default_factory=dict
    )

    def equal(self, observed: tuple[Subject, ...], desired: tuple[Subject, ...]) -> bool:
        key = (id(observed), id(desired))
        if key not in self.same:
            self.same[key] = observed == desired
        return self.same[key]

    def render(self, subjects: tuple[Subject, ...]) -> RenderedSubjects:
        if id(subjects) not in self.rendered:
            self.rendered[id(subjects)] = rendered_subjects(subjects)
        return self.rendered[id(subjects)]

    def diff(
        self, before: tuple[Subject, ...], after: tuple[Subject, ...]
    ) -> tuple[tuple[Subject, ...], tuple[Subject, ...]]:
        """(added, removed), sorted."""
        key = (id(before), id(after))
        if key not in self.diffs:
            if self.equal(before, after):
                self.diffs[key] = ((), ())
            else:
                old, new = set(before), set(after)
                self.diffs[key] = (tuple(sorted(new - old)), tuple(sorted(old - new)))
        return self.diffs[key]


def _create(binding: Binding, shared: _SharedWork) -> Action:
    return Action(
        verb=Verb.CREATE,
        kind=binding.kind,
        namespace=binding.namespace,
        name=binding.name,
        role_ref=binding.role_ref,
        manifest=binding.to_manifest(shared.render(binding.subjects)),
        added=binding.subjects,
    )


def _change(
    verb: Verb,
    binding: Binding,
    current: ObservedBinding,
    changes: Iterable[str],
    *,
    manifest: Mapping[str, Any] | None = None,
    patch: Mapping[str, Any] | None = None,
    adopted: bool = False,
    shared: _SharedWork,
) -> Action:
    """The write that turns `current` into `binding` (a replace's `manifest` or a `patch`),
    preconditioned on what was read (uid and resourceVersion), naming what it `changes` and the
    subjects it adds and removes; the one shape of every action on an existing object but a delete."""
    added, removed = shared.diff(current.subjects, binding.subjects)
    return Action(
        verb=verb,
        kind=binding.kind,
        namespace=binding.namespace,
        name=binding.name,
        role_ref=binding.role_ref,
        manifest=manifest,
        patch=patch,
        uid=current.uid,
        resource_version=current.resource_version,
        changes=tuple(changes),
        added=added,
        removed=removed,
        adopted=adopted,
    )


def _replace(binding: Binding, current: ObservedBinding, shared: _SharedWork) -> Action:
    manifest = binding.to_manifest(shared.render(binding.subjects))
    return _change(Verb.REPLACE, binding, current, ("roleRef",), manifest=manifest, shared=shared)


def _delete(current: ObservedBinding) -> Action:
    return Action(
        verb=Verb.DELETE,
        kind=current.kind,
        namespace=current.namespace,
        name=current.name,
        role_ref=current.role_ref,
        uid=current.uid,
        resource_version=current.resource_version,
        removed=tuple(sorted(set(current.subjects))),
    )


def _patch(binding: Binding, current: ObservedBinding, shared: _SharedWork) -> Action | None:
    """A merge patch for what differs: subjects (exact sorted list), and our labels and annotations
    (only our keys: labels or annotations others added, e.g. by kubectl, are left as they are)."""
    body: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    changes: list[str] = []
    if not shared.equal(current.subjects, binding.subjects) or not current.canonical_subjects:
        body["subjects"] = shared.render(binding.subjects)
        changes.append("subjects")
    for field, want, have in (
        ("labels", binding.labels, current.labels),
        ("annotations", binding.annotations, current.annotations),
    ):
        differing = {k: v for k, v in want.items() if have.get(k) != v}
        if differing:
            metadata[field] = differing
            changes.append(field)
    if not changes:
        return None
    if metadata:
        body["metadata"] = metadata
    if current.resource_version:
        body.setdefault("metadata", {})["resourceVersion"] = current.resource_version
    return _change(Verb.PATCH, binding, current, changes, patch=body, shared=shared)


def adoption_refusal(current: ObservedBinding, role_ref: RoleRef, owner_name: str) -> str | None:
    """Why the hand-made `current`, at a name `owner_name` targets with `role_ref`, is not
    adopted; None when it is.

    Only a binding annotated `entra-rbac.io/adopt=<owner_name>`, with no controller reference
    (nobody else's), no managed-by label of another tool, and `role_ref`.
    A roleRef cannot be changed and replacing the object at its name would leave a moment
    without access, so another role is refused, never replaced (docs/design.md, Adoption).
    """
    asked = current.annotations.get(ADOPT_ANNOTATION)
    if asked is None:
        return "it has no entra-rbac.io/adopt annotation"
    if asked != owner_name:
        return f"its entra-rbac.io/adopt annotation names {asked!r}, not this resource"
    controllers = [ref for ref in current.owner_references if ref.get("controller") is True]
    if controllers:
        ref = controllers[0]
        return f"it is controlled by {ref.get('kind')} {ref.get('name')!r}, which adoption never takes over"
    manager = current.labels.get(MANAGED_BY_LABEL)
    if manager not in (None, MANAGED_BY_VALUE):
        return f"its {MANAGED_BY_LABEL} label says {manager!r} manages it"
    if current.role_ref != role_ref:
        return (
            f"its roleRef is {current.role_ref}, not {role_ref}, and a roleRef cannot be "
            "changed: delete it once the operator's binding exists, or fix the annotation"
        )
    return None


def _adopt(binding: Binding, current: ObservedBinding, shared: _SharedWork) -> Action:
    """The merge patch that makes `current` exactly `binding`: subjects, our labels and
    annotations, our controller reference (beside any non-controller ones), and no adopt
    annotation. It carries the resourceVersion read, so a change since then is refused (409)."""
    others = [
        dict(ref) for ref in current.owner_references if ref.get("uid") != binding.owner_reference.get("uid")
    ]
    annotations: dict[str, Any] = {
        k: v for k, v in binding.annotations.items() if current.annotations.get(k) != v
    }
    annotations[ADOPT_ANNOTATION] = None
    metadata: dict[str, Any] = {
        "labels": {k: v for k, v in binding.labels.items() if current.labels.get(k) != v},
        "annotations": annotations,
        "ownerReferences": [*others, dict(binding.owner_reference)],
    }
    if current.resource_version:
        metadata["resourceVersion"] = current.resource_version
    patch = {"metadata": metadata, "subjects": shared.render(binding.subjects)}
    changes = ("ownership", "subjects")
    return _change(Verb.PATCH, binding, current, changes, patch=patch, adopted=True, shared=shared)


def _conflict(binding: Binding, current: ObservedBinding, refusal: str) -> Conflict:
    where = f"namespace {binding.namespace!r}" if binding.namespace else "the cluster"
    adopt = f"{ADOPT_ANNOTATION}={binding.owner_reference.get('name')}"
    return Conflict(
        kind=binding.kind,
        namespace=binding.namespace,
        name=binding.name,
        message=(
            f"{binding.kind} {binding.name!r} in {where} exists and is not managed by this "
            f"EntraGroupBinding; it is left untouched and not adopted: {refusal}. Delete or rename it "
            f"to let the operator create its own, or annotate it {adopt} to hand it over"
        ),
    )
