"""The guardrails (docs/design.md, Guardrails): what EntraGroupBindings may grant at all, and the
pure check the reconciler applies to every resource before it grants anything.

Holds `Guardrails` (parsed from the keys of deploy/guardrails.env, as the `Guardrails` object and
the operator's settings carry them), `ClusterView` (what the reconciler read: namespaces, and the
rules of every role granted) and `check_guardrails`, which returns one Problem per violation.
The admission policy checks the same guardrails when a resource is written; this re-check holds
for objects written before the policy existed or while it only warned, and it also sees what a
policy cannot: the roles' rules (aggregation included) and the namespaces a selector reaches.

One place to extend: a new guardrail is a key in `KEYS`, a field of `Guardrails` and one function
in `CHECKS`. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from entra_rbac.constants import GUARDRAILS_NAME
from entra_rbac.core.desired import AllowedRoles, NamespaceInfo, namespace_selected, not_allowed
from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef
from entra_rbac.core.naming import RoleKind
from entra_rbac.core.problems import Problem, Reason, sort_problems
from entra_rbac.core.selectors import selector_matches
from entra_rbac.core.windows import grants_of

ALLOWED_CLUSTER_ROLES = "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"
ALLOWED_ROLES = "ENTRA_RBAC_ALLOWED_ROLES"
PRIVILEGED_ROLES = "ENTRA_RBAC_PRIVILEGED_ROLES"
FORBIDDEN_NAMESPACES = "ENTRA_RBAC_FORBIDDEN_NAMESPACES"
GROUP_ROLES = "ENTRA_RBAC_GROUP_ROLES"
MAX_WINDOW_ROLES = "ENTRA_RBAC_MAX_WINDOW_ROLES"
MAX_WINDOW = "ENTRA_RBAC_MAX_WINDOW"
# Every key of deploy/guardrails.env, in its order.
KEYS = (
    ALLOWED_CLUSTER_ROLES,
    ALLOWED_ROLES,
    PRIVILEGED_ROLES,
    FORBIDDEN_NAMESPACES,
    GROUP_ROLES,
    MAX_WINDOW_ROLES,
    MAX_WINDOW,
)
# The admission policy's default for ENTRA_RBAC_MAX_WINDOW (a CEL duration).
DEFAULT_MAX_WINDOW = "4h"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# What makes a role privileged by its rules (docs/deployment.md, Guardrails): any `*`, and the
# verbs that lend power beyond the rules themselves.
PRIVILEGED_VERBS = ("*", "escalate", "bind", "impersonate")
# Privileged by name, whatever their rules (as the admission policy sees them).
PRIVILEGED_NAMES = ("cluster-admin",)
PRIVILEGED_PREFIX = "system:"
ANY_GROUP = "*"
# How messages name guardrails that come from the cluster's Guardrails object.
OBJECT_SOURCE = f"Guardrails {GUARDRAILS_NAME}"


class GuardrailsError(ValueError):
    """The guardrails cannot be read: `key` names the entry, the message what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class Guardrails:
    """The guardrails in force. `group_roles` None: no group/role restriction; else the roles each
    group id may receive, `*` for every other group (and groups named by displayName/mailNickname)."""

    allowed: AllowedRoles = field(default_factory=AllowedRoles)
    privileged_roles: frozenset[str] = frozenset()
    forbidden_namespaces: frozenset[str] = frozenset()
    group_roles: Mapping[str, frozenset[str]] | None = None
    # Break-glass roles, granted only with both ends of a window at most `max_window` apart.
    max_window_roles: frozenset[str] = frozenset()
    max_window: str = DEFAULT_MAX_WINDOW
    # Where they come from, for messages: "Guardrails entra-rbac-guardrails" or "the settings".
    source: str = "the settings"

    @classmethod
    def from_object(cls, body: Mapping[str, Any]) -> Guardrails:
        """The guardrails of the cluster's Guardrails object (its `data`), as the operator puts
        them in force (triggers/guardrails.py) and `kubectl entra plan` reads them. Raises
        `GuardrailsError` naming the key."""
        data = body.get("data") or {}
        if not isinstance(data, Mapping):
            raise GuardrailsError("data", "must be a map of ENTRA_RBAC_* keys to strings")
        return cls.from_data(data, source=OBJECT_SOURCE)

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str) -> Guardrails:
        """From `ENTRA_RBAC_*` keys and their string values; a missing key is empty, as the
        admission policy reads it. Raises `GuardrailsError` naming the key."""
        for key in data:
            if key not in KEYS:
                raise GuardrailsError(str(key), f"is not a guardrail (known: {', '.join(KEYS)})")

        def text(key: str) -> str:
            value = data.get(key, "")
            if not isinstance(value, str):
                raise GuardrailsError(key, f"must be a string, not {type(value).__name__}")
            return value

        return cls(
            allowed=AllowedRoles(
                cluster_roles=frozenset(comma_list(text(ALLOWED_CLUSTER_ROLES))),
                roles=frozenset(comma_list(text(ALLOWED_ROLES))),
            ),
            privileged_roles=frozenset(comma_list(text(PRIVILEGED_ROLES))),
            forbidden_namespaces=frozenset(comma_list(text(FORBIDDEN_NAMESPACES))),
            group_roles=parse_group_roles(text(GROUP_ROLES)),
            max_window_roles=frozenset(comma_list(text(MAX_WINDOW_ROLES))),
            max_window=_checked_duration(text(MAX_WINDOW).strip() or DEFAULT_MAX_WINDOW),
            source=source,
        )


def duration_seconds(text: str) -> float | None:
    """A CEL duration as the admission policy parses it (`4h`, `90m`, `1h30m`, `3600s`), or None."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _checked_duration(text: str) -> str:
    if duration_seconds(text) is None:
        raise GuardrailsError(MAX_WINDOW, f"{text!r} is not a duration such as 4h, 90m or 1h30m")
    return text


def comma_list(value: str) -> tuple[str, ...]:
    """`a, b,,c` -> (a, b, c): the policy's split(',').map(trim).filter(non-empty)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_group_roles(value: str) -> Mapping[str, frozenset[str]] | None:
    """`<group id>=<role>[,<role>...]` entries separated by spaces; None when there are none.

    Refused as the policy refuses it: an entry without exactly one `=`, an empty side, or a
    group named twice."""
    entries = value.split()
    if not entries:
        return None
    found: dict[str, frozenset[str]] = {}
    for entry in entries:
        group, sep, roles = entry.partition("=")
        if not sep or "=" in roles or not group or not roles or group in found:
            raise GuardrailsError(
                GROUP_ROLES,
                f"entry {entry!r} is malformed or repeats its group "
                "(one <group object id>=<role>[,<role>...] per group, separated by spaces)",
            )
        found[group] = frozenset(comma_list(roles))
    return found


@dataclass(frozen=True)
class RoleRules:
    """The rules of one existing role as the reconciler read them (aggregated ones included)."""

    rules: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ClusterView:
    """What the check needs from the cluster: the namespaces, and the rules of the roles granted
    (ClusterRoles by name, Roles by (namespace, name)); a role absent here does not exist."""

    namespaces: Sequence[NamespaceInfo] = ()
    cluster_roles: Mapping[str, RoleRules] = field(default_factory=dict)
    roles: Mapping[tuple[str, str], RoleRules] = field(default_factory=dict)
    reserved_namespaces: frozenset[str] = frozenset()


def effective_rules(role: Mapping[str, Any], aggregated: Iterable[Mapping[str, Any]] = ()) -> RoleRules:
    """A role's rules: its own (for an aggregated ClusterRole, what the controller filled in) plus
    those of every ClusterRole its aggregationRule selects now, so a rule aggregated a moment ago
    counts before the controller has copied it."""
    rules = [*(role.get("rules") or [])]
    for source in aggregated:
        rules.extend(source.get("rules") or [])
    return RoleRules(tuple(r for r in rules if isinstance(r, Mapping)))


def privileged_rule(rules: RoleRules) -> str | None:
    """What makes these rules privileged ("verb 'impersonate' on serviceaccounts"), or None."""
    for rule in rules.rules:
        verbs = [str(v) for v in rule.get("verbs") or []]
        resources = [str(r) for r in rule.get("resources") or []] or [
            str(u) for u in rule.get("nonResourceURLs") or []
        ]
        on = ",".join(resources) or "-"
        for verb in PRIVILEGED_VERBS:
            if verb in verbs:
                return f"verb {verb!r} on {on}"
        for kind in ("apiGroups", "resources", "nonResourceURLs"):
            if "*" in [str(v) for v in rule.get(kind) or []]:
                return f"'*' in {kind} (verbs {','.join(verbs) or '-'})"
    return None


@dataclass(frozen=True)
class _Grant:
    path: str  # the field naming the role, e.g. spec.roleBindings[1].clusterRole
    kind: RoleKind
    name: str
    rb_index: int | None  # the roleBindings entry, None for a clusterRoleBindings one


def _grants(spec: EntraGroupBindingSpec) -> list[_Grant]:
    grants = [
        _Grant(f"spec.clusterRoleBindings[{i}].clusterRole", "ClusterRole", crb.cluster_role, None)
        for i, crb in enumerate(spec.cluster_role_bindings)
    ]
    for i, rb in enumerate(spec.role_bindings):
        role_field = "clusterRole" if rb.cluster_role is not None else "role"
        grants.append(_Grant(f"spec.roleBindings[{i}].{role_field}", rb.role_kind, rb.role_name, i))
    return grants


Check = Callable[[EntraGroupBindingSpec, Guardrails, ClusterView], Iterable[Problem]]


def _allowlist(spec: EntraGroupBindingSpec, rails: Guardrails, _: ClusterView) -> Iterable[Problem]:
    for grant in _grants(spec):
        if not rails.allowed.allows(grant.kind, grant.name):
            yield not_allowed(grant.kind, grant.name, grant.path)


def _violation(message: str, path: str) -> Problem:
    return Problem(Reason.GUARDRAIL_VIOLATION, message, path)


def _privileged(spec: EntraGroupBindingSpec, rails: Guardrails, cluster: ClusterView) -> Iterable[Problem]:
    named = f"it may be granted only when {PRIVILEGED_ROLES} in {rails.source} names it"
    for grant in _grants(spec):
        if not rails.allowed.allows(grant.kind, grant.name) or grant.name in rails.privileged_roles:
            continue
        if grant.name.startswith(PRIVILEGED_PREFIX) or grant.name in PRIVILEGED_NAMES:
            yield _violation(f"{grant.kind} {grant.name!r} is privileged: {named}", grant.path)
        elif grant.kind == "ClusterRole":
            why = privileged_rule(cluster.cluster_roles.get(grant.name, RoleRules()))
            if why is not None:
                yield _violation(
                    f"ClusterRole {grant.name!r} is privileged (its rules grant {why}): {named}", grant.path
                )
        else:
            for namespace in _reached(spec, grant, cluster):
                why = privileged_rule(cluster.roles.get((namespace, grant.name), RoleRules()))
                if why is not None:
                    yield _violation(
                        f"Role {grant.name!r} in namespace {namespace!r} is privileged "
                        f"(its rules grant {why}): {named}",
                        grant.path,
                    )


def _reached(spec: EntraGroupBindingSpec, grant: _Grant, cluster: ClusterView) -> list[str]:
    """The existing namespaces a roleBindings entry targets (named, or selected by its selector)."""
    if grant.rb_index is None:
        return []
    rb = spec.role_bindings[grant.rb_index]
    return sorted(
        ns.name
        for ns in cluster.namespaces
        if namespace_selected(rb, ns.name, ns.labels, cluster.reserved_namespaces)
    )


def _forbidden_namespaces(
    spec: EntraGroupBindingSpec, rails: Guardrails, cluster: ClusterView
) -> Iterable[Problem]:
    where = f"({FORBIDDEN_NAMESPACES} in {rails.source})"
    for i, rb in enumerate(spec.role_bindings):
        for j, name in enumerate(rb.namespaces):
            if name in rails.forbidden_namespaces:
                yield _violation(
                    f"namespace {name!r} may never be targeted {where}",
                    f"spec.roleBindings[{i}].namespaces[{j}]",
                )
        if rb.namespace_selector is None:
            continue
        for ns in cluster.namespaces:
            if (
                ns.name in rails.forbidden_namespaces
                and ns.name not in cluster.reserved_namespaces
                and selector_matches(rb.namespace_selector, ns.labels)
            ):
                yield _violation(
                    f"namespace {ns.name!r}, matched by the selector, may never be targeted {where}",
                    f"spec.roleBindings[{i}].namespaceSelector",
                )


def group_label(group: GroupRef) -> str:
    """How the admission policy names a group in its messages: its id, or `displayName=<name>`."""
    if group.id is not None:
        return group.id
    if group.display_name is not None:
        return f"displayName={group.display_name}"
    return f"mailNickname={group.mail_nickname}"


def _group_roles(spec: EntraGroupBindingSpec, rails: Guardrails, _: ClusterView) -> Iterable[Problem]:
    if rails.group_roles is None:
        return
    # By the spec's id, as at admission: a group named by displayName or mailNickname gets the
    # `*` entry's roles, whatever id it resolves to (the policy cannot resolve names).
    allowed_grants = [g for g in _grants(spec) if rails.allowed.allows(g.kind, g.name)]
    for i, group in enumerate(spec.groups):
        key = group.id if group.id is not None and group.id in rails.group_roles else ANY_GROUP
        may = rails.group_roles.get(key, frozenset())
        for grant in allowed_grants:
            if grant.name not in may:
                yield _violation(
                    f"group {group_label(group)} may not receive {grant.kind} {grant.name} "
                    f"({grant.path.rsplit('.', 1)[0]}; {GROUP_ROLES} in {rails.source})",
                    f"spec.groups[{i}]",
                )


def _bounded_windows(spec: EntraGroupBindingSpec, rails: Guardrails, _: ClusterView) -> Iterable[Problem]:
    """Break-glass roles only with both ends of their effective window, at most max_window apart
    (docs/design.md, Time-bound grants): the length, as at admission, which has no clock."""
    if not rails.max_window_roles:
        return
    limit = duration_seconds(rails.max_window) or 0.0
    for grant in grants_of(spec):
        if grant.role not in rails.max_window_roles:
            continue
        start, end = grant.window.start, grant.window.end
        if start is not None and end is not None and (end - start).total_seconds() <= limit:
            continue
        yield _violation(
            f"{grant.role_kind} {grant.role} may only be granted for at most {rails.max_window}: set "
            "validFrom and validUntil (on the grant or the spec) at most that far apart "
            f"({MAX_WINDOW_ROLES} in {rails.source})",
            grant.path,
        )


# Every guardrail, in the order the admission policy checks them.
CHECKS: tuple[Check, ...] = (_allowlist, _bounded_windows, _privileged, _forbidden_namespaces, _group_roles)


def check_guardrails(
    spec: EntraGroupBindingSpec, guardrails: Guardrails, cluster: ClusterView
) -> tuple[Problem, ...]:
    """Every guardrail `spec` violates (empty: within them), sorted. One violation anywhere and
    the reconciler grants nothing from the resource (docs/design.md, Guardrails)."""
    return sort_problems(p for check in CHECKS for p in check(spec, guardrails, cluster))
