"""The mass-revocation guard (docs/design.md, Directory semantics) and the plan simulation it rests on.

Holds `apply_plan` / `after_plan` (what the bindings are once a plan succeeded), `removed_subjects`
and `check_revocation`. Pure: deciding whether to hold is here; remembering that a plan was
already held once (to release it on the next agreeing read) and reading the confirming
annotation are the reconciler's.

The simulations share unchanged objects with their inputs instead of copying them (a resource in
user mode may hold thousands of subjects in each of hundreds of bindings): treat results as
read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from entra_rbac.constants import (
    CONFIRM_REVOCATION_ANNOTATION,
    DEFAULT_REVOCATION_GUARD_MIN,
    DEFAULT_REVOCATION_GUARD_SHARE,
)
from entra_rbac.core.desired import RoleRef
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.plan import Action, ObservedBinding, Plan, Verb, as_observed
from entra_rbac.core.subjects import Subject, distinct_subjects
from entra_rbac.core.text import plural

Item = Mapping[str, Any] | ObservedBinding


def _as_manifest(item: Item) -> Mapping[str, Any]:
    if not isinstance(item, ObservedBinding):
        return item
    metadata: dict[str, Any] = {
        "name": item.name,
        "labels": dict(item.labels),
        "annotations": dict(item.annotations),
        "ownerReferences": [dict(r) for r in item.owner_references],
    }
    if item.namespace:
        metadata["namespace"] = item.namespace
    if item.uid:
        metadata["uid"] = item.uid
    if item.resource_version:
        metadata["resourceVersion"] = item.resource_version
    return {
        "kind": item.kind,
        "metadata": metadata,
        "roleRef": item.role_ref.to_manifest(),
        "subjects": [s.to_manifest() for s in item.subjects],
    }


def _merged(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch as a new object (null deletes a key; lists are replaced)."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def _written(action: Action, before: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The object at the action's name once it succeeded (None: no object)."""
    if action.verb in (Verb.CREATE, Verb.REPLACE):
        return action.manifest
    if action.verb is Verb.PATCH and action.patch is not None and before is not None:
        metadata = {k: v for k, v in (action.patch.get("metadata") or {}).items() if k != "resourceVersion"}
        return _merged(before, {**action.patch, "metadata": metadata})
    return None if action.verb is Verb.DELETE else before


def apply_plan(actual: Iterable[Item], plan: Plan) -> list[Mapping[str, Any]]:
    """The bindings (as manifests, sorted by key) after every action of `plan` succeeded."""
    objects: dict[BindingKey, Mapping[str, Any]] = {}
    for item in actual:
        manifest = _as_manifest(item)
        objects[BindingKey.from_manifest(manifest)] = manifest
    for action in plan.actions:
        written = _written(action, objects.get(action.key))
        if written is None:
            objects.pop(action.key, None)
        else:
            objects[action.key] = written
    return [objects[key] for key in sorted(objects)]


def after_plan(observed: Iterable[ObservedBinding], plan: Plan) -> list[ObservedBinding]:
    """Like `apply_plan` for observed bindings: untouched ones are returned as they are, so the
    status of a large resource is built without converting every binding back and forth; the
    written ones are parsed together, so equal subject lists become one shared tuple."""
    objects: dict[BindingKey, ObservedBinding | Mapping[str, Any]] = {o.key: o for o in observed}
    for action in plan.actions:
        before = objects.get(action.key)
        if isinstance(before, ObservedBinding):
            before = _as_manifest(before)
        written = _written(action, before)
        if written is None:
            objects.pop(action.key, None)
        else:
            objects[action.key] = written
    return as_observed(objects[key] for key in sorted(objects))


def owned_subjects(actual: Iterable[Item], owner_uid: str) -> set[Subject]:
    """The distinct subjects of every binding owned by `owner_uid`."""
    # Bindings of one resource share one subjects tuple (`ObservedBinding.from_manifests`).
    return distinct_subjects(o.subjects for o in as_observed(actual) if o.owned_by(owner_uid))


def granted_everywhere(actual: Iterable[Item], owner_uid: str) -> set[Subject]:
    """The subjects every place of `owner_uid` grants: a place is one role at one namespace (or
    the cluster), its shards together. The operator writes one subject list to every place, so
    a subject missing from some place is none the directory gave it; one that somebody added at
    the places they may write is not one the guard weighs (docs/design.md, Ownership)."""
    places: dict[tuple[str, str | None, RoleRef], list[tuple[Subject, ...]]] = {}
    for o in as_observed(actual):
        if o.owned_by(owner_uid):
            places.setdefault((o.kind, o.namespace, o.role_ref), []).append(o.subjects)
    granted: set[Subject] | None = None
    # Places holding the same shared tuples are one set, built once (issue 17 point 7).
    for held in {tuple(id(s) for s in lists): lists for lists in places.values()}.values():
        found = distinct_subjects(held)
        granted = found if granted is None else granted & found
    return granted or set()


def removed_subjects(actual: Iterable[Item], plan: Plan, owner_uid: str) -> tuple[Subject, ...]:
    """Subjects that every place of this owner grants now and none grants once the plan is applied.

    A subject only some places grant (a forgery's, or one a partly carried out change already took
    out) is not weighed: someone who may write bindings in some of the resource's namespaces can
    neither add a removal nor, by taking subjects out there, make one count more."""
    observed: Sequence[ObservedBinding] = as_observed(actual)
    before = granted_everywhere(observed, owner_uid)
    after = owned_subjects(after_plan(observed, plan), owner_uid)
    return tuple(sorted(before - after))


@dataclass(frozen=True)
class RevocationCheck:
    """Whether a plan removes too many subjects at once, and the figures behind the answer."""

    held: bool
    removed: tuple[Subject, ...]
    current: int
    message: str


def check_revocation(
    actual: Iterable[Item],
    plan: Plan,
    owner_uid: str,
    *,
    max_share: float = DEFAULT_REVOCATION_GUARD_SHARE,
    min_count: int = DEFAULT_REVOCATION_GUARD_MIN,
) -> RevocationCheck:
    """Held when the plan would remove more than `max_share` of the owner's current distinct
    subjects AND at least `min_count` of them (so small groups can still shrink freely).

    Current: every subject some place grants; removed: `removed_subjects`, those every place grants
    and none will. A binding written at some of the places by someone else can only lower the
    share removed, never hold a plan that would not be held without it (docs/design.md, Ownership)."""
    observed = as_observed(actual)
    current = len(owned_subjects(observed, owner_uid))
    # Only an action that takes a subject out of some binding can revoke anyone: an idle or
    # purely additive plan needs no simulation.
    removing = any(action.removed for action in plan.actions)
    removed = removed_subjects(observed, plan, owner_uid) if removing else ()
    held = is_mass_revocation(current, len(removed), max_share=max_share, min_count=min_count)
    message = ""
    if held:
        message = (
            f"this sync would remove {len(removed)} of {plural(current, 'subject')} (more than "
            f"{max_share:.0%}); held until the next directory read agrees, or annotate the resource "
            f"with {CONFIRM_REVOCATION_ANNOTATION} to apply it now"
        )
    return RevocationCheck(held=held, removed=removed, current=current, message=message)


def is_mass_revocation(current: int, removed: int, *, max_share: float, min_count: int) -> bool:
    return removed >= min_count and removed > max_share * current
