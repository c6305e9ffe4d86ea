"""`report`: the access review. Every managed binding's subjects, named, with role, scope, owning
resource, the Entra groups they come from, creation time and expiry; then the unmanaged bindings
that grant the same roles (what an auditor would otherwise miss).

Streams: bindings are read a page at a time, the next page asked for while this one is written,
so memory stays flat at any size (two pages); only the unmanaged candidates (a few fields each)
are kept until the end, when the set of managed roles is known. Per binding it does no more than
it must: ownership is read off the metadata (not parsed into the core's `ObservedBinding`) and
rows are tuples. Names come from the owning resource's status (the groups the operator last
verified in Entra, with their display names): no directory read. A binding is managed only with
both marks of ownership AND the name its resource gives it.
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
from entra_rbac.constants import DEFAULT_MAX_SHARDS, GROUPS_ANNOTATION, OWNER_UID_LABEL
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import BindingKey, binding_name, shard_index
from entra_rbac.core.plan import carries_ownership
from entra_rbac.core.windows import Grant, binding_expiry, grants_of

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
)


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


def _owner_of(
    binding: Mapping[str, Any], owners: Mapping[str, Owner], max_shards: int = DEFAULT_MAX_SHARDS
) -> Owner | None:
    """The resource that manages `binding`: both marks of ownership AND the name it gives it, or
    a shard of it numbered up to `max_shards` (ENTRA_RBAC_MAX_SHARDS); a name numbered past it
    is none of the resource's bindings (an unmanaged one, listed as such when it grants a
    managed role)."""
    meta = binding.get("metadata") or {}
    labels = meta.get("labels") or {}
    uid = str(labels.get(OWNER_UID_LABEL))
    owner = owners.get(uid)
    if owner is None or not carries_ownership(labels, meta.get("ownerReferences") or (), uid):
        return None
    role = binding.get("roleRef") or {}
    kind = role.get("kind")
    if kind in ("ClusterRole", "Role"):
        base = binding_name(owner.name, kind, str(role.get("name")))
        index = shard_index(str(meta.get("name")), base)  # the binding or one of its shards
        if index is not None and index <= max_shards:
            return owner
    return None


Row = tuple[str, ...]  # one value per column of COLUMNS, in that order


def _rows(binding: Mapping[str, Any], owner: Owner | None, now: datetime) -> Iterator[Row]:
    meta = binding.get("metadata") or {}
    role_ref = binding.get("roleRef") or {}
    namespace = meta.get("namespace")
    groups = [g for g in ((meta.get("annotations") or {}).get(GROUPS_ANNOTATION) or "").split(",") if g]
    via = "; ".join(f"{owner.names.get(g) or g} ({g})" for g in groups) if owner else ""
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    # What every subject of this binding shares.
    section, resource = ("managed", owner.name) if owner else ("unmanaged", "")
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
        yield (section, subject_kind, name, display, via, role, scope, where, resource, created, expires)


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
            title = "Managed bindings" if name == "managed" else "Unmanaged bindings granting the same roles"
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
                f"{counts['unmanagedBindings']} unmanaged bindings grant the same roles.\n"
            )


def write_report(
    reader: ClusterReader, output: str, out: TextIO, now: datetime, *, max_shards: int = DEFAULT_MAX_SHARDS
) -> dict[str, int]:
    """Write the report to `out` as it is read; returns the counts (also in json and markdown).
    `now` decides which time-bound grants stand behind a binding (its `expires`); `max_shards`
    (ENTRA_RBAC_MAX_SHARDS) the highest shard number a resource's binding is written as."""
    try:
        owners = _owners(reader.resources())
    except CrdMissingError:
        owners = {}
    writer = _Writer(output, out)
    writer.begin()
    managed_roles: set[tuple[str, str]] = set()
    unmanaged: list[Mapping[str, Any]] = []
    counts = {"managedBindings": 0, "managedRows": 0, "unmanagedBindings": 0, "unmanagedRows": 0}
    for pages in (reader.cluster_role_bindings(), reader.role_bindings()):
        for page in pages:
            for binding in page:
                owner = _owner_of(binding, owners, max_shards)
                ref = binding.get("roleRef") or {}
                if owner is None:
                    # Only what the unmanaged section needs is kept.
                    meta = binding.get("metadata") or {}
                    unmanaged.append(
                        {
                            "metadata": {
                                "name": meta.get("name"),
                                "namespace": meta.get("namespace"),
                                "creationTimestamp": meta.get("creationTimestamp"),
                            },
                            "roleRef": ref,
                            "subjects": binding.get("subjects") or [],
                        }
                    )
                    continue
                managed_roles.add((str(ref.get("kind")), str(ref.get("name"))))
                counts["managedBindings"] += 1
                for row in _rows(binding, owner, now):
                    writer.row(row)
                    counts["managedRows"] += 1
            out.flush()
    writer.section("unmanaged")
    for kept in unmanaged:
        ref = kept["roleRef"]
        if (str(ref.get("kind")), str(ref.get("name"))) not in managed_roles:
            continue
        counts["unmanagedBindings"] += 1
        for row in _rows(kept, None, now):
            writer.row(row)
            counts["unmanagedRows"] += 1
    writer.end(counts)
    return counts
