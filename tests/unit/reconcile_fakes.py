"""In-memory fakes for the reconciler's unit tests: a Kubernetes API (`FakeCluster`, the
`core.cluster.Cluster` protocol), an Entra directory (`FakeDirectory`, `core.entra.Directory`), a
clock that moves only when told, and `World`, which wires them into a `ReconcileContext`.

The fakes keep the API server's rules the reconciler relies on: create refuses a taken name
(409 AlreadyExists), delete honours its uid and resourceVersion preconditions, a merge patch
carrying a stale resourceVersion is refused (409 Conflict), and every write gets a new
resourceVersion. Each binding write is recorded in order (`writes`), so tests can assert what
was written and when; `fail_next` makes the next write of one verb and key fail.
"""

from __future__ import annotations

import copy
import itertools
import zlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn

from entra_rbac.adapters.kube import errors
from entra_rbac.constants import API_VERSION, KIND, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.core.events import EventDraft, event_manifest
from entra_rbac.core.models import GroupState
from entra_rbac.core.naming import BindingKey, BindingKind
from entra_rbac.core.plan import Action
from entra_rbac.core.plan import Verb as PlanVerb
from entra_rbac.errors import DirectoryError, GroupNotFoundError, KubeError
from entra_rbac.metrics import OperatorMetrics
from entra_rbac.reconciler import Outcome, Policy, ReconcileContext, reconcile

NAME = "team"
UID = "aaaaaaaa-0000-0000-0000-000000000001"
START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

Verb = Literal["create", "patch", "delete"]


def guid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies `application/merge-patch+json`."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@dataclass
class FakeCluster:
    """The part of the Kubernetes API the reconciler uses, in memory."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[BindingKey, dict[str, Any]] = field(default_factory=dict)
    namespaces: list[NamespaceInfo] = field(default_factory=list)
    cluster_roles: set[str] = field(default_factory=lambda: {"view", "edit", "admin"})
    roles: dict[str, set[str]] = field(default_factory=dict)
    # Rules of a role by name (ClusterRoles) or (namespace, name) (Roles); none when unset.
    rules: dict[str | tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # ClusterRole labels and aggregation selectors (matchLabels only), for aggregation.
    role_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    aggregation: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # Every binding write in order, failed ones included: (verb, key, took effect).
    writes: list[tuple[Verb, BindingKey, bool]] = field(default_factory=list)
    status_writes: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    event_patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[tuple[Verb, BindingKey], KubeError] = field(default_factory=dict)
    unavailable: KubeError | None = None  # every call fails with it while set
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    # --- arranging the world ---
    def fail_next(self, verb: Verb, key: BindingKey, error: KubeError) -> None:
        self.failures[(verb, key)] = error

    def put_binding(self, manifest: Mapping[str, Any]) -> BindingKey:
        """Store an object as someone else would have written it (no write recorded)."""
        key = BindingKey.from_manifest(manifest)
        stored = copy.deepcopy(dict(manifest))
        stored["kind"] = key.kind
        stored["metadata"].setdefault("uid", f"uid-{next(self._versions)}")
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        self.bindings[key] = stored
        return key

    def owned_keys(self, owner_uid: str = UID) -> list[BindingKey]:
        return sorted(k for k, b in self.bindings.items() if _labelled_for(b, owner_uid))

    def snapshot(self) -> dict[BindingKey, dict[str, Any]]:
        return copy.deepcopy(self.bindings)

    # --- the Cluster protocol ---
    async def get_resource(self, name: str) -> dict[str, Any] | None:
        self._check()
        found = self.resources.get(name)
        return copy.deepcopy(found) if found is not None else None

    async def patch_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        resource = self.resources[name]
        resource["status"] = merge_patch(resource.get("status") or {}, status)
        self.status_writes += 1
        return copy.deepcopy(resource)

    async def list_owned_bindings(self, owner_uid: str) -> list[dict[str, Any]]:
        self._check()
        return [copy.deepcopy(b) for k, b in sorted(self.bindings.items()) if _labelled_for(b, owner_uid)]

    async def get_binding(self, kind: BindingKind, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._check()
        found = self.bindings.get(BindingKey.of(kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def create_binding(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        key = BindingKey.from_manifest(manifest)
        self._write("create", key)
        if key in self.bindings:
            self._failed(
                "create", key, errors.AlreadyExistsError("taken", status=409, reason=errors.ALREADY_EXISTS)
            )
        stored = copy.deepcopy(dict(manifest))
        stored["metadata"]["uid"] = f"uid-{next(self._versions)}"
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        self.bindings[key] = stored
        self.writes.append(("create", key, True))
        return copy.deepcopy(stored)

    async def patch_binding(
        self, kind: BindingKind, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        key = BindingKey.of(kind, namespace, name)
        self._write("patch", key)
        current = self.bindings.get(key)
        if current is None:
            self._failed("patch", key, errors.NotFoundError("gone", status=404, reason=errors.NOT_FOUND))
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            self._failed("patch", key, errors.ConflictError("stale", status=409, reason=errors.CONFLICT))
        patched = merge_patch(current, patch)
        patched["metadata"]["resourceVersion"] = str(next(self._versions))
        self.bindings[key] = patched
        self.writes.append(("patch", key, True))
        return copy.deepcopy(patched)

    async def delete_binding(
        self, kind: BindingKind, namespace: str | None, name: str, *, uid: str, resource_version: str | None
    ) -> bool:
        key = BindingKey.of(kind, namespace, name)
        self._write("delete", key)
        current = self.bindings.get(key)
        if current is None:
            self.writes.append(("delete", key, False))
            return False
        meta = current["metadata"]
        if meta["uid"] != uid or (resource_version and resource_version != meta["resourceVersion"]):
            self._failed(
                "delete", key, errors.ConflictError("precondition", status=409, reason=errors.CONFLICT)
            )
        del self.bindings[key]
        self.writes.append(("delete", key, True))
        return True

    async def write_bindings(self, actions: Sequence[Action]) -> list[KubeError | None]:
        """As KubeAdapter's: each action through the single writes above (so a test's override
        of one of them applies), its error kept and the next action still written."""
        answers: list[KubeError | None] = []
        for action in actions:
            try:
                if action.verb in (PlanVerb.REPLACE, PlanVerb.DELETE):
                    assert action.uid is not None
                    await self.delete_binding(
                        action.kind,
                        action.namespace,
                        action.name,
                        uid=action.uid,
                        resource_version=action.resource_version,
                    )
                if action.verb in (PlanVerb.CREATE, PlanVerb.REPLACE):
                    assert action.manifest is not None
                    await self.create_binding(action.manifest)
                elif action.verb is PlanVerb.PATCH:
                    assert action.patch is not None
                    await self.patch_binding(action.kind, action.namespace, action.name, action.patch)
            except KubeError as error:
                answers.append(error)
            else:
                answers.append(None)
        return answers

    async def list_namespaces(self) -> list[NamespaceInfo]:
        self._check()
        return sorted(self.namespaces, key=lambda ns: ns.name)

    def view_version(self) -> Hashable | None:
        """As the cache's: equal only while no namespace or role changed (here: their content)."""
        return repr(
            (
                sorted(self.namespaces, key=lambda ns: ns.name),
                sorted(self.cluster_roles),
                sorted((ns, sorted(names)) for ns, names in self.roles.items()),
                sorted(self.rules.items(), key=repr),
                sorted(self.role_labels.items()),
                sorted(self.aggregation.items()),
            )
        )

    async def get_cluster_role(self, name: str) -> dict[str, Any] | None:
        self._check()
        if name not in self.cluster_roles:
            return None
        role: dict[str, Any] = {
            "metadata": {"name": name, "labels": self.role_labels.get(name, {})},
            "rules": self.rules.get(name, []),
        }
        if name in self.aggregation:
            role["aggregationRule"] = {
                "clusterRoleSelectors": [{"matchLabels": m} for m in self.aggregation[name]]
            }
        return role

    async def list_cluster_roles(self, selector: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._check()
        wanted = selector.get("matchLabels") or {}
        found = []
        for name in sorted(self.cluster_roles):
            labels = self.role_labels.get(name, {})
            if all(labels.get(k) == v for k, v in wanted.items()):
                found.append(
                    {"metadata": {"name": name, "labels": labels}, "rules": self.rules.get(name, [])}
                )
        return found

    async def get_role(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        if name not in self.roles.get(namespace, set()):
            return None
        return {
            "metadata": {"name": name, "namespace": namespace},
            "rules": self.rules.get((namespace, name), []),
        }

    async def create_event(self, draft: EventDraft, *, owner_name: str, owner_uid: str, now: datetime) -> str:
        """Stores the manifest the real adapter would POST, named as the API server would."""
        self._check()
        manifest = event_manifest(draft, owner_name=owner_name, owner_uid=owner_uid, instance="test", now=now)
        name = manifest["metadata"]["generateName"] + f"{len(self.events):05d}"
        manifest["metadata"] = {**manifest["metadata"], "name": name}
        self.events.append(manifest)
        return name

    async def patch_event(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        self.event_patches.append((name, dict(patch)))
        for event in self.events:
            if event["metadata"]["name"] == name:
                event.update(patch)
                return event
        raise errors.NotFoundError(f"events {name!r} not found", status=404, reason=errors.NOT_FOUND)

    # --- internals ---
    def _check(self) -> None:
        if self.unavailable is not None:
            raise self.unavailable

    def _write(self, verb: Verb, key: BindingKey) -> None:
        self._check()
        error = self.failures.pop((verb, key), None)
        if error is not None:
            self._failed(verb, key, error)

    def _failed(self, verb: Verb, key: BindingKey, error: KubeError) -> NoReturn:
        self.writes.append((verb, key, False))
        raise error


def _labelled_for(binding: Mapping[str, Any], owner_uid: str) -> bool:
    labels = binding["metadata"].get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(OWNER_UID_LABEL) == owner_uid


@dataclass
class FakeDirectory:
    """Entra in memory: groups by id and their transitive members."""

    groups: dict[str, DirectoryGroup] = field(default_factory=dict)
    members: dict[str, list[DirectoryMember]] = field(default_factory=dict)
    # While set, group lookups (failure) or member reads (member_failure) raise it.
    failure: DirectoryError | None = None
    member_failure: DirectoryError | None = None
    lookups: int = 0
    invalidations: int = 0
    # Every call in order: "lookup" or "invalidate" (so a test sees which read followed a bypass).
    calls: list[str] = field(default_factory=list)

    def add_group(self, group_id: str, *members: str) -> None:
        self.groups[group_id] = DirectoryGroup(group_id, f"Group {group_id[:8]}")
        self.members[group_id] = [user(m) for m in members]

    async def lookup_groups(self, lookups: Sequence[GroupLookup]) -> list[GroupResolution]:
        self.lookups += 1
        self.calls.append("lookup")
        if self.failure is not None:
            raise self.failure
        return [self._resolve(lookup) for lookup in lookups]

    async def transitive_members(self, group_id: str) -> list[DirectoryMember]:
        if self.member_failure is not None:
            raise self.member_failure
        if group_id not in self.groups:
            raise GroupNotFoundError(group_id)
        return list(self.members.get(group_id, []))

    def invalidate(self, lookups: Sequence[GroupLookup] | None = None) -> None:
        self.invalidations += 1
        self.calls.append("invalidate")

    def _resolve(self, lookup: GroupLookup) -> GroupResolution:
        group = self.groups.get(lookup.ref.id or lookup.pinned_id or "")
        if group is None:
            return GroupResolution(lookup, GroupState.NOT_FOUND, message=f"no group {lookup.ref.key}")
        return GroupResolution(lookup, GroupState.RESOLVED, group)


def user(name: str) -> DirectoryMember:
    """A member user whose AKS user name is `<name>@contoso.com`."""
    return DirectoryMember(
        id=guid(zlib.crc32(name.encode())),
        type=MemberType.USER,
        user_principal_name=f"{name}@contoso.com",
        user_type="Member",
    )


@dataclass
class Clock:
    """A clock that moves only when told (maxStaleness and hold windows without sleeping)."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    """One resource, the fakes around it, and the context the reconciler runs with."""

    policy: Policy = field(default_factory=Policy)
    kube: FakeCluster = field(default_factory=FakeCluster)
    directory: FakeDirectory = field(default_factory=FakeDirectory)
    clock: Clock = field(default_factory=Clock)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    ctx: ReconcileContext = field(init=False)

    def __post_init__(self) -> None:
        self.ctx = self.new_context()

    def new_context(self) -> ReconcileContext:
        """A context with empty memory over the same fakes: the operator after a restart."""
        return ReconcileContext(
            kube=self.kube,
            directory=self.directory,
            policy=self.policy,
            metrics=self.metrics,
            clock=self.clock,
        )

    def apply(self, spec: Mapping[str, Any], *, annotations: Mapping[str, str] | None = None) -> None:
        """Create the resource, or change its spec (and generation) as `kubectl apply` would."""
        current = self.kube.resources.get(NAME)
        if current is None:
            self.kube.resources[NAME] = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": NAME,
                    "uid": UID,
                    "generation": 1,
                    "annotations": dict(annotations or {}),
                },
                "spec": copy.deepcopy(dict(spec)),
                "status": {},
            }
            return
        current["spec"] = copy.deepcopy(dict(spec))
        current["metadata"]["generation"] += 1
        if annotations is not None:
            current["metadata"]["annotations"] = dict(annotations)

    def annotate(self, key: str, value: str) -> None:
        self.kube.resources[NAME]["metadata"]["annotations"][key] = value

    async def reconcile(self, *, deletion: bool = False, fresh: bool = False) -> Outcome:
        return await reconcile(NAME, UID, self.ctx, deletion=deletion, fresh=fresh)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.kube.resources[NAME].get("status") or {})

    def condition(self, kind: str = "Ready") -> dict[str, Any]:
        return next(c for c in self.status.get("conditions") or [] if c["type"] == kind)

    def subjects(self, key: BindingKey) -> list[str]:
        return [s["name"] for s in self.kube.bindings[key].get("subjects") or []]


def user_mode_spec(group_id: str) -> dict[str, Any]:
    """A user-mode resource granting cluster-wide `view` to the members of `group_id`."""
    return {
        "groups": [{"id": group_id}],
        "subjects": {"kind": "User"},
        "clusterRoleBindings": [{"clusterRole": "view"}],
    }


def member_names(count: int) -> list[str]:
    """`count` distinct member names for `user`, in sorted order."""
    return [f"user{n:06d}" for n in range(count)]
