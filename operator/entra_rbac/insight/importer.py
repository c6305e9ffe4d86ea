"""`import`: the EntraGroupBindings that would grant what hand-made bindings grant today
(docs/migration.md; docs/design.md, Import).

Holds the pure part of `kubectl entra import`: which listed bindings are candidates
(`classify`), how they are grouped into resources (`group_candidates`), and the proof that each
resource's desired bindings, computed by the operator's own `compute_desired`, are exactly the
bindings it replaces (`prove`). `import_bindings` runs the three. No I/O: the command
(`insight.import_command`) lists the cluster, reads Entra for user mode, and prints.

The grouping rule: one resource per set of subjects (the Entra groups of a binding, or in user
mode the group whose members its users are), holding every role that set is granted, a
ClusterRole bound cluster-wide under `clusterRoleBindings`, a role bound in namespaces under
`roleBindings` with all of its namespaces merged into one entry. A binding already at a name
the operator gives its own bindings (`egb:<resource>:...`, e.g. one kept by `release-bindings`)
goes to that resource, so it can be adopted in place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from entra_rbac.constants import (
    API_VERSION,
    DEFAULT_RESERVED_NAMESPACES,
    GROUP,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from entra_rbac.core.desired import AllowedRoles, NamespaceInfo, Owner, RoleRef, compute_desired
from entra_rbac.core.entra import DirectoryMember
from entra_rbac.core.guardrails import ClusterView, Guardrails, check_guardrails
from entra_rbac.core.models import MAX_GROUPS, MAX_NAMESPACES, EntraGroupBindingSpec, SubjectKind, error_path
from entra_rbac.core.naming import BindingKey, RoleKind, binding_name
from entra_rbac.core.subjects import Subject, SubjectSet, group_subjects, user_subjects

# On the EntraGroupBinding it writes: which hand-made bindings it replaces (for reviewers).
REPLACES_ANNOTATION = f"{GROUP}/replaces"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The uid the proof computes with: the desired bindings' names and subjects do not depend on it.
_PROOF_UID = "import"
_BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"
OUTSIDE_GROUP = "outside --group"
# Cluster add-ons (kube-addon-manager, as managed clusters use it) re-create what carries it.
ADDON_MANAGER_LABEL = "addonmanager.kubernetes.io/mode"


@dataclass(frozen=True)
class ImportOptions:
    """What to import. `namespaces`: only RoleBindings there (and no ClusterRoleBinding);
    `groups`: only bindings granting one of these groups (in user mode: their members)."""

    namespaces: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    group_prefix: str = ""
    user_prefix: str = ""


@dataclass(frozen=True)
class HandMade:
    """A listed binding that grants Entra subjects only."""

    key: BindingKey
    role_ref: RoleRef
    subjects: frozenset[Subject]
    manifest: Mapping[str, Any] = field(compare=False, repr=False)

    def describe(self) -> str:
        where = f"{self.key.namespace}/" if self.key.namespace else ""
        return f"{self.key.kind} {where}{self.key.name}"

    @property
    def target(self) -> tuple[str, str, RoleRef]:
        """Where and what it grants: kind, namespace, roleRef (a desired binding's counterpart)."""
        return (self.key.kind, self.key.namespace, self.role_ref)


@dataclass(frozen=True)
class Candidate:
    binding: HandMade
    mode: SubjectKind
    # Group mode: the group ids its subjects name. User mode: its subjects' user names.
    names: frozenset[str]


@dataclass(frozen=True)
class Refusal:
    """A binding that is not imported, and why."""

    binding: str
    reason: str

    def __str__(self) -> str:
        return f"{self.binding}: {self.reason}"


@dataclass(frozen=True)
class Imported:
    """One EntraGroupBinding to write, the bindings it replaces, and those it adopts."""

    name: str
    spec: Mapping[str, Any]
    replaces: tuple[HandMade, ...]
    # Those standing at a name this resource targets: handed over in place by annotation.
    adopts: tuple[HandMade, ...]

    @property
    def leftovers(self) -> tuple[HandMade, ...]:
        """The replaced bindings that stay beside the operator's own: delete them once Ready."""
        return tuple(b for b in self.replaces if b not in self.adopts)

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.name,
                "annotations": {REPLACES_ANNOTATION: ", ".join(b.describe() for b in self.replaces)},
            },
            "spec": dict(self.spec),
        }


@dataclass(frozen=True)
class ImportResult:
    resources: tuple[Imported, ...]
    refused: tuple[Refusal, ...]
    skipped: Mapping[str, int]  # why -> how many bindings (managed, system, no Entra subject, ...)


def is_guid(text: str) -> bool:
    return _GUID.match(text) is not None


def _describe(obj: Mapping[str, Any]) -> str:
    key = BindingKey.from_manifest(obj)
    return f"{key.kind} {key.namespace + '/' if key.namespace else ''}{key.name}"


def _skip_reason(obj: Mapping[str, Any]) -> str | None:
    """Why a binding is no candidate at all, without looking at its subjects."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    owners = meta.get("ownerReferences") or []
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE or any(o.get("kind") == KIND for o in owners):
        return "managed by the operator"
    if str(meta.get("name", "")).startswith("system:") or labels.get(_BOOTSTRAP_LABEL):
        return "Kubernetes' own"
    return None


def _foreign_owner(obj: Mapping[str, Any]) -> str | None:
    """Another owner of the binding: what would re-create or remove it after the migration."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if ADDON_MANAGER_LABEL in labels:
        return (
            f"it is managed by the cluster's addon manager ({ADDON_MANAGER_LABEL}), which would re-create it"
        )
    tool = labels.get(MANAGED_BY_LABEL)
    if tool:
        return f"it is managed by {tool} ({MANAGED_BY_LABEL}); migrate it in that tool's source"
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            return f"it is controlled by {owner.get('kind')} {owner.get('name')!r}; migrate it there"
    return None


def _entra_kind(subject: Subject, options: ImportOptions) -> str | None:
    """'Group' or 'User' when the subject is one the operator could emit, else None."""
    if subject.kind == "Group" and subject.name.startswith(options.group_prefix):
        rest = subject.name[len(options.group_prefix) :]
        return "Group" if is_guid(rest) and rest == rest.lower() else None
    if subject.kind == "User" and subject.name.startswith(options.user_prefix):
        rest = subject.name[len(options.user_prefix) :]
        return "User" if "@" in rest or (is_guid(rest) and rest == rest.lower()) else None
    return None


def _upper_case_group(subject: Subject, options: ImportOptions) -> bool:
    rest = subject.name.removeprefix(options.group_prefix)
    return subject.kind == "Group" and is_guid(rest) and rest != rest.lower()


def classify(obj: Mapping[str, Any], options: ImportOptions) -> Candidate | Refusal | str:
    """A candidate, a refusal (it grants Entra subjects but cannot be imported whole), or the
    reason it is no candidate at all (a key of `ImportResult.skipped`)."""
    skip = _skip_reason(obj)
    if skip is not None:
        return skip
    key = BindingKey.from_manifest(obj)
    if options.namespaces and key.namespace not in options.namespaces:
        return "outside --namespace"
    subjects = [Subject.from_manifest(s) for s in obj.get("subjects") or []]
    kinds = {s: _entra_kind(s, options) for s in subjects}
    entra = [s for s, kind in kinds.items() if kind is not None]
    if not entra:
        upper = [s.name for s in subjects if _upper_case_group(s, options)]
        if upper:
            return Refusal(
                _describe(obj),
                f"Group {upper[0]!r} is an object id in upper case: AKS sends group ids in lower case, "
                "so it grants nothing there and the operator would bind another name",
            )
        return "no Entra subject"
    if not _selected(entra, options):
        return OUTSIDE_GROUP
    others = [s for s, kind in kinds.items() if kind is None]
    if others:
        named = ", ".join(f"{s.kind} {s.name!r}" for s in others[:3])
        return Refusal(
            _describe(obj),
            f"it also grants subjects that are not Entra groups or users ({named}); "
            "the operator emits Entra subjects only, so it is not importable whole",
        )
    found_kinds = {kinds[s] for s in entra}
    if len(found_kinds) > 1:
        return Refusal(
            _describe(obj),
            "it grants both Entra groups and users; a resource binds one kind (spec.subjects.kind), "
            "so it is not importable whole",
        )
    foreign = _foreign_owner(obj)
    if foreign is not None:
        return Refusal(_describe(obj), foreign)
    role_ref = obj.get("roleRef") or {}
    binding = HandMade(
        key=key,
        role_ref=RoleRef(str(role_ref.get("kind", "")), str(role_ref.get("name", ""))),
        subjects=frozenset(entra),
        manifest=obj,
    )
    if found_kinds == {"Group"}:
        names = frozenset(s.name[len(options.group_prefix) :] for s in entra)
        return Candidate(binding, SubjectKind.GROUP, names)
    return Candidate(binding, SubjectKind.USER, frozenset(s.name for s in entra))


def _selected(entra: Sequence[Subject], options: ImportOptions) -> bool:
    """With --group, only bindings naming one of those groups (user-mode bindings are matched to
    the groups later, by their members)."""
    if not options.groups:
        return True
    wanted = {f"{options.group_prefix}{g}" for g in options.groups}
    return any(s.kind == "User" or s.name in wanted for s in entra)


# --- grouping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    """One resource to write: a forced name (the binding already at its target), the mode, the
    Entra groups."""

    name: str | None
    mode: SubjectKind
    group_ids: tuple[str, ...]


def adopting_resource(binding: HandMade) -> str | None:
    """The resource whose target name the binding already stands at (`egb:<resource>:...`)."""
    parts = binding.key.name.split(":")
    if len(parts) < 4 or parts[0] != "egb" or binding.role_ref.kind not in ("ClusterRole", "Role"):
        return None
    resource = parts[1]
    kind: RoleKind = "ClusterRole" if binding.role_ref.kind == "ClusterRole" else "Role"
    if binding_name(resource, kind, binding.role_ref.name) != binding.key.name:
        return None
    if binding.key.kind == "ClusterRoleBinding" and kind != "ClusterRole":
        return None
    return resource


def members_names(members: Mapping[str, Sequence[DirectoryMember]], prefix: str) -> dict[str, frozenset[str]]:
    """Per group id, the User subjects the operator would emit for its transitive members."""
    return {gid: frozenset(s.name for s in user_subjects(found, prefix)) for gid, found in members.items()}


def _user_group(
    candidate: Candidate, groups: Sequence[str], names: Mapping[str, frozenset[str]]
) -> str | Refusal | None:
    """The --group whose members are exactly the binding's users, why there is none, or None when
    its users are in none of the groups (a binding of other people: outside --group)."""
    if not groups:
        return Refusal(
            candidate.binding.describe(),
            "it grants Entra users; user mode binds a group's members: give the group with --group "
            "(and a directory) to import it",
        )
    for gid in groups:
        if names.get(gid) == candidate.names:
            return gid
    if not any(names.get(g, frozenset()) & candidate.names for g in groups):
        return None
    closest = min(groups, key=lambda g: len(names.get(g, frozenset()) ^ candidate.names))
    found = names.get(closest, frozenset())
    missing, extra = sorted(candidate.names - found), sorted(found - candidate.names)
    detail = "; ".join(
        part
        for part in (
            f"bound but not members: {', '.join(missing[:3])}" if missing else "",
            f"members not bound: {', '.join(extra[:3])}" if extra else "",
        )
        if part
    )
    return Refusal(
        candidate.binding.describe(),
        f"its users are not exactly the members of any --group (closest {closest}: {detail})",
    )


def group_candidates(
    candidates: Iterable[Candidate], options: ImportOptions, members: Mapping[str, Sequence[DirectoryMember]]
) -> tuple[dict[_Key, list[HandMade]], list[Refusal]]:
    """Candidates by the resource that will replace them (see the module's grouping rule)."""
    names = members_names(members, options.user_prefix)
    groups: dict[_Key, list[HandMade]] = {}
    refused: list[Refusal] = []
    for candidate in candidates:
        if candidate.mode is SubjectKind.GROUP:
            ids = tuple(sorted(candidate.names))
        else:
            found = _user_group(candidate, options.groups, names)
            if found is None:
                refused.append(Refusal(candidate.binding.describe(), OUTSIDE_GROUP))
                continue
            if isinstance(found, Refusal):
                refused.append(found)
                continue
            ids = (found,)
        if len(ids) > MAX_GROUPS:
            refused.append(
                Refusal(candidate.binding.describe(), f"it names {len(ids)} groups, more than {MAX_GROUPS}")
            )
            continue
        key = _Key(adopting_resource(candidate.binding), candidate.mode, ids)
        groups.setdefault(key, []).append(candidate.binding)
    return groups, refused


def resource_name(key: _Key) -> str:
    """A deterministic DNS-1123 name: the forced one, `group-<id>`, `members-<id>` or, for several
    groups, `groups-<hash>` (rename freely before applying: only binding names derive from it)."""
    if key.name is not None:
        return key.name
    if len(key.group_ids) == 1:
        head = "members" if key.mode is SubjectKind.USER else "group"
        return f"{head}-{key.group_ids[0]}"
    digest = hashlib.sha256(",".join(key.group_ids).encode()).hexdigest()[:12]
    return f"{'members' if key.mode is SubjectKind.USER else 'groups'}-{digest}"


def build_spec(key: _Key, bindings: Sequence[HandMade], options: ImportOptions) -> dict[str, Any]:
    """The spec granting what `bindings` grant: ClusterRoles cluster-wide, each namespaced role
    once with its namespaces merged (sorted; split at the CRD's limit per entry)."""
    cluster_roles = sorted({b.role_ref.name for b in bindings if b.key.kind == "ClusterRoleBinding"})
    by_role: dict[RoleRef, set[str]] = {}
    for binding in bindings:
        if binding.key.kind == "RoleBinding":
            by_role.setdefault(binding.role_ref, set()).add(binding.key.namespace)
    role_bindings = []
    for role in sorted(by_role):
        field_name = "clusterRole" if role.kind == "ClusterRole" else "role"
        namespaces = sorted(by_role[role])
        for start in range(0, len(namespaces), MAX_NAMESPACES):
            role_bindings.append(
                {field_name: role.name, "namespaces": namespaces[start : start + MAX_NAMESPACES]}
            )
    subjects: dict[str, str] = {}
    if key.mode is SubjectKind.USER:
        subjects["kind"] = "User"
        if options.user_prefix:
            subjects["userPrefix"] = options.user_prefix
    elif options.group_prefix:
        subjects["groupPrefix"] = options.group_prefix
    spec: dict[str, Any] = {"groups": [{"id": gid} for gid in key.group_ids]}
    if subjects:
        spec["subjects"] = subjects
    if cluster_roles:
        spec["clusterRoleBindings"] = [{"clusterRole": name} for name in cluster_roles]
    if role_bindings:
        spec["roleBindings"] = role_bindings
    return spec


# --- the proof ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """What the operator would bind for a resource, compared with what it replaces."""

    differences: tuple[str, ...]


def prove(
    name: str,
    spec: EntraGroupBindingSpec,
    replaces: Sequence[HandMade],
    subject_set: SubjectSet,
    namespaces: Sequence[NamespaceInfo],
    *,
    allowed_roles: AllowedRoles | None = None,
    reserved_namespaces: Collection[str] = DEFAULT_RESERVED_NAMESPACES,
) -> Proof:
    """Run the operator's `compute_desired` on the spec and compare binding by binding: the same
    kind, namespace and roleRef with the same subjects, nothing missing, nothing extra."""
    desired = compute_desired(
        Owner(name, _PROOF_UID),
        spec,
        subject_set,
        namespaces,
        reserved_namespaces=reserved_namespaces,
        allowed_roles=allowed_roles,
    )
    wanted: dict[tuple[str, str, RoleRef], frozenset[Subject]] = {
        (b.kind, b.namespace or "", b.role_ref): frozenset(b.subjects) for b in desired.bindings
    }
    problems = "; ".join(f"{p.reason.value}: {p.message}" for p in desired.problems)
    differences: list[str] = []
    for binding in replaces:
        got = wanted.get(binding.target)
        if got is None:
            why = f" ({problems})" if problems else ""
            differences.append(
                f"{binding.describe()} ({binding.role_ref}): the resource would grant nothing there{why}"
            )
        elif got != binding.subjects:
            lost = sorted(s.name for s in binding.subjects - got)
            gained = sorted(s.name for s in got - binding.subjects)
            differences.append(
                f"{binding.describe()} ({binding.role_ref}): subjects differ (lost {lost}, gained {gained})"
            )
    replaced = {b.target for b in replaces}
    for target in sorted(set(wanted) - replaced, key=lambda t: (t[0], t[1], str(t[2]))):
        where = f"namespace {target[1]}" if target[1] else "cluster-wide"
        differences.append(
            f"the resource would also grant {target[2]} {where}, which no binding it replaces grants"
        )
    return Proof(tuple(differences))


def subject_set_for(
    key: _Key, options: ImportOptions, members: Mapping[str, Sequence[DirectoryMember]]
) -> SubjectSet:
    """The subjects the operator would emit for the resource, by the core's own functions."""
    if key.mode is SubjectKind.GROUP:
        return SubjectSet(group_subjects(key.group_ids, options.group_prefix), key.group_ids)
    everyone = [m for gid in key.group_ids for m in members.get(gid, ())]
    return SubjectSet(user_subjects(everyone, options.user_prefix), key.group_ids)


def import_bindings(
    bindings: Iterable[Mapping[str, Any]],
    namespaces: Sequence[NamespaceInfo],
    options: ImportOptions,
    *,
    existing_resources: Mapping[str, Mapping[str, Any]] | None = None,
    members: Mapping[str, Sequence[DirectoryMember]] | None = None,
    allowed_roles: AllowedRoles | None = None,
    reserved_namespaces: Collection[str] = DEFAULT_RESERVED_NAMESPACES,
    guardrails: tuple[Guardrails, ClusterView] | None = None,
) -> ImportResult:
    """Classify, group, build and prove. `members`: each --group's transitive members (user mode);
    `existing_resources`: the live EntraGroupBindings' specs by name (a name is not reused, unless
    the live resource is the very one this import writes: applied already, so `--cleanup` can
    still be printed after the apply); `guardrails`: those in force and the cluster they judge (a
    resource outside them would grant nothing at all, so it is refused here)."""
    members = members or {}
    existing = dict(existing_resources or {})
    candidates: list[Candidate] = []
    refused: list[Refusal] = []
    skipped: dict[str, int] = {}
    for obj in bindings:
        found = classify(obj, options)
        if isinstance(found, Candidate):
            candidates.append(found)
        elif isinstance(found, Refusal):
            refused.append(found)
        else:
            skipped[found] = skipped.get(found, 0) + 1
    grouped, unmatched = group_candidates(candidates, options, members)
    for refusal in unmatched:
        if refusal.reason == OUTSIDE_GROUP:
            skipped[OUTSIDE_GROUP] = skipped.get(OUTSIDE_GROUP, 0) + 1
        else:
            refused.append(refusal)
    resources: list[Imported] = []
    taken: set[str] = set()
    for key in sorted(grouped, key=lambda k: (resource_name(k), k.mode, k.group_ids)):
        replaces = tuple(sorted(grouped[key], key=lambda b: b.key))
        made = _build(key, replaces, options, members, namespaces, allowed_roles, reserved_namespaces)
        if isinstance(made, Imported) and guardrails is not None:
            made = _within(made, *guardrails)
        if isinstance(made, Imported):
            made = _unclaimed(made, taken, existing)
        if isinstance(made, Imported):
            taken.add(made.name)
            resources.append(made)
        else:
            refused.extend(made)
    return ImportResult(
        tuple(resources), tuple(sorted(refused, key=lambda r: r.binding)), dict(sorted(skipped.items()))
    )


def _build(
    key: _Key,
    replaces: tuple[HandMade, ...],
    options: ImportOptions,
    members: Mapping[str, Sequence[DirectoryMember]],
    namespaces: Sequence[NamespaceInfo],
    allowed_roles: AllowedRoles | None,
    reserved_namespaces: Collection[str],
) -> Imported | list[Refusal]:
    name = resource_name(key)

    def refuse(reason: str) -> list[Refusal]:
        return [Refusal(b.describe(), reason) for b in replaces]

    raw = build_spec(key, replaces, options)
    try:
        spec = EntraGroupBindingSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        return refuse(f"the resource would be invalid: {error_path(first['loc'])}: {first['msg']}")
    proof = prove(
        name,
        spec,
        replaces,
        subject_set_for(key, options, members),
        namespaces,
        allowed_roles=allowed_roles,
        reserved_namespaces=reserved_namespaces,
    )
    if proof.differences:
        return refuse(f"EntraGroupBinding {name!r} would not grant the same: {'; '.join(proof.differences)}")
    return Imported(name, raw, replaces, tuple(b for b in replaces if adopting_resource(b) == name))


def _within(made: Imported, guardrails: Guardrails, cluster: ClusterView) -> Imported | list[Refusal]:
    """The resource, unless the reconcile's own guardrail check would refuse it as a whole."""
    violations = check_guardrails(EntraGroupBindingSpec.model_validate(made.spec), guardrails, cluster)
    if not violations:
        return made
    text = "; ".join(f"{v.reason.value}: {v.field}: {v.message}" for v in violations)
    return [
        Refusal(
            b.describe(), f"the operator would refuse EntraGroupBinding {made.name!r} as a whole ({text})"
        )
        for b in made.replaces
    ]


def _unclaimed(
    made: Imported, taken: Collection[str], existing: Mapping[str, Mapping[str, Any]]
) -> Imported | list[Refusal]:
    """The resource, unless its name is someone else's: another resource of this import, or a live
    EntraGroupBinding asking for something else."""
    live = existing.get(made.name)
    if made.name not in taken and (live is None or _same_spec(live, made.spec)):
        return made
    return [
        Refusal(
            b.describe(),
            f"EntraGroupBinding {made.name!r} already exists with another spec: "
            f"grant this in {made.name!r} itself, or rename",
        )
        for b in made.replaces
    ]


def _same_spec(live: Mapping[str, Any], raw: Mapping[str, Any]) -> bool:
    try:
        return EntraGroupBindingSpec.model_validate(live) == EntraGroupBindingSpec.model_validate(raw)
    except ValidationError:
        return False
