"""Time-bound grants (docs/design.md, Time-bound grants): each grant's effective window, its state
at a given moment, and when anything next changes.

Holds `Window`, `Grant` (one spec entry with its effective window), `grants_of`, the schedule
(`next_transition`, `next_expiry`, `all_expired`), `binding_expiry` (when one binding's time ends: the
report's `expires`), `lapsed_keys` (the owned bindings that only
inactive grants would write: removed on time even when Entra cannot be read), the status
entries (`grant_entries`) and `transitions` (what started or ended since the last status, for
the audit trail). Pure: "now" is always an argument; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from entra_rbac.core.models import (
    ClusterRoleBindingSpec,
    EntraGroupBindingSpec,
    GrantState,
    LabelSelector,
    RoleBindingSpec,
)
from entra_rbac.core.naming import BindingKey, BindingKind, RoleKind, binding_name, shard_index


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _as_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Window:
    """Active from `start` (inclusive) until `end` (exclusive); None is open-ended."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None

    def within(self, outer: Window) -> Window:
        """This window narrowed by `outer` (an entry narrows the resource's window, never widens it)."""
        return Window(_later(self.start, outer.start), _earlier(self.end, outer.end))

    def state(self, now: datetime) -> GrantState:
        """Expired from `end` on; Pending before `start`; Active in between. A window whose end is
        not after its start (the spec's and the entry's do not overlap) is never Active."""
        if self.end is not None and now >= self.end:
            return GrantState.EXPIRED
        if self.start is not None and now < self.start:
            return GrantState.PENDING
        return GrantState.ACTIVE

    def edges(self) -> tuple[datetime, ...]:
        return tuple(t for t in (self.start, self.end) if t is not None)


@dataclass(frozen=True)
class Grant:
    """One entry of clusterRoleBindings / roleBindings with its effective window."""

    path: str  # spec.clusterRoleBindings[0] or spec.roleBindings[2]
    role_kind: RoleKind
    role: str
    entry: ClusterRoleBindingSpec | RoleBindingSpec
    window: Window

    @property
    def binding_kind(self) -> BindingKind:
        return "RoleBinding" if isinstance(self.entry, RoleBindingSpec) else "ClusterRoleBinding"

    @property
    def role_ref(self) -> str:
        return f"{self.role_kind}/{self.role}"

    def active(self, now: datetime) -> bool:
        return self.window.state(now) is GrantState.ACTIVE

    def scope(self) -> str:
        """Where it grants, for status, logs and Events: `cluster-wide`, or its namespaces."""
        if not isinstance(self.entry, RoleBindingSpec):
            return "cluster-wide"
        parts = []
        if self.entry.namespaces:
            parts.append("namespaces " + ",".join(self.entry.namespaces))
        if self.entry.namespace_selector is not None:
            parts.append("namespaces selected by " + selector_text(self.entry.namespace_selector))
        return "; ".join(parts)

    def could_write(self, owner_name: str, key: BindingKey) -> bool:
        """Whether this grant may stand behind the binding at `key` (a selector may select any
        namespace: reading namespaces is not needed to answer, at the price of keeping a binding
        that an active selector no longer matches until the next verified sync)."""
        base = binding_name(owner_name, self.role_kind, self.role)
        if key.kind != self.binding_kind or shard_index(key.name, base) is None:  # a shard too
            return False
        if not isinstance(self.entry, RoleBindingSpec):
            return True
        return self.entry.namespace_selector is not None or key.namespace in self.entry.namespaces


def selector_text(selector: LabelSelector) -> str:
    """`team=payments,tier in (a,b),!sandbox`: kubectl's selector syntax, bounded."""
    terms = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for requirement in selector.match_expressions:
        values = ",".join(requirement.values)
        terms.append(
            {
                "In": f"{requirement.key} in ({values})",
                "NotIn": f"{requirement.key} notin ({values})",
                "Exists": requirement.key,
                "DoesNotExist": f"!{requirement.key}",
            }[requirement.operator.value]
        )
    text = ",".join(terms)
    return text if len(text) <= 200 else text[:197] + "..."


def grants_of(spec: EntraGroupBindingSpec) -> tuple[Grant, ...]:
    """Every grant entry in spec order, each with its window narrowed by the spec's."""
    outer = Window(spec.valid_from, spec.valid_until)
    grants: list[Grant] = []
    for index, crb in enumerate(spec.cluster_role_bindings):
        window = Window(crb.valid_from, crb.valid_until).within(outer)
        grants.append(
            Grant(f"spec.clusterRoleBindings[{index}]", "ClusterRole", crb.cluster_role, crb, window)
        )
    for index, rb in enumerate(spec.role_bindings):
        window = Window(rb.valid_from, rb.valid_until).within(outer)
        grants.append(Grant(f"spec.roleBindings[{index}]", rb.role_kind, rb.role_name, rb, window))
    return tuple(grants)


def next_transition(spec: EntraGroupBindingSpec, now: datetime) -> datetime | None:
    """The next moment after `now` at which some grant starts or ends (the scheduler's wake-up)."""
    later = [t for g in grants_of(spec) for t in g.window.edges() if t > now]
    return min(later, default=None)


def next_expiry(spec: EntraGroupBindingSpec, now: datetime) -> datetime | None:
    """When the next grant that is active or pending ends (the EXPIRES column)."""
    ends = [g.window.end for g in grants_of(spec) if g.window.end is not None and g.window.end > now]
    return min(ends, default=None)


def all_expired(spec: EntraGroupBindingSpec, now: datetime) -> bool:
    """Every grant has ended: nothing is granted any more, and nothing ever will be."""
    grants = grants_of(spec)
    return bool(grants) and all(g.window.state(now) is GrantState.EXPIRED for g in grants)


def binding_expiry(
    grants: Sequence[Grant], owner_name: str, key: BindingKey, now: datetime
) -> datetime | None:
    """When the binding at `key` is removed for time, given its resource's `grants`: the latest end
    of the grants active at `now` that stand behind it (it lasts while any of them does); None when
    one of them is open-ended. A binding no active grant stands behind (its time over, the removal
    still to come) ends at the latest end of the grants that could have written it."""
    behind = [g for g in grants if g.could_write(owner_name, key)]
    standing = [g for g in behind if g.active(now)] or behind
    ends = [g.window.end for g in standing]
    if not ends or any(end is None for end in ends):
        return None
    return max(end for end in ends if end is not None)


def lapsed_keys(
    spec: EntraGroupBindingSpec, owner_name: str, now: datetime, keys: Iterable[BindingKey]
) -> frozenset[BindingKey]:
    """Of the bindings at `keys`, those only grants that are not active now could stand behind:
    their time is over (or not yet come), whatever Entra says. Decided from the spec alone, so
    expiry never waits for the directory (docs/design.md, Time-bound grants)."""
    grants = grants_of(spec)
    active = [g for g in grants if g.active(now)]
    inactive = [g for g in grants if not g.active(now)]
    return frozenset(
        key
        for key in keys
        if any(g.could_write(owner_name, key) for g in inactive)
        and not any(g.could_write(owner_name, key) for g in active)
    )


# --- status and audit ---------------------------------------------------------------------


def grant_entries(spec: EntraGroupBindingSpec, now: datetime) -> list[dict[str, Any]]:
    """`status.grants`: every time-bound grant, its effective window and its state at `now`."""
    entries = []
    for grant in grants_of(spec):
        if not grant.window.bounded:
            continue
        entry: dict[str, Any] = {
            "grant": grant.path,
            "roleRef": grant.role_ref[:264],
            "scope": grant.scope()[:1024],
        }
        if grant.window.start is not None:
            entry["validFrom"] = _as_utc(grant.window.start)
        if grant.window.end is not None:
            entry["validUntil"] = _as_utc(grant.window.end)
        entry["state"] = grant.window.state(now).value
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class Transition:
    """A grant that started or ended since the previous status: one audit log line and Event."""

    grant: str
    role_ref: str
    scope: str
    before: str
    after: GrantState
    window: str  # "2026-12-01T10:00:00Z..2026-12-01T14:00:00Z" (an open end as "")

    @property
    def verb(self) -> str:
        return "Started" if self.after is GrantState.ACTIVE else "Expired"


def transitions(
    previous: Sequence[Mapping[str, Any]] | None, entries: Sequence[Mapping[str, Any]]
) -> tuple[Transition, ...]:
    """Grants whose state became Active or Expired since `previous` (`status.grants` as read; a
    grant not listed there counts as Pending, so a grant active from its first sync is audited)."""
    before = {
        (str(e.get("grant")), str(e.get("roleRef"))): str(e.get("state"))
        for e in previous or []
        if isinstance(e, Mapping)
    }
    found = []
    for entry in entries:
        state = GrantState(entry["state"])
        old = before.get((entry["grant"], entry["roleRef"]), GrantState.PENDING.value)
        if state is not GrantState.PENDING and old != state.value:
            window = f"{entry.get('validFrom', '')}..{entry.get('validUntil', '')}"
            found.append(
                Transition(entry["grant"], entry["roleRef"], entry.get("scope", ""), old, state, window)
            )
    return tuple(found)
