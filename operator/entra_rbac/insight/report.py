"""`report`: the access review. Every managed binding's subjects, named, with role, scope, owning
resource, the Entra groups they come from, creation time and expiry; then the unmanaged bindings
that grant the same roles (what an auditor would otherwise miss).

Streams: bindings are read a page at a time, the next page asked for while this one is written,
so memory stays flat at any size (two pages); only the unmanaged candidates (a few fields each)
are kept until the end, when the set of managed roles is known. Per binding it does no more than
it must: ownership is read off the metadata (not parsed into the core's `ObservedBinding`) and
rows are tuples. Names come from the owning resource's status (the groups the operator last
verified in Entra, with their display names): no directory read. A binding is managed only as the
reconcile counts it (`reconciler.ownership`): both marks of ownership at one of its resource's
targets, a name and namespace where the spec grants now (the namespaces, allowlist and shard cap
in force). One carrying a resource's marks anywhere else (a forgery or a leftover the operator
deletes) is attributed to nobody: it is listed in a section of its own, `stray`, naming the
resource it claims (`claimedBy`), whatever role it grants.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import ValidationError

from entra_rbac.adapters.kube.reader import ClusterReader, CrdMissingError
from entra_rbac.constants import GROUPS_ANNOTATION
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.windows import Grant, binding_expiry, grants_of
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.ownership import Claim, Claimant, claim_of, claimants

# Bindings per list page (two are held: the one written and the next). Larger than the other lists'
# pages: a page of bindings is small, and fewer round trips made the 20,000-binding benchmark 4.8
# times faster on the sandbox (make bench).
REPORT_PAGE_SIZE = 5000
COLUMNS = (
    "section",
    "subjectKind",
    "subject",
    "displayName",
    "viaGroups",
    "role",
    "scope",
    "binding",
    "resource",
    "created",
    "expires",
    "claimedBy",
)
SECTIONS = {
    "managed": "Managed bindings",
    "unmanaged": "Unmanaged bindings granting the same roles",
    "stray": "Bindings claiming a resource without being one of its targets (forged or stale)",
}


@dataclass(frozen=True)
class Owner:
    name: str
    prefix: str
    names: Mapping[str, str]  # Entra group id -> display name (status.groups)
    mode: str
    grants: tuple[Grant, ...] = ()  # only a time-bound spec's (the others never expire)


def _time_bound_grants(spec: Mapping[str, Any]) -> tuple[Grant, ...]:
    """The grants of a spec with a validFrom / validUntil anywhere; () for the others (most
    resources: no parse) and for a spec that does not parse (its own status says why)."""
    text = repr(spec)
    if "validFrom" not in text and "validUntil" not in text:
        return ()
    try:
        return grants_of(EntraGroupBindingSpec.model_validate(spec))
    except ValidationError:
        return ()


def _owners(resources: list[dict[str, Any]]) -> dict[str, Owner]:
    found = {}
    for resource in resources:
        meta, spec = resource.get("metadata") or {}, resource.get("spec") or {}
        subjects = spec.get("subjects") or {}
        names = {
            str(g["id"]): str(g.get("displayName") or "")
            for g in (resource.get("status") or {}).get("groups") or []
            if g.get("id")
        }
        found[str(meta.get("uid"))] = Owner(
            str(meta.get("name")),
            str(subjects.get("groupPrefix") or ""),
            names,
            str(subjects.get("kind") or "Group"),
            _time_bound_grants(spec),
        )
    return found


def expiry_of(binding: Mapping[str, Any], owner: Owner | None, now: datetime) -> str:
    """When this binding's time ends (its resource's validUntil, as core.windows reads it); empty
    for an unmanaged binding and for one no end bounds."""
    if owner is None or not owner.grants:
        return ""
    end = binding_expiry(owner.grants, owner.name, BindingKey.from_manifest(binding), now)
    return end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if end else ""


def _claim(binding: Mapping[str, Any], by_label: Mapping[str, Claimant]) -> Claim | None:
    """Whose marks `binding` carries and whether it is that resource's own (at one of its
    targets, as the reconcile decides: `reconciler.ownership.claim_of`); None: unmanaged."""
    meta = binding.get("metadata") or {}
    key = BindingKey.from_manifest(binding)
    return claim_of(meta.get("labels") or {}, meta.get("ownerReferences") or (), key, by_label)


Row = tuple[str, ...]  # one value per column of COLUMNS, in that order


def _rows(
    binding: Mapping[str, Any], owner: Owner | None, now: datetime, *, claimed_by: str = ""
) -> Iterator[Row]:
    """One row per subject: of the `owner`'s binding (managed), or of nobody's (unmanaged; a
    stray when it carries the marks of the resource `claimed_by`)."""
    meta = binding.get("metadata") or {}
    role_ref = binding.get("roleRef") or {}
    namespace = meta.get("namespace")
    groups = [g for g in ((meta.get("annotations") or {}).get(GROUPS_ANNOTATION) or "").split(",") if g]
    via = "; ".join(f"{owner.names.get(g) or g} ({g})" for g in groups) if owner else ""
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    # What every subject of this binding shares.
    section, resource = ("managed", owner.name) if owner else ("stray" if claimed_by else "unmanaged", "")
    role = f"{role_ref.get('kind')}/{role_ref.get('name')}"
    scope = f"namespace {namespace}" if namespace else "cluster"
    where = f"{kind} {namespace + '/' if namespace else ''}{meta.get('name')}"
    created, expires = str(meta.get("creationTimestamp") or ""), expiry_of(binding, owner, now)
    for subject in binding.get("subjects") or ():
        subject_kind, name = str(subject.get("kind", "")), str(subject.get("name", ""))
        display = ""
        if owner is not None and subject_kind == "Group":
            display = owner.names.get(name.removeprefix(owner.prefix), "")
        if subject_kind == "ServiceAccount":
            name = f"{subject.get('namespace') or namespace}/{name}"
        yield (
            section,
            subject_kind,
            name,
            display,
            via,
            role,
            scope,
            where,
            resource,
            created,
            expires,
            claimed_by,
        )


class _Writer:
    """One output format, written row by row."""

    def __init__(self, output: str, out: TextIO) -> None:
        self.output, self.out = output, out
        self._csv = csv.writer(out, lineterminator="\n") if output == "csv" else None
        self._first = True

    def begin(self) -> None:
        if self._csv is not None:
            self._csv.writerow(COLUMNS)
        elif self.output == "json":
            self.out.write('{"rows": [\n')
        else:
            self.out.write("### Access review\n\n")
            self.section("managed")

    def section(self, name: str) -> None:
        if self.output == "markdown":
            title = SECTIONS[name]
            self.out.write(
                f"\n#### {title}\n\n| {' | '.join(COLUMNS[1:])} |\n|{'---|' * (len(COLUMNS) - 1)}\n"
            )

    def row(self, row: Row) -> None:
        if self._csv is not None:
            self._csv.writerow(row)
        elif self.output == "json":
            self.out.write(("" if self._first else ",\n") + json.dumps(dict(zip(COLUMNS, row, strict=True))))
        else:
            cells = (cell.replace("|", "\\|") for cell in row[1:])
            self.out.write(f"| {' | '.join(cells)} |\n")
        self._first = False

    def end(self, counts: Mapping[str, int]) -> None:
        if self.output == "json":
            self.out.write(f'\n], "counts": {json.dumps(dict(counts))}}}\n')
        elif self.output == "markdown":
            self.out.write(
                f"\n{counts['managedBindings']} managed bindings ({counts['managedRows']} grants); "
                f"{counts['unmanagedBindings']} unmanaged bindings grant the same roles; "
                f"{counts['strayBindings']} bindings claim a resource without being one of its targets.\n"
            )


def write_report(
    reader: ClusterReader, output: str, out: TextIO, now: datetime, *, policy: Policy | None = None
) -> dict[str, int]:
    """Write the report to `out` as it is read; returns the counts (also in json and markdown).
    `now` decides which time-bound grants stand behind a binding (its `expires`); `policy` (the
    operator's, `insight.sources.policy_in_force`) where each resource's bindings stand: its
    reserved namespaces, allowlist and shard cap (ENTRA_RBAC_MAX_SHARDS)."""
    try:
        resources = reader.resources()
    except CrdMissingError:
        resources = []
    namespaces = [NamespaceInfo.from_manifest(n) for n in reader.namespaces()] if resources else []
    by_label = claimants(resources, namespaces, policy or Policy())
    owners = _owners(resources)
    writer = _Writer(output, out)
    writer.begin()
    managed_roles: set[tuple[str, str]] = set()
    unmanaged: list[Mapping[str, Any]] = []
    strays: list[tuple[Mapping[str, Any], str]] = []
    counts = {
        "managedBindings": 0,
        "managedRows": 0,
        "unmanagedBindings": 0,
        "unmanagedRows": 0,
        "strayBindings": 0,
        "strayRows": 0,
    }
    for pages in (reader.cluster_role_bindings(), reader.role_bindings()):
        for page in pages:
            for binding in page:
                claim = _claim(binding, by_label)
                ref = binding.get("roleRef") or {}
                if claim is None or not claim.own:
                    # Only what the later sections need is kept.
                    kept = _kept(binding)
                    if claim is None:
                        unmanaged.append(kept)
                    else:
                        strays.append((kept, claim.claimant.name))
                    continue
                managed_roles.add((str(ref.get("kind")), str(ref.get("name"))))
                counts["managedBindings"] += 1
                for row in _rows(binding, owners[claim.claimant.uid], now):
                    writer.row(row)
                    counts["managedRows"] += 1
            out.flush()
    writer.section("unmanaged")
    for other in unmanaged:
        ref = other["roleRef"]
        if (str(ref.get("kind")), str(ref.get("name"))) not in managed_roles:
            continue
        counts["unmanagedBindings"] += 1
        for row in _rows(other, None, now):
            writer.row(row)
            counts["unmanagedRows"] += 1
    writer.section("stray")
    for stray, claimed in strays:
        counts["strayBindings"] += 1
        for row in _rows(stray, None, now, claimed_by=claimed):
            writer.row(row)
            counts["strayRows"] += 1
    writer.end(counts)
    return counts


def _kept(binding: Mapping[str, Any]) -> dict[str, Any]:
    meta = binding.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "roleRef": binding.get("roleRef") or {},
        "subjects": binding.get("subjects") or [],
    }
