"""RBAC evaluation the way kube-apiserver's RBAC authorizer does it (docs/design.md, Plan, explain,
report), from plain manifests.

Holds `Rule` (one PolicyRule and its matching), `Request` (what is asked: a verb on a resource, or
on a non-resource URL), `Identity` (a user name and groups, as an authenticator gives them),
`RoleBook` (every Role and ClusterRole, ClusterRole aggregation applied) and `access_paths`, the
one entry point: every binding through which an identity holds access, and, for a request, the
rules that allow it. Pure: the caller passes what it listed; nothing here reads the cluster.

Written here rather than taken from a library because no Python package evaluates RBAC; the rules
follow k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac (`RuleAllows`, `appliesTo`) and
pkg/controller/clusterroleaggregation, and the tests hold them to SubjectAccessReview answers of
the real kube-apiserver:
- a rule allows a resource request when its verbs, apiGroups, resources (`*`, `res`,
  `res/sub`, `*/sub`) and resourceNames (empty: any) all match; a non-resource request when
  its verbs and nonResourceURLs (`*`, exact, or a `prefix*`) match;
- a ClusterRoleBinding grants everywhere (non-resource URLs too); a RoleBinding grants only
  resource requests in its own namespace, through a Role of that namespace or a ClusterRole;
- subjects: User by name, Group by membership, ServiceAccount as
  `system:serviceaccount:<namespace>:<name>` (the namespace defaults to the binding's);
- an aggregated ClusterRole's rules are those of every ClusterRole its selectors match (the
  controller's answer, computed here too so a lagging controller does not change the answer).
Authorizers other than RBAC (system:masters, a webhook, Node) are outside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from entra_rbac.core.models import LabelSelector
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.selectors import selector_matches

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class Request:
    """What is asked. `path` set: a non-resource URL (`/healthz`); otherwise a resource request.

    `namespace` None: a cluster-wide request (a cluster-scoped resource, or all namespaces).
    """

    verb: str
    resource: str = ""
    api_group: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str | None = None
    path: str | None = None

    @classmethod
    def parse(cls, verb: str, resource: str, namespace: str | None = None, name: str = "") -> Request:
        """From kubectl's spelling: `pods`, `deployments.apps`, `pods/log`, or a URL `/healthz`.

        As `kubectl auth can-i` spells it, without discovery: `<resource>[.<group>][/<sub>]`.
        """
        if resource.startswith("/"):
            return cls(verb=verb, path=resource)
        combined, _, subresource = resource.partition("/")
        plural, _, group = combined.partition(".")
        return cls(verb, plural, group, subresource, name, namespace)

    @property
    def resource_with_subresource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.verb} {self.path}"
        what = self.resource_with_subresource + (f".{self.api_group}" if self.api_group else "")
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {what}{named}{where}"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule of a Role or ClusterRole."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_manifest(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(
            verbs=_strings(rule.get("verbs")),
            api_groups=_strings(rule.get("apiGroups")),
            resources=_strings(rule.get("resources")),
            resource_names=_strings(rule.get("resourceNames")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )

    def to_manifest(self) -> dict[str, list[str]]:
        pairs = (
            ("verbs", self.verbs),
            ("apiGroups", self.api_groups),
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
        )
        return {key: list(values) for key, values in pairs if values}

    def allows(self, request: Request) -> bool:
        if "*" not in self.verbs and request.verb not in self.verbs:
            return False
        if request.path is not None:
            return any(_url_matches(url, request.path) for url in self.non_resource_urls)
        return (
            ("*" in self.api_groups or request.api_group in self.api_groups)
            and _resource_matches(self.resources, request)
            and (not self.resource_names or request.name in self.resource_names)
        )

    def __str__(self) -> str:
        if self.non_resource_urls:
            return f"{','.join(self.verbs)} on {','.join(self.non_resource_urls)}"
        groups = ",".join(g or '""' for g in self.api_groups)
        names = f" named {','.join(self.resource_names)}" if self.resource_names else ""
        return f"{','.join(self.verbs)} on {','.join(self.resources)} (apiGroups {groups}){names}"


def _resource_matches(resources: Sequence[str], request: Request) -> bool:
    combined = request.resource_with_subresource
    for resource in resources:
        if resource in ("*", combined):
            return True
        if request.subresource and resource == f"*/{request.subresource}":
            return True
    return False


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url in ("*", path):
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


@dataclass(frozen=True)
class Identity:
    """Who asks: a user name (None when only groups are asked about) and the groups it carries."""

    user: str | None = None
    groups: frozenset[str] = frozenset()

    def matches(self, subject: Mapping[str, Any], binding_namespace: str | None) -> bool:
        """Whether a binding's subject applies to this identity (RBAC's `appliesTo`)."""
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "User":
            return self.user is not None and name == self.user
        if kind == "Group":
            return name in self.groups
        if kind == "ServiceAccount":
            namespace = subject.get("namespace") or binding_namespace or ""
            return self.user == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
        return False


@dataclass(frozen=True)
class RoleBook:
    """Every role's effective rules: `cluster_roles[name]`, `roles[(namespace, name)]`."""

    cluster_roles: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: Mapping[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)

    @classmethod
    def from_manifests(
        cls, cluster_roles: Iterable[Mapping[str, Any]], roles: Iterable[Mapping[str, Any]] = ()
    ) -> RoleBook:
        listed = {str((r.get("metadata") or {}).get("name", "")): r for r in cluster_roles}
        effective: dict[str, tuple[Rule, ...]] = {}
        for name in listed:
            _aggregate(name, listed, effective, set())
        namespaced = {
            (str(meta.get("namespace", "")), str(meta.get("name", ""))): _rules_of(r)
            for r in roles
            if (meta := r.get("metadata") or {})
        }
        return cls(cluster_roles=effective, roles=namespaced)

    def rules(self, role_ref: Mapping[str, Any], namespace: str | None) -> tuple[Rule, ...] | None:
        """The rules a roleRef grants from a binding in `namespace`; None when the role is missing."""
        kind, name = role_ref.get("kind"), str(role_ref.get("name", ""))
        if kind == "ClusterRole":
            return self.cluster_roles.get(name)
        if kind == "Role" and namespace:
            return self.roles.get((namespace, name))
        return None


def _rules_of(role: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.from_manifest(r) for r in role.get("rules") or ())


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    try:
        parsed = LabelSelector.model_validate(selector)
    except ValidationError:
        # The spec model refuses an empty selector; in an aggregation rule it selects every role.
        return not selector.get("matchLabels") and not selector.get("matchExpressions")
    return selector_matches(parsed, labels)


def _aggregate(
    name: str,
    listed: Mapping[str, Mapping[str, Any]],
    effective: dict[str, tuple[Rule, ...]],
    visiting: set[str],
) -> tuple[Rule, ...]:
    """A ClusterRole's rules; with an aggregationRule, the union of the selected roles' rules
    (the controller replaces the role's own rules with them), in a stable order, deduplicated."""
    if name in effective:
        return effective[name]
    role = listed[name]
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
    if selectors is None:
        effective[name] = _rules_of(role)
        return effective[name]
    visiting.add(name)
    rules: list[Rule] = []
    for other in sorted(listed):
        if other == name or other in visiting:
            continue
        labels = (listed[other].get("metadata") or {}).get("labels") or {}
        if any(_selects(s, labels) for s in selectors):
            rules.extend(r for r in _aggregate(other, listed, effective, visiting) if r not in rules)
    visiting.discard(name)
    effective[name] = tuple(rules)
    return effective[name]


@dataclass(frozen=True)
class AccessPath:
    """One binding through which an identity holds access.

    `rules` are the role's rules (all of them, or with a request the ones that allow it);
    `role_missing` when the roleRef names no role (it grants nothing until one exists).
    `subjects` are the binding's subjects that apply to the identity.
    """

    key: BindingKey
    binding: Mapping[str, Any]
    role_ref: str
    rules: tuple[Rule, ...]
    subjects: tuple[Mapping[str, Any], ...]
    role_missing: bool = False

    @property
    def scope(self) -> str:
        return f"namespace {self.key.namespace}" if self.key.namespace else "cluster"


def binding_applies(binding: Mapping[str, Any], namespace: str | None) -> bool:
    """Whether a binding can grant anything for a request in `namespace` (None: cluster-wide)."""
    bound_in = (binding.get("metadata") or {}).get("namespace") or None
    return bound_in is None or bound_in == namespace


def access_paths(
    identity: Identity | None,
    bindings: Iterable[Mapping[str, Any]],
    book: RoleBook,
    *,
    request: Request | None = None,
    namespace: str | None = None,
) -> list[AccessPath]:
    """Every binding through which `identity` (None: anyone) holds access, sorted by key.

    With `request`, only the bindings whose rules allow it, each with the allowing rules (a
    RoleBinding never allows a cluster-wide or non-resource request). With `namespace` and no
    request, the bindings that grant anything there: its RoleBindings and every ClusterRoleBinding.
    """
    where = request.namespace if request is not None else namespace
    found = []
    for binding in bindings:
        meta = binding.get("metadata") or {}
        bound_in = meta.get("namespace") or None
        if (request is not None or namespace is not None) and not binding_applies(binding, where):
            continue
        if request is not None and bound_in is not None and request.path is not None:
            continue
        subjects = tuple(
            s for s in binding.get("subjects") or () if identity is None or identity.matches(s, bound_in)
        )
        if not subjects:
            continue
        role_ref = binding.get("roleRef") or {}
        rules = book.rules(role_ref, bound_in)
        allowing = rules or ()
        if request is not None:
            allowing = tuple(r for r in allowing if r.allows(request))
            if not allowing:
                continue
        key = BindingKey.from_manifest(binding)
        found.append(
            AccessPath(
                key=key,
                binding=binding,
                role_ref=f"{role_ref.get('kind')}/{role_ref.get('name')}",
                rules=allowing,
                subjects=subjects,
                role_missing=rules is None,
            )
        )
    return sorted(found, key=lambda p: p.key)


def allowed(
    identity: Identity, bindings: Iterable[Mapping[str, Any]], book: RoleBook, request: Request
) -> bool:
    """What a SubjectAccessReview of `request` by `identity` answers, as far as RBAC decides."""
    return bool(access_paths(identity, bindings, book, request=request))
