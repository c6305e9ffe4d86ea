"""`explain`: every path by which a person, a group or anyone in a namespace gets access, and why.

Holds `Query`, `ExplainState` (the bindings and roles listed once), `explain` (the identity as
the API server would see it, then `core.rbac.access_paths`: the RBAC evaluation written once)
and `render`. Each path says whether the operator manages the binding (which EntraGroupBinding,
which Entra group, via which nested group) or not (made by hand or another tool; or a stray:
one carrying a resource's marks outside that resource's targets, a forgery or a leftover, which
the reconcile never counts and `reconciler.ownership` tells as it does). Group
memberships come from Entra (the operator's directory, or a directory file) when one is
configured, else only from the `--group` values given.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from entra_rbac.adapters.kube.reader import ClusterReader, CrdMissingError
from entra_rbac.constants import GROUPS_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.entra import Directory, DirectoryMember, GroupLookup, MemberType, aks_user_name
from entra_rbac.core.models import GroupRef
from entra_rbac.core.naming import BindingKey, RoleKind, binding_name, shard_index, shard_name
from entra_rbac.core.rbac import AccessPath, Identity, Request, RoleBook, access_paths
from entra_rbac.core.text import plural
from entra_rbac.errors import GroupNotFoundError
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.ownership import Claimant, claim_of, claimants

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
AUTHENTICATED = "system:authenticated"
# Settings that mean "the operator's directory is configured here" (see needs_directory).
_DIRECTORY_VARIABLES = ("ENTRA_RBAC_TENANT_ID", "AZURE_TENANT_ID")


@dataclass(frozen=True)
class Query:
    user: str | None = None
    groups: tuple[str, ...] = ()
    namespace: str | None = None
    verb: str | None = None
    resource: str | None = None
    name: str = ""

    @property
    def request(self) -> Request | None:
        if self.verb is None or self.resource is None:
            return None
        return Request.parse(self.verb, self.resource, self.namespace, self.name)


def needs_directory(query: Query) -> bool:
    """Entra is asked for memberships when there is someone to look up and a directory configured."""
    configured = any(os.environ.get(v) for v in _DIRECTORY_VARIABLES)
    return configured and (query.user is not None or bool(query.groups))


@dataclass(frozen=True)
class ExplainState:
    """What was listed, once. `namespaces` and `policy` (the operator's: reserved namespaces,
    allowlist, ENTRA_RBAC_MAX_SHARDS) say where each resource's bindings stand, as the reconcile
    decides it; a binding with a resource's marks anywhere else is none of its bindings."""

    bindings: Sequence[Mapping[str, Any]]
    book: RoleBook
    resources: Sequence[Mapping[str, Any]]
    namespaces: Sequence[NamespaceInfo] = ()
    policy: Policy = field(default_factory=Policy)

    @classmethod
    def read(cls, reader: ClusterReader, *, policy: Policy | None = None) -> ExplainState:
        try:
            resources = reader.resources()
        except CrdMissingError:
            resources = []  # no operator here: every binding is unmanaged
        namespaces = [NamespaceInfo.from_manifest(n) for n in reader.namespaces()] if resources else []
        return cls(
            reader.bindings(),
            RoleBook.from_manifests(reader.cluster_roles(), reader.roles()),
            resources,
            namespaces,
            policy or Policy(),
        )

    @property
    def max_shards(self) -> int:
        return self.policy.sharding.max_shards


@dataclass(frozen=True)
class EntraGroup:
    id: str
    display_name: str = ""
    via: tuple[str, ...] = ()  # nested groups (display names or ids) the member is in


@dataclass(frozen=True)
class Shard:
    """Shard `index` of the `of` shards a resource's binding is written as (docs/design.md,
    Subjects the operator emits: bindings too large to write); `of`: the highest shard of that
    binding standing in the cluster."""

    index: int
    of: int


@dataclass(frozen=True)
class PathView:
    path: AccessPath
    managed_by: str | None = None  # the EntraGroupBinding, when the operator manages the binding
    groups: tuple[EntraGroup, ...] = ()
    claims_managed: bool = False  # carries the operator's label without being its binding
    shard: Shard | None = None  # a managed binding written as several shards
    # A binding with a resource's marks that is not its binding, said so (a shard number past
    # ENTRA_RBAC_MAX_SHARDS): what it is instead.
    not_managed_because: str | None = None


@dataclass(frozen=True)
class Answer:
    query: Query
    identity: Identity | None
    paths: tuple[PathView, ...]
    notes: tuple[str, ...] = ()
    group_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool | None:
        return bool(self.paths) if self.query.request is not None else None


@dataclass(frozen=True)
class Ownership:
    """Whose binding it is: the owning resource's name and the shard it is of that resource's
    binding (1 for the binding itself), or why a binding carrying a resource's marks is not its."""

    managed_by: str | None = None
    shard: int = 1
    shards: int = 1  # the most shards of the resource's bindings counted as its own
    claims: bool = False  # carries the operator's label without being its binding
    not_managed_because: str | None = None


def _managed_by(binding: Mapping[str, Any], by_label: Mapping[str, Claimant], max_shards: int) -> Ownership:
    """The binding's owner as the reconcile decides it (`reconciler.ownership.claim_of`): the
    resource whose marks it carries, when it stands at one of that resource's targets (a name and
    namespace where its spec grants, or a shard of one numbered 2..`max_shards`). One with a
    resource's marks anywhere else is none of its bindings, and what it is instead is said."""
    meta = binding.get("metadata") or {}
    labels = meta.get("labels") or {}
    claims = labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
    key = BindingKey.from_manifest(binding)
    claim = claim_of(labels, meta.get("ownerReferences") or (), key, by_label)
    if claim is None:
        return Ownership(claims=claims)
    name = claim.claimant.name
    role = binding.get("roleRef") or {}
    kind: RoleKind = "ClusterRole" if role.get("kind") == "ClusterRole" else "Role"
    index = shard_index(key.name, binding_name(name, kind, str(role.get("name"))))
    if claim.own:
        return Ownership(managed_by=name, shard=index or 1, shards=min(claim.claimant.shards, max_shards))
    because = _stray_because(claim.claimant, key, index, max_shards)
    return Ownership(claims=claims, not_managed_because=because)


def _stray_because(claimant: Claimant, key: BindingKey, index: int | None, max_shards: int) -> str:
    """Why a binding carrying `claimant`'s marks at `key` is none of its bindings."""
    name = claimant.name
    stray = "; the operator deletes it as a stray (a leftover or a forgery)"
    if claimant.targets is None:
        return (
            f"it claims to be managed by EntraGroupBinding {name}, whose spec does not parse, so "
            "no binding is known to be that resource's"
        )
    if index is not None and index > max_shards:
        return (
            f"it carries the marks of EntraGroupBinding {name} at shard {index}, but a binding is "
            f"written as at most ENTRA_RBAC_MAX_SHARDS ({max_shards}) shards, so it is none of "
            f"that resource's bindings{stray}"
        )
    if index is not None and index > claimant.shards:
        return (
            f"it carries the marks of EntraGroupBinding {name} at shard {index}, but the operator "
            f"wrote that resource's bindings as {plural(claimant.shards, 'shard')} (its status, "
            f"summary.shards), so it is none of them{stray}"
        )
    where = f"in namespace {key.namespace}" if key.namespace else "cluster-wide"
    return (
        f"it claims to be managed by EntraGroupBinding {name} but is not one of its targets (its "
        f"spec grants no {key.kind} {key.name} {where}): forged or stale{stray}"
    )


def _shard_count(
    binding: Mapping[str, Any], owner: str, by_key: Mapping[BindingKey, Mapping[str, Any]], max_shards: int
) -> int:
    """How many shards the resource `owner`'s binding that `binding` is a shard of stands as:
    the highest k <= `max_shards` whose shard stands at the same place carrying the same owner
    reference (1: not sharded)."""
    key = BindingKey.from_manifest(binding)
    role = binding.get("roleRef") or {}
    kind: RoleKind = "ClusterRole" if role.get("kind") == "ClusterRole" else "Role"
    base = binding_name(owner, kind, str(role.get("name")))
    references = (binding.get("metadata") or {}).get("ownerReferences")
    count = 1
    for index in range(2, max_shards + 1):
        other = by_key.get(BindingKey.of(key.kind, key.namespace, shard_name(base, index)))
        if other is not None and (other.get("metadata") or {}).get("ownerReferences") == references:
            count = index
    return count


def _status_names(resources: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    names = {}
    for resource in resources:
        for group in (resource.get("status") or {}).get("groups") or []:
            if group.get("id") and group.get("displayName"):
                names[str(group["id"])] = str(group["displayName"])
    return names


def _prefixes(resources: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        "",
        *(str(((r.get("spec") or {}).get("subjects") or {}).get("groupPrefix") or "") for r in resources),
    }


def _candidate_groups(state: ExplainState, prefixes: set[str]) -> set[str]:
    """Entra group ids the bindings refer to: managed bindings' groups, and GUID-named Group subjects."""
    found: set[str] = set()
    for binding in state.bindings:
        annotation = ((binding.get("metadata") or {}).get("annotations") or {}).get(GROUPS_ANNOTATION, "")
        found.update(g for g in annotation.split(",") if g)
        for subject in binding.get("subjects") or ():
            if subject.get("kind") == "Group":
                name = str(subject.get("name", ""))
                for prefix in prefixes:
                    bare = name.removeprefix(prefix).lower()
                    if name.startswith(prefix) and _GUID.match(bare):
                        found.add(bare)
    return found


def _is(member: DirectoryMember, user: str | None, group: str | None) -> bool:
    if user is not None:
        return user in {aks_user_name(member), member.id, member.user_principal_name}
    return member.type is MemberType.GROUP and group is not None and member.id == group.lower()


async def _memberships(
    directory: Directory, candidates: set[str], user: str | None, group: str | None
) -> dict[str, tuple[str, ...]]:
    """Candidate group id -> the nested groups through which the member belongs (empty: directly
    or unknown), for every candidate the user (or group) is a transitive member of."""
    members: dict[str, Sequence[DirectoryMember]] = {}
    for gid in sorted(candidates):
        try:
            members[gid] = await directory.transitive_members(gid)
        except GroupNotFoundError:
            continue
    inside = {gid for gid, found in members.items() if any(_is(m, user, group) for m in found)}
    via: dict[str, tuple[str, ...]] = {}
    for gid in sorted(inside):
        nested = []
        for member in members[gid]:
            if member.type is MemberType.GROUP and (group is None or member.id != group.lower()):
                found = members.get(member.id)
                if found is None:
                    try:
                        found = members[member.id] = await directory.transitive_members(member.id)
                    except GroupNotFoundError:
                        continue
                if any(_is(m, user, group) for m in found):
                    nested.append(member.id)
        via[gid] = tuple(sorted(nested))
    return via


async def _names(directory: Directory, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    lookups = [GroupLookup(ref=GroupRef.model_validate({"id": gid})) for gid in sorted(ids)]
    return {
        r.group.id: r.group.display_name
        for r in await directory.lookup_groups(lookups)
        if r.group is not None
    }


async def explain(query: Query, state: ExplainState, directory: Directory | None) -> Answer:
    prefixes = _prefixes(state.resources)
    names = _status_names(state.resources)
    notes: list[str] = []
    via: dict[str, tuple[str, ...]] = {}
    identity: Identity | None = None
    if query.user is not None or query.groups:
        groups = set(query.groups)
        if directory is not None:
            candidates = _candidate_groups(state, prefixes)
            lookups = [(query.user, None)] if query.user is not None else [(None, g) for g in query.groups]
            for user, group in lookups:
                for gid, nested in (await _memberships(directory, candidates, user, group)).items():
                    via[gid] = nested
                    groups.update(f"{prefix}{gid}" for prefix in prefixes)
            names.update(await _names(directory, {*via, *(n for ns in via.values() for n in ns)}))
        else:
            notes.append("Entra was not asked: group memberships are only the --group values given")
        if query.user is not None:
            groups.add(AUTHENTICATED)  # every signed-in user carries it, as the authenticator adds it
        identity = Identity(user=query.user, groups=frozenset(groups))
    paths = access_paths(
        identity, state.bindings, state.book, request=query.request, namespace=query.namespace
    )
    by_label = claimants(state.resources, state.namespaces, state.policy)
    by_key: dict[BindingKey, Mapping[str, Any]] | None = None
    views = []
    for path in paths:
        ownership = _managed_by(path.binding, by_label, state.max_shards)
        managed = ownership.managed_by
        shard = None
        if managed is not None:
            if by_key is None:
                by_key = {BindingKey.from_manifest(b): b for b in state.bindings}
            count = max(_shard_count(path.binding, managed, by_key, ownership.shards), ownership.shard)
            shard = Shard(ownership.shard, count) if count > 1 else None
        annotation = ((path.binding.get("metadata") or {}).get("annotations") or {}).get(
            GROUPS_ANNOTATION, ""
        )
        entra = [g for g in annotation.split(",") if g] if managed else []
        if identity is not None:
            entra = [g for g in entra if g in via or identity.user is None]
        origin = tuple(
            EntraGroup(g, names.get(g, ""), tuple(names.get(n, n) for n in via.get(g, ()))) for g in entra
        )
        views.append(PathView(path, managed, origin, ownership.claims, shard, ownership.not_managed_because))
    return Answer(query, identity, tuple(views), tuple(notes), names)


# --- output ---------------------------------------------------------------------------------


def _who(answer: Answer) -> str:
    q = answer.query
    if q.user is not None:
        who = f"user {q.user}"
    elif q.groups:
        who = f"group {', '.join(q.groups)}"
    else:
        who = "anyone"
    if answer.identity is not None and answer.identity.groups:
        listed = sorted(answer.identity.groups)
        who += f" (groups: {', '.join(_group_text(g, answer.group_names) for g in listed)})"
    return who


def _group_text(name: str, names: Mapping[str, str]) -> str:
    bare = name.rsplit(":", 1)[-1]
    return f"{name} {names[bare]!r}" if bare in names else name


def _origin(view: PathView) -> str:
    if view.not_managed_because is not None:
        return f"unmanaged: {view.not_managed_because}"
    if view.managed_by is None:
        forged = " (it carries the operator's label but is not its binding)" if view.claims_managed else ""
        return f"unmanaged: made by hand or another tool{forged}"
    groups = "; ".join(
        f"Entra group {g.display_name or g.id} ({g.id})"
        + (f" via nested group {', '.join(g.via)}" if g.via else "")
        for g in view.groups
    )
    shard = f" (shard {view.shard.index} of {view.shard.of})" if view.shard is not None else ""
    return f"managed by EntraGroupBinding {view.managed_by}{shard}" + (f", {groups}" if groups else "")


def _subject_text(subject: Mapping[str, Any]) -> str:
    namespace = f"{subject['namespace']}/" if subject.get("namespace") else ""
    return f"{subject.get('kind')} {namespace}{subject.get('name')}"


def render(answer: Answer, output: str) -> str:
    if output == "json":
        return as_json(answer)
    return as_markdown(answer) if output == "markdown" else as_text(answer)


def _verdict(answer: Answer) -> str:
    request = answer.query.request
    if request is None:
        return f"{len(answer.paths)} binding{'s' if len(answer.paths) != 1 else ''} grant access."
    if answer.allowed:
        return f"Allowed: {request} (by {len(answer.paths)} binding{'s' if len(answer.paths) != 1 else ''})."
    return f"Denied: no binding allows {request}."


def as_text(answer: Answer) -> str:
    where = f" in namespace {answer.query.namespace}" if answer.query.namespace else ""
    lines = [f"Access of {_who(answer)}{where}:"]
    for view in answer.paths:
        path = view.path
        where_bound = f"{path.key.namespace}/{path.key.name}" if path.key.namespace else path.key.name
        missing = " (missing: grants nothing)" if path.role_missing else ""
        lines.append(f"- {path.key.kind} {where_bound}: {path.role_ref}{missing}, {path.scope}")
        lines.append(f"    {_origin(view)}")
        lines.append(f"    subjects: {', '.join(_subject_text(s) for s in path.subjects)}")
        lines.extend(f"    rule: {rule}" for rule in path.rules)
    lines.extend(f"Note: {note}" for note in answer.notes)
    lines.append(_verdict(answer))
    return "\n".join(lines) + "\n"


def as_markdown(answer: Answer) -> str:
    where = f" in namespace `{answer.query.namespace}`" if answer.query.namespace else ""
    lines = [
        f"### Access of {_who(answer)}{where}",
        "",
        "| binding | role | scope | origin | rules |",
        "|---|---|---|---|---|",
    ]
    for view in answer.paths:
        p = view.path
        rules = "<br>".join(str(r) for r in p.rules)
        where = f"{p.key.namespace}/{p.key.name}" if p.key.namespace else p.key.name
        lines.append(f"| {p.key.kind} `{where}` | {p.role_ref} | {p.scope} | {_origin(view)} | {rules} |")
    lines.extend(["", *(f"> {n}" for n in answer.notes), f"**{_verdict(answer)}**", ""])
    return "\n".join(lines)


def as_json(answer: Answer) -> str:
    q = answer.query
    document = {
        "query": {
            "user": q.user,
            "groups": list(q.groups),
            "namespace": q.namespace,
            "verb": q.verb,
            "resource": q.resource,
        },
        "groups": sorted(answer.identity.groups) if answer.identity else [],
        "allowed": answer.allowed,
        "paths": [
            {
                "kind": v.path.key.kind,
                "namespace": v.path.key.namespace or None,
                "name": v.path.key.name,
                "roleRef": v.path.role_ref,
                "roleMissing": v.path.role_missing,
                "managedBy": v.managed_by,
                "claimsManaged": v.claims_managed,
                "shard": {"index": v.shard.index, "of": v.shard.of} if v.shard is not None else None,
                "notManagedBecause": v.not_managed_because,
                "entraGroups": [
                    {"id": g.id, "displayName": g.display_name, "via": list(g.via)} for g in v.groups
                ],
                "subjects": [dict(s) for s in v.path.subjects],
                "rules": [r.to_manifest() for r in v.path.rules],
            }
            for v in answer.paths
        ],
        "notes": list(answer.notes),
    }
    return json.dumps(document, indent=2) + "\n"
