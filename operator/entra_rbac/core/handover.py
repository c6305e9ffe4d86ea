"""Handing managed bindings over to people: what `entra-rbac release-bindings` writes.

Before the operator is uninstalled with access kept, every binding it manages is turned into a
plain hand-made one: the ownerReference to its EntraGroupBinding and the operator's labels and
annotations are removed, so deleting the resources (or the CRD) no longer lets the garbage
collector revoke it, and the operator, if it ever runs again, sees a foreign object it never
touches. An annotation records where the binding came from, for auditors.

Pure: a binding in, the binding to write (or None when it is not the operator's) out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from entra_rbac.constants import (
    GROUP,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_NAME_ANNOTATION,
    OWNER_UID_LABEL,
)

RELEASED_FROM_ANNOTATION: Final = f"{GROUP}/released-from"
_OPERATOR_LABELS: Final = (MANAGED_BY_LABEL, OWNER_UID_LABEL)
_OPERATOR_ANNOTATIONS: Final = (OWNER_NAME_ANNOTATION,)


def controlling_resource(binding: Mapping[str, Any]) -> str | None:
    """The name of the EntraGroupBinding that controls this binding, when it is the operator's.

    Ours means both marks (docs/design.md, Ownership): the managed-by label and a controller
    ownerReference to an EntraGroupBinding.
    """
    meta = binding.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return None
    for ref in meta.get("ownerReferences") or ():
        if (
            ref.get("controller") is True
            and ref.get("kind") == KIND
            and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
        ):
            return str(ref.get("name", ""))
    return None


def released(binding: Mapping[str, Any], only: frozenset[str] | None = None) -> dict[str, Any] | None:
    """The binding as a hand-made one, or None when it is not the operator's (or not in `only`).

    Keeps its name, roleRef, subjects and resourceVersion (so the update is refused if it changed
    since it was read); keeps the annotation naming the Entra groups (who the subjects are) and
    adds where it came from.
    """
    owner = controlling_resource(binding)
    if owner is None or (only is not None and owner not in only):
        return None
    out = copy.deepcopy(dict(binding))
    meta = out["metadata"]
    meta["ownerReferences"] = [
        ref
        for ref in meta.get("ownerReferences") or ()
        if not (ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"))
    ]
    if not meta["ownerReferences"]:
        del meta["ownerReferences"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _OPERATOR_LABELS}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _OPERATOR_ANNOTATIONS}
    annotations[RELEASED_FROM_ANNOTATION] = owner
    meta["labels"] = labels
    meta["annotations"] = annotations
    return out
