"""RBAC as kube-apiserver evaluates it: rule matching, the authorizer, coverage and aggregation.

Holds UserInfo, Attributes (what a request wants to do), Authorizer (rules a user holds in a
namespace from Roles, ClusterRoles and their bindings; allow/deny with the real deny message),
`uncovered()` (the escalation check's "does the writer already hold every permission of this
role", after plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation) and
`aggregated_rules()` for ClusterRole aggregation. Reads the store; writes nothing.

The authorizer keeps an index of bindings by (namespace, subject), fed by the store's listeners,
so a request reads only the bindings naming its user, groups or service account, never every
binding (docs/design.md, The sandbox contract).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .selectors import matches_labels, structured_selector
from .store import Store

RBAC = "rbac.authorization.k8s.io"
ROLES = (RBAC, "roles")
CLUSTER_ROLES = (RBAC, "clusterroles")
ROLE_BINDINGS = (RBAC, "rolebindings")
CLUSTER_ROLE_BINDINGS = (RBAC, "clusterrolebindings")


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity (after impersonation, if any)."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do: a resource request, or a non-resource path when `path` is set."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str | None = None

    def describe(self, user: UserInfo) -> str:
        """The reason text of a real RBAC denial."""
        if self.path is not None:
            return f'User "{user.name}" cannot {self.verb} path "{self.path}"'
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        scope = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        what = f'resource "{resource}" in API group "{self.api_group}"'
        return f'User "{user.name}" cannot {self.verb} {what} {scope}'


def _has(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and (wanted in values or "*" in values)  # type: ignore[operator]


def _resource_matches(rule_resources: list[str] | None, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule_resources or []:
        if candidate in ("*", combined) or (subresource and candidate == f"*/{subresource}"):
            return True
    return False


def _path_matches(rule_urls: list[str] | None, path: str) -> bool:
    for candidate in rule_urls or []:
        if candidate == path or (candidate.endswith("*") and path.startswith(candidate[:-1])):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule grants the request (RuleAllows in the RBAC authorizer)."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if attrs.path is not None:
        return _path_matches(rule.get("nonResourceURLs"), attrs.path)
    names = rule.get("resourceNames") or []
    return (
        _has(rule.get("apiGroups"), attrs.api_group)
        and _resource_matches(rule.get("resources"), attrs.resource, attrs.subresource)
        and (not names or attrs.name in names)
    )


SubjectKey = tuple[str, str]


def subject_key(subject: dict[str, Any], binding_namespace: str) -> SubjectKey | None:
    """A binding subject as an index key, None for one matching nobody. A User or Group matches by
    name; a ServiceAccount (namespace defaulting to the binding's) matches the user named
    system:serviceaccount:<namespace>:<name>, so it shares the User key space."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind in ("User", "Group") and isinstance(name, str):
        return (kind, name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("User", f"system:serviceaccount:{namespace}:{name}")
    return None


def user_keys(user: UserInfo) -> list[SubjectKey]:
    """The index keys of every subject that can match `user`."""
    return [("User", user.name)] + [("Group", group) for group in user.groups]


class Authorizer:
    """Answers "may this user do this" from the RBAC objects in the store, as the real one does."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # (storage key, namespace) -> subject key -> binding names
        self._index: dict[tuple[tuple[str, str], str], dict[SubjectKey, set[str]]] = {}
        for key in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS):
            store.listen(key, self._listener(key))

    def _listener(
        self, key: tuple[str, str]
    ) -> Callable[[dict[str, Any] | None, dict[str, Any] | None], None]:
        def update(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
            for binding, add in ((old, False), (new, True)):
                if binding is None:
                    continue
                namespace = binding["metadata"].get("namespace") or ""
                name = binding["metadata"]["name"]
                by_subject = self._index.setdefault((key, namespace), {})
                for subject in binding.get("subjects") or []:
                    skey = subject_key(subject, namespace)
                    if skey is None:
                        continue
                    names = by_subject.setdefault(skey, set())
                    if add:
                        names.add(name)
                    else:
                        names.discard(name)
                        if not names:
                            del by_subject[skey]

        return update

    def _bindings(self, key: tuple[str, str], namespace: str, user: UserInfo) -> list[dict[str, Any]]:
        """The bindings of `key` in `namespace` naming the user, in storage order."""
        by_subject = self._index.get((key, namespace), {})
        names: set[str] = set()
        for skey in user_keys(user):
            names |= by_subject.get(skey, set())
        found = (self._store.get(key, namespace, name) for name in sorted(names))
        return [binding for binding in found if binding is not None]

    def _role_rules(self, role_ref: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        if role_ref.get("kind") == "ClusterRole":
            role = self._store.get(CLUSTER_ROLES, "", role_ref.get("name", ""))
        else:
            role = self._store.get(ROLES, namespace, role_ref.get("name", ""))
        return list(role.get("rules") or []) if role else []

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every rule the user holds in `namespace` ("" = cluster-wide rules only)."""
        rules: list[dict[str, Any]] = []
        for binding in self._bindings(CLUSTER_ROLE_BINDINGS, "", user):
            rules += self._role_rules(binding.get("roleRef") or {}, "")
        if namespace:
            for binding in self._bindings(ROLE_BINDINGS, namespace, user):
                rules += self._role_rules(binding.get("roleRef") or {}, namespace)
        return rules

    def allowed(self, user: UserInfo, attrs: Attributes) -> bool:
        return any(rule_allows(rule, attrs) for rule in self.rules_for(user, attrs.namespace))

    def role_ref_rules(self, role_ref: dict[str, Any], namespace: str) -> list[dict[str, Any]] | None:
        """The rules a roleRef points at; None when the role does not exist."""
        plural = CLUSTER_ROLES if role_ref.get("kind") == "ClusterRole" else ROLES
        role = self._store.get(plural, "" if plural == CLUSTER_ROLES else namespace, role_ref.get("name", ""))
        return None if role is None else list(role.get("rules") or [])


def _atomic(rule: dict[str, Any]) -> list[Attributes]:
    """Break a rule into single-verb, single-resource pieces (BreakdownRule)."""
    verbs = rule.get("verbs") or []
    if rule.get("nonResourceURLs"):
        return [Attributes(verb=v, path=p) for v in verbs for p in rule["nonResourceURLs"]]
    pieces = []
    for group in rule.get("apiGroups") or []:
        for combined in rule.get("resources") or []:
            resource, _, sub = combined.partition("/")
            for verb in verbs:
                names = rule.get("resourceNames") or [""]
                pieces += [Attributes(verb, group, resource, sub, "", name) for name in names]
    return pieces


def _owner_covers(owner: dict[str, Any], piece: Attributes) -> bool:
    if not _has(owner.get("verbs"), piece.verb):
        return False
    if piece.path is not None:
        return _path_matches(owner.get("nonResourceURLs"), piece.path)
    owner_names = owner.get("resourceNames") or []
    return (
        _has(owner.get("apiGroups"), piece.api_group)
        and _resource_matches(owner.get("resources"), piece.resource, piece.subresource)
        and (not owner_names or (piece.name != "" and piece.name in owner_names))
    )


def uncovered(owner_rules: list[dict[str, Any]], servant_rules: list[dict[str, Any]]) -> list[Attributes]:
    """The permissions of `servant_rules` not held through `owner_rules` (empty = no escalation)."""
    return [
        piece
        for rule in servant_rules
        for piece in _atomic(rule)
        if not any(_owner_covers(owner, piece) for owner in owner_rules)
    ]


def aggregated_rules(store: Store, role: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rules an aggregated ClusterRole should hold now; None if it is not aggregated."""
    rule = role.get("aggregationRule")
    if not rule:
        return None
    selectors = [structured_selector(s) for s in rule.get("clusterRoleSelectors") or []]
    rules: list[dict[str, Any]] = []
    for other in store.list(CLUSTER_ROLES):
        if other["metadata"]["name"] == role["metadata"]["name"]:
            continue
        labels = other["metadata"].get("labels") or {}
        if any(matches_labels(reqs, labels) for reqs in selectors):
            rules += [r for r in other.get("rules") or [] if r not in rules]
    return rules
