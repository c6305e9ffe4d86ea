"""Which bindings carrying a resource's marks are its own: the one rule the reconcile and the
read-only commands (plan, explain, report) share (docs/design.md, Ownership).

Holds `targets` (where a spec grants, whoever the subjects and whenever: the names and namespaces
at which the resource's bindings stand) and, for the commands that read every resource's bindings
at once, `Claimant` (a listed resource with its targets worked out once), `claimants` and
`claim_of`, which say of one binding's metadata whose marks it carries and whether it stands at one
of that resource's targets. The marks themselves and the split are the core's
(`core.plan.bears_marks`, `split_owned`): nothing here is a second copy of them. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from entra_rbac.constants import OWNER_UID_LABEL
from entra_rbac.core.desired import DesiredState, NamespaceInfo, Owner, TargetKeys, compute_desired
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import BindingKey, label_value
from entra_rbac.core.plan import ObservedBinding, OwnedBindings, bears_marks, split_owned
from entra_rbac.core.status import shards_written
from entra_rbac.core.subjects import SubjectSet
from entra_rbac.reconciler.context import Policy


def targets(
    owner: Owner, spec: EntraGroupBindingSpec, namespaces: Iterable[NamespaceInfo], policy: Policy
) -> DesiredState:
    """Where the spec grants what, whoever the subjects are (no role read: targets do not depend
    on whether a role exists), and whenever: a grant outside its window still names its
    bindings, so one that lapsed is the resource's own, deleted on time by the plan or by
    `remove_lapsed`, never a stray waiting for the cleanup. `.target_keys()` are the keys."""
    return compute_desired(
        owner,
        spec,
        SubjectSet((), ()),
        namespaces,
        reserved_namespaces=policy.reserved_namespaces,
        allowed_roles=policy.allowed_roles,
        sharding=policy.sharding,
    )


def own(
    marked: Iterable[ObservedBinding], owner_uid: str, grants: DesiredState, written: int, wanted: int = 1
) -> OwnedBindings:
    """`marked` split into the resource's own and strays (`split_owned`) at the targets of
    `grants` (`targets(...)`), a target's shard k counted only while k is at most `written`
    (the shards the operator wrote: its memory, or status's `summary.shards`, which only it
    writes) or `wanted` (the shards the split asks for now).

    Why this bound: a binding with the resource's marks at a shard name can be anyone's who may
    write RoleBindings there, so the shard names observed are not evidence; a forged shard above
    both counts in no status figure and in no hold (a stray, deleted once the plan succeeded).
    Not `wanted` alone: on a real shrink (5 shards written, 2 needed now) shards 3 to 5 are the
    operator's own, and deleting them revokes whoever is only there, which the revocation guard
    must weigh, after a restart too (hence status, not memory alone). Not the highest shard
    observed: that is the forger's to choose."""
    return split_owned(marked, owner_uid, grants.target_keys(max(written, wanted)))


@dataclass(frozen=True)
class Claimant:
    """A listed EntraGroupBinding whose marks a binding may carry. `targets`: where its bindings
    stand (`targets(...).target_keys()`), None when its spec does not parse: then nothing is its
    own, as the reconcile writes nothing for it until it is fixed."""

    name: str
    uid: str
    resource: Mapping[str, Any]
    targets: TargetKeys | None
    shards: int = 1  # the shards status says were written (`summary.shards`): a higher one is no target


def claimants(
    resources: Iterable[Mapping[str, Any]], namespaces: Sequence[NamespaceInfo], policy: Policy
) -> dict[str, Claimant]:
    """The resources by the value of the owner-uid label their bindings carry, each with its
    targets computed as the reconcile computes them (the same namespaces, allowlist and shard cap,
    shards up to those status says were written: `own`; a shard the split is just adding counts
    once status records it, a few seconds later)."""
    found = {}
    for resource in resources:
        meta = resource.get("metadata") or {}
        name, uid = str(meta.get("name")), str(meta.get("uid"))
        written = shards_written(resource.get("status") or {})
        try:
            spec = EntraGroupBindingSpec.model_validate(resource.get("spec") or {})
        except ValidationError:
            keys = None
        else:
            keys = targets(Owner(name=name, uid=uid), spec, namespaces, policy).target_keys(written)
        found[label_value(uid)] = Claimant(name, uid, resource, keys, written)
    return found


@dataclass(frozen=True)
class Claim:
    """Whose marks a binding carries (`claimant`), and whether it is that resource's own: at one of
    its targets (`own`). A claim that is not own is a stray: a leftover or a forgery."""

    claimant: Claimant
    own: bool


def claim_of(
    labels: Mapping[str, Any],
    owner_references: Iterable[Mapping[str, Any]],
    key: BindingKey,
    by_label: Mapping[str, Claimant],
) -> Claim | None:
    """The claim of a binding with this metadata at `key`, read without parsing the binding; None
    when it carries no listed resource's marks (it is unmanaged)."""
    claimant = by_label.get(str(labels.get(OWNER_UID_LABEL)))
    if claimant is None or not bears_marks(labels, owner_references, claimant.uid):
        return None
    return Claim(claimant, claimant.targets is not None and key in claimant.targets)
