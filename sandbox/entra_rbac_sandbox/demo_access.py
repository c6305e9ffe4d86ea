"""The demo's who-can-do-what table: the directory's principals as AKS names them, and their access.

Holds the principals read from a sandbox directory document (each with the name AKS puts in its
token and its transitive group ids), the checks the demo asks about, SubjectAccessReviews through
the official client, and the aligned text table (with cells that changed since the previous
table marked). It must not know the operator's code: it reads the directory file and asks the
API server, as a platform engineer would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client


@dataclass(frozen=True)
class Principal:
    """A user or service principal: its display name, its AKS user name, its transitive groups."""

    label: str
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    """One (verb, resource, namespace) question; an empty namespace means cluster-wide."""

    verb: str
    resource: str
    api_group: str = ""
    namespace: str = ""

    @property
    def header(self) -> tuple[str, str]:
        return f"{self.verb} {self.resource}", self.namespace or "cluster-wide"


CHECKS = (
    Check("get", "pods", namespace="payments"),
    Check("create", "deployments", "apps", "payments"),
    Check("patch", "deployments", "apps", "payments"),
    Check("delete", "pods", namespace="platform-tools"),
    Check("list", "pods"),
    Check("list", "secrets"),
)

SP_KINDS = {"Application": "app", "ManagedIdentity": "managed identity"}
Answers = dict[tuple[str, Check], bool]


def aks_user_name(entry: Mapping[str, Any], kind: str) -> str:
    """AKS names member users by UPN; guests (#EXT# UPN) and service principals by object id."""
    upn = str(entry.get("userPrincipalName") or "")
    if kind == "user" and upn and "#EXT#" not in upn:
        return upn
    return str(entry["id"]).lower()


def transitive_groups(directory: Mapping[str, Any], member_id: str) -> tuple[str, ...]:
    """The ids of every group `member_id` belongs to, directly or through nested groups."""
    parents: dict[str, set[str]] = {}
    for group in directory.get("groups") or []:
        for member in group.get("members") or []:
            parents.setdefault(str(member).lower(), set()).add(str(group["id"]).lower())
    found: set[str] = set()
    pending = [member_id.lower()]
    while pending:
        for parent in parents.get(pending.pop(), set()) - found:
            found.add(parent)
            pending.append(parent)
    return tuple(sorted(found))


def principals(directory: Mapping[str, Any]) -> list[Principal]:
    """Users, then service principals, in the directory's order (devices cannot sign in)."""
    found: list[Principal] = []
    for kind, key in (("user", "users"), ("service principal", "servicePrincipals")):
        for entry in directory.get(key) or []:
            label = str(entry.get("displayName") or entry["id"])
            if entry.get("userType") == "Guest":
                label = f"{label}, guest"
            elif kind != "user":
                label = f"{label} ({SP_KINDS.get(entry.get('servicePrincipalType'), 'app')})"
            found.append(
                Principal(label, aks_user_name(entry, kind), transitive_groups(directory, entry["id"]))
            )
    return found


def review(api: client.ApiClient, who: Sequence[Principal], checks: Sequence[Check] = CHECKS) -> Answers:
    """One SubjectAccessReview per (principal, check), as the API server's authorizer answers it."""
    authorization = client.AuthorizationV1Api(api)
    answers: Answers = {}
    for principal in who:
        for check in checks:
            attributes = client.V1ResourceAttributes(
                verb=check.verb, resource=check.resource, group=check.api_group, namespace=check.namespace
            )
            spec = client.V1SubjectAccessReviewSpec(
                user=principal.name, groups=list(principal.groups), resource_attributes=attributes
            )
            result = authorization.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))
            answers[(principal.name, check)] = bool(result.status and result.status.allowed)
    return answers


def render(
    who: Sequence[Principal],
    answers: Answers,
    previous: Answers | None = None,
    checks: Sequence[Check] = CHECKS,
) -> str:
    """An aligned table; a cell that differs from `previous` reads e.g. `yes -> no`."""

    def cell(principal: Principal, check: Check) -> str:
        now = "yes" if answers[(principal.name, check)] else "no"
        before = (previous or {}).get((principal.name, check))
        if previous is None or before is None or before == answers[(principal.name, check)]:
            return now
        return f"{'yes' if before else 'no'} -> {now}"

    rows = [
        ["WHO", "AKS USER NAME", *(c.header[0] for c in checks)],
        ["", "", *(c.header[1] for c in checks)],
        *([p.label, p.name, *(cell(p, c) for c in checks)] for p in who),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def changes(who: Sequence[Principal], answers: Answers, previous: Answers) -> list[str]:
    """One line per answer that changed: `alice@contoso.com: get pods (payments) yes -> no`."""
    lines = []
    for principal in who:
        for check in CHECKS:
            key = (principal.name, check)
            if key in previous and previous[key] != answers[key]:
                verb, where = check.header
                old, new = ("yes" if previous[key] else "no"), ("yes" if answers[key] else "no")
                lines.append(f"{principal.name}: {verb} ({where}) {old} -> {new}")
    return lines
