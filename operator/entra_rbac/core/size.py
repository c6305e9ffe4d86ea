"""Whether a plan would write a binding too large for the API server and etcd to store.

Holds `oversized`, the check made before any write of a resource (docs/design.md, Subjects the
operator emits: bindings too large to write): a user-mode binding over a group of tens of
thousands of members is refused by the API server (413) or by etcd (a 500). `core.desired` splits
such a binding into shards (`core.shards`); a shard still over the limit (the cap on shards
reached) sets the whole plan aside and the resource reports `BindingTooLarge`. Pure: sizes are
counted, nothing sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entra_rbac.core.json_size import compact_size
from entra_rbac.core.plan import Action, Plan, Verb
from entra_rbac.core.problems import Problem, Reason


@dataclass(frozen=True)
class _Measured:
    action: Action
    subjects: int
    size: int

    def where(self) -> str:
        a = self.action
        return f"{a.kind} {a.namespace + '/' if a.namespace else ''}{a.name}"


def oversized(plan: Plan, limit: int, max_shards: int = 1) -> Problem | None:
    """A `BindingTooLarge` problem naming the largest binding the plan would write over `limit`
    bytes of compact JSON (with its subject count and size, and how many more there are), or None.

    Only writes that send subjects count: a create or replace (its manifest) and a patch of the
    subjects (the object after it holds them all). The bindings of one resource share one subject
    list, so each distinct list is measured once. `max_shards`: how many shards the bindings
    were split into at most, named in the message."""
    sizes: dict[int, int] = {}
    over = [m for m in (_measure(a, sizes) for a in plan.actions) if m is not None and m.size > limit]
    if not over:
        return None
    largest = min(over, key=lambda m: (-m.size, m.where()))
    others = f" (and {len(over) - 1} more bindings of this resource)" if len(over) > 1 else ""
    split = (
        f", even split into the {max_shards} shards ENTRA_RBAC_MAX_SHARDS allows" if max_shards > 1 else ""
    )
    return Problem(
        Reason.BINDING_TOO_LARGE,
        f"{largest.where()} would hold {largest.subjects:,} subjects, {largest.size:,} bytes of JSON, "
        f"over the {limit:,} bytes the operator writes in one binding{split}{others}: the API server "
        "refuses bodies over 3 MiB and etcd objects over 1.5 MiB. Nothing was written for this "
        "resource and its bindings are kept as they are; use group mode (spec.subjects.kind: Group) "
        "or smaller groups",
        "spec.subjects",
    )


def _measure(action: Action, sizes: dict[int, int]) -> _Measured | None:
    if action.verb in (Verb.CREATE, Verb.REPLACE):
        body = action.manifest
    elif action.verb is Verb.PATCH and action.patch is not None and "subjects" in action.patch:
        body = action.patch
    else:
        return None
    if body is None:
        return None
    subjects = body.get("subjects") or []
    return _Measured(action, len(subjects), _size(body, subjects, sizes))


def _size(body: Mapping[str, Any], subjects: list[Any], sizes: dict[int, int]) -> int:
    """Bytes of `json.dumps(body, separators=(",", ":"))`, the subject list counted once per list."""
    if id(subjects) not in sizes:
        sizes[id(subjects)] = compact_size(subjects)
    rest = {key: value for key, value in body.items() if key != "subjects"}
    # `"subjects":` and its comma; an empty `rest` has no comma to add.
    return compact_size(rest) + sizes[id(subjects)] + len('"subjects":') + (1 if rest else 0)
