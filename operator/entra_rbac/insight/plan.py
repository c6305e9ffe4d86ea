"""`plan`: the writes the operator would make if the proposed EntraGroupBindings were applied, and
who would gain or lose which access (docs/design.md, Plan, explain, report).

Holds `ClusterState` (what was listed, once), `ResourcePlan` / `Grant` (the answer for one
resource) and `plan_resource`, which runs the reconcile's own pure steps in the same order:
`build_subjects` -> `compute_desired` (allowlist, missing roles, namespaces, selectors) ->
`make_plan` (ownership, conflicts, make-before-break) -> the revocation guard -> `after_plan`.
No second implementation of any of them; nothing here writes to the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL
from entra_rbac.core.desired import (
    DesiredState,
    NamespaceInfo,
    Owner,
    RoleInventory,
    compute_desired,
    shards_in_use,
)
from entra_rbac.core.entra import GroupResolution
from entra_rbac.core.guardrails import ClusterView, RoleRules, check_guardrails
from entra_rbac.core.models import EntraGroupBindingSpec, GroupState
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.plan import ObservedBinding, Plan, cleanup_plan, make_plan
from entra_rbac.core.problems import Problem, Reason, sort_problems
from entra_rbac.core.rbac import RoleBook, Rule
from entra_rbac.core.revocation import after_plan
from entra_rbac.core.status import shards_written
from entra_rbac.core.subjects import Subject, SubjectSet, build_subjects
from entra_rbac.reconciler import ownership
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.hold import HoldPolicy, revocation_hold
from entra_rbac.reconciler.resolve import DirectoryOutcome

# The uid a resource that does not exist yet is planned with: it owns nothing, so every object
# at one of its names is someone else's (a Conflict), exactly as on its first reconcile.
NEW_UID = ""


@dataclass(frozen=True)
class ClusterState:
    """The cluster as listed: resources by name, every binding (kind set), namespaces, roles."""

    resources: Mapping[str, Mapping[str, Any]]
    bindings: Sequence[Mapping[str, Any]]
    namespaces: Sequence[NamespaceInfo]
    roles: RoleInventory
    # Every role's effective rules (aggregation applied), for the guardrails' privileged check.
    book: RoleBook = field(default_factory=RoleBook)

    @classmethod
    def from_lists(
        cls,
        resources: Iterable[Mapping[str, Any]],
        bindings: Iterable[Mapping[str, Any]],
        namespaces: Iterable[Mapping[str, Any]],
        cluster_roles: Iterable[Mapping[str, Any]],
        roles: Iterable[Mapping[str, Any]],
        *,
        proposed_namespaces: Iterable[NamespaceInfo] = (),
    ) -> ClusterState:
        cluster_roles, roles = list(cluster_roles), list(roles)
        found = {ns.name: ns for ns in map(NamespaceInfo.from_manifest, namespaces)}
        # A Namespace in the proposal will exist (with its labels) once the change is applied.
        found.update({ns.name: ns for ns in proposed_namespaces if not found.get(ns.name, ns).terminating})
        by_namespace: dict[str, set[str]] = {}
        for role in roles:
            meta = role.get("metadata") or {}
            by_namespace.setdefault(str(meta.get("namespace", "")), set()).add(str(meta.get("name", "")))
        return cls(
            resources={str((r.get("metadata") or {}).get("name")): r for r in resources},
            bindings=list(bindings),
            namespaces=[found[name] for name in sorted(found)],
            roles=RoleInventory(
                cluster_roles=frozenset(str((r.get("metadata") or {}).get("name")) for r in cluster_roles),
                roles={ns: frozenset(names) for ns, names in by_namespace.items()},
            ),
            book=RoleBook.from_manifests(cluster_roles, roles),
        )

    def view(self, policy: Policy) -> ClusterView:
        """What `check_guardrails` reads, as `reconciler.guard.read_cluster` gives it."""

        def rules(found: tuple[Rule, ...]) -> RoleRules:
            return RoleRules(tuple(r.to_manifest() for r in found))

        return ClusterView(
            namespaces=self.namespaces,
            cluster_roles={name: rules(r) for name, r in self.book.cluster_roles.items()},
            roles={key: rules(r) for key, r in self.book.roles.items()},
            reserved_namespaces=frozenset(policy.reserved_namespaces),
        )

    def owned_by(self, uid: str) -> list[ObservedBinding]:
        """The bindings this resource owns: its label, the managed-by label and its controller ref."""
        if not uid:
            return []
        found = []
        for binding in self.bindings:
            labels = (binding.get("metadata") or {}).get("labels") or {}
            if labels.get(OWNER_UID_LABEL) != uid or labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                continue
            observed = ObservedBinding.from_manifest(binding)
            if observed.owned_by(uid):
                found.append(observed)
        return found

    def at(self, keys: Iterable[BindingKey]) -> list[ObservedBinding]:
        wanted = set(keys)
        return [
            ObservedBinding.from_manifest(b) for b in self.bindings if BindingKey.from_manifest(b) in wanted
        ]


@dataclass(frozen=True, order=True)
class Grant:
    """One role held by one subject at one scope (namespace None: cluster-wide)."""

    subject: Subject
    role: str
    namespace: str | None

    @property
    def scope(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "cluster"


@dataclass(frozen=True)
class ResourcePlan:
    """What happens to one EntraGroupBinding: `change` is create, update, delete or none."""

    name: str
    change: str
    source: str
    plan: Plan = field(default_factory=lambda: Plan(actions=()))
    gained: tuple[Grant, ...] = ()
    lost: tuple[Grant, ...] = ()
    problems: tuple[Problem, ...] = ()
    # Names for Group subjects (display names) and, in user mode, the groups the users come from.
    names: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def changes(self) -> bool:
        return bool(self.plan.actions)


def grants(bindings: Iterable[ObservedBinding]) -> set[Grant]:
    return {Grant(s, str(b.role_ref), b.namespace) for b in bindings for s in b.subjects}


def _status(resource: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (resource or {}).get("status") or {}


def _names(spec: EntraGroupBindingSpec, resolutions: Sequence[GroupResolution]) -> dict[str, str]:
    """Group subject name -> display name, for people reading the plan."""
    prefix = spec.subjects.group_prefix
    return {
        f"{prefix}{r.group.id.lower()}": r.group.display_name
        for r in resolutions
        if r.state is GroupState.RESOLVED and r.group is not None
    }


def plan_resource(
    name: str,
    spec: EntraGroupBindingSpec,
    read: DirectoryOutcome,
    cluster: ClusterState,
    policy: Policy,
    *,
    now: datetime,
    source: str = "",
) -> ResourcePlan:
    """The plan for one proposed resource, decided as its next reconcile would decide it."""
    current = cluster.resources.get(name)
    meta = (current or {}).get("metadata") or {}
    owner = Owner(name=name, uid=str(meta.get("uid") or NEW_UID))
    marked = cluster.owned_by(owner.uid)
    change = "update" if current is not None else "create"
    violations = check_guardrails(spec, policy.guardrails, cluster.view(policy))
    if violations:
        # As the reconcile refuses it: nothing is granted from the resource, every binding goes.
        refused = plan_deletion(name, cluster)
        return replace(refused, change="update" if current else "create", source=source, problems=violations)
    if spec.suspend:
        note = "suspended: its bindings are left exactly as they are"
        return ResourcePlan(name, "none", source, problems=(Problem(Reason.SUSPENDED, note),), note=note)
    if read.error is not None or read.resolutions is None:
        raise ValueError("plan_resource needs a successful directory read")
    subjects = build_subjects(spec.subjects, read.resolutions, read.members)
    # As the reconcile counts them (the same targets, `reconciler.ownership`): only bindings at
    # this spec's targets are its own; others with its marks are strays (forgeries or leftovers),
    # deleted as cleanup once the plan succeeded. The shards written (status's record: the
    # reconcile's after a restart) bound the shards counted and decide the count in use.
    reach = ownership.targets(owner, spec, cluster.namespaces, policy)
    written = shards_written(_status(current))
    owned = ownership.own(marked, owner.uid, reach, written)
    desired = _desired(owner, spec, subjects, cluster, policy, now, written)
    wanted = shards_in_use(owner.name, desired.bindings)
    if wanted > written:
        owned = ownership.own(marked, owner.uid, reach, written, wanted)
    observed = list(owned.ours)
    foreign = [o for o in cluster.at(b.key for b in desired.bindings) if not o.owned_by(owner.uid)]
    converge = make_plan(desired, [*observed, *foreign])
    cleanup = cleanup_plan(owned.strays, desired.frozen_namespaces)
    plan = Plan(actions=converge.actions + cleanup.actions, conflicts=converge.conflicts)
    problems = [*desired.problems, *converge.problems()]
    hold = revocation_hold(
        owner,
        observed,
        converge,
        _status(current),
        meta.get("annotations") or {},
        now=now,
        policy=HoldPolicy(policy.revocation_guard_share, policy.revocation_guard_min, policy.retry_delay),
    )
    if hold is not None:
        problems.append(Problem(Reason.REVOCATION_HELD, hold.message))
    before, after = grants(marked), grants(after_plan(observed, converge))
    return ResourcePlan(
        name=name,
        change=change if plan.actions or current is None else "none",
        source=source,
        plan=plan,
        gained=tuple(sorted(after - before)),
        lost=tuple(sorted(before - after)),
        problems=sort_problems(problems),
        names=_names(spec, read.resolutions),
    )


def plan_deletion(name: str, cluster: ClusterState) -> ResourcePlan:
    """The resource goes (`--prune`, absent from the input): every binding it owns is deleted,
    and every access they give is lost."""
    meta = (cluster.resources.get(name) or {}).get("metadata") or {}
    owner = Owner(name=name, uid=str(meta.get("uid") or NEW_UID))
    observed = cluster.owned_by(owner.uid)
    nothing = DesiredState(owner=owner, bindings=(), problems=(), subjects=(), group_ids=())
    plan = make_plan(nothing, observed)
    current = cluster.resources.get(name) or {}
    prefix = str(((current.get("spec") or {}).get("subjects") or {}).get("groupPrefix") or "")
    names = {
        f"{prefix}{g['id']}": str(g["displayName"])
        for g in _status(current).get("groups") or []
        if g.get("id") and g.get("displayName")
    }
    lost = tuple(sorted(grants(observed)))
    return ResourcePlan(name, "delete", "(absent from the input)", plan, lost=lost, names=names)


def _desired(
    owner: Owner,
    spec: EntraGroupBindingSpec,
    subjects: SubjectSet,
    cluster: ClusterState,
    policy: Policy,
    now: datetime,
    shards_now: int = 1,
) -> DesiredState:
    return compute_desired(
        owner,
        spec,
        subjects,
        cluster.namespaces if spec.role_bindings else [],
        reserved_namespaces=policy.reserved_namespaces,
        allowed_roles=policy.allowed_roles,
        existing_roles=cluster.roles,
        now=now,
        sharding=policy.sharding,
        shards_now=shards_now,
    )
