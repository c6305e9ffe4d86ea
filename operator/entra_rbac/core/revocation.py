"""The mass-revocation guard (DESIGN section 4) and the simulation it rests on.

Holds `apply_plan` (what the bindings would be once a plan succeeded), `removed_subjects` and
`check_revocation`. Pure: deciding whether to hold is here; remembering that a plan was already
held once (to release it on the next agreeing read) and reading the confirming annotation are
the reconciler's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from entra_rbac.constants import CONFIRM_REVOCATION_ANNOTATION
from entra_rbac.core.plan import ObservedBinding, Plan, Verb
from entra_rbac.core.subjects import Subject

DEFAULT_MAX_SHARE = 0.5
DEFAULT_MIN_COUNT = 5


def _manifest(item: Mapping[str, Any] | ObservedBinding) -> dict[str, Any]:
    if isinstance(item, ObservedBinding):
        metadata: dict[str, Any] = {
            "name": item.name,
            "labels": dict(item.labels),
            "annotations": dict(item.annotations),
            "ownerReferences": [dict(r) for r in item.owner_references],
        }
        if item.namespace:
            metadata["namespace"] = item.namespace
        return {
            "kind": item.kind,
            "metadata": metadata,
            "roleRef": {"kind": item.role_ref.kind, "name": item.role_ref.name},
            "subjects": [s.to_manifest() for s in item.subjects],
        }
    return copy.deepcopy(dict(item))


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place (null deletes a key; lists are replaced)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def apply_plan(actual: Iterable[Mapping[str, Any] | ObservedBinding], plan: Plan) -> list[dict[str, Any]]:
    """The bindings after every action of `plan` succeeded (server-set fields aside)."""
    objects = {ObservedBinding.from_manifest(m).key: m for m in map(_manifest, actual)}
    for action in plan.actions:
        if action.verb in (Verb.CREATE, Verb.REPLACE) and action.manifest is not None:
            objects[action.key] = copy.deepcopy(dict(action.manifest))
        elif action.verb is Verb.PATCH and action.patch is not None:
            patch = copy.deepcopy(dict(action.patch))
            patch.get("metadata", {}).pop("resourceVersion", None)
            _merge(objects[action.key], patch)
        elif action.verb is Verb.DELETE:
            objects.pop(action.key, None)
    return [objects[key] for key in sorted(objects)]


def owned_subjects(actual: Iterable[Mapping[str, Any] | ObservedBinding], owner_uid: str) -> set[Subject]:
    """The distinct subjects of every binding owned by `owner_uid`."""
    observed = (ObservedBinding.from_manifest(m) for m in map(_manifest, actual))
    return {s for o in observed if o.owned_by(owner_uid) for s in o.subjects}


def removed_subjects(
    actual: Iterable[Mapping[str, Any] | ObservedBinding], plan: Plan, owner_uid: str
) -> tuple[Subject, ...]:
    """Subjects that hold some binding of this owner now and none once the plan is applied."""
    current = list(actual)
    after = owned_subjects(apply_plan(current, plan), owner_uid)
    return tuple(sorted(owned_subjects(current, owner_uid) - after))


@dataclass(frozen=True)
class RevocationCheck:
    """Whether a plan removes too many subjects at once, and the figures behind the answer."""

    held: bool
    removed: tuple[Subject, ...]
    current: int
    message: str


def check_revocation(
    actual: Iterable[Mapping[str, Any] | ObservedBinding],
    plan: Plan,
    owner_uid: str,
    *,
    max_share: float = DEFAULT_MAX_SHARE,
    min_count: int = DEFAULT_MIN_COUNT,
) -> RevocationCheck:
    """Held when the plan would remove more than `max_share` of the owner's current distinct
    subjects AND at least `min_count` of them (so small groups can still shrink freely)."""
    current_list = list(actual)
    current = len(owned_subjects(current_list, owner_uid))
    removed = removed_subjects(current_list, plan, owner_uid)
    held = is_mass_revocation(current, len(removed), max_share=max_share, min_count=min_count)
    message = ""
    if held:
        message = (
            f"this sync would remove {len(removed)} of {current} subjects (more than "
            f"{max_share:.0%}); held until the next directory read agrees, or annotate the resource "
            f"with {CONFIRM_REVOCATION_ANNOTATION} to apply it now"
        )
    return RevocationCheck(held=held, removed=removed, current=current, message=message)


def is_mass_revocation(current: int, removed: int, *, max_share: float, min_count: int) -> bool:
    return removed >= min_count and removed > max_share * current
