"""The body of `import` (`entra-rbac import`, `kubectl entra import`; docs/migration.md).

Lists the cluster read-only (`ClusterReader`: bindings, namespaces, roles, EntraGroupBindings), reads
Entra only for user mode (each `--group`'s transitive members, through the operator's directory
settings and adapter or a directory file), lets `importer` decide and prove, and prints through
`render_import`. It never writes to the cluster: the hand-over commands are printed for a person
who may edit the bindings to run (docs/design.md, Import). Exit codes: 0 every candidate imported,
2 some bindings not importable (listed on stderr, each with its reason), 1 an error (one line).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from entra_rbac.adapters.kube.reader import ClusterReader, CrdMissingError
from entra_rbac.core.entra import DirectoryMember
from entra_rbac.core.models import DNS_LABEL_PATTERN, GroupRef, GroupState, SubjectKind, SubjectsSpec
from entra_rbac.errors import DirectoryError
from entra_rbac.insight import render_import
from entra_rbac.insight.commands import EXIT_CHANGES, EXIT_OK, EXPECTED, Connection, fail
from entra_rbac.insight.importer import Candidate, ImportOptions, ImportResult, classify, import_bindings
from entra_rbac.insight.inputs import InputError
from entra_rbac.insight.plan import ClusterState
from entra_rbac.insight.sources import load_cli_settings, open_directory, open_reader, policy_in_force
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.resolve import read_directory

OUTPUTS = ("yaml", "json")


@dataclass(frozen=True)
class ImportRequest:
    namespaces: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    group_prefix: str = ""
    user_prefix: str = ""
    output: str = "yaml"
    output_dir: Path | None = None
    script: str | None = None  # "annotate" or "cleanup": print that script instead


def check_request(request: ImportRequest) -> ImportOptions:
    """The options, or an `InputError` naming the option and what is wrong with it."""
    if request.output not in OUTPUTS:
        raise InputError(f"--output {request.output!r}: must be one of {', '.join(OUTPUTS)}")
    for namespace in request.namespaces:
        if re.match(DNS_LABEL_PATTERN, namespace) is None or len(namespace) > 63:
            raise InputError(f"--namespace {namespace!r}: not a namespace name (a DNS-1123 label)")
    for group in request.groups:
        if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", group) is None:
            raise InputError(f"--group {group!r}: not an Entra group object id (a lower-case GUID)")
    try:
        SubjectsSpec(group_prefix=request.group_prefix, user_prefix=request.user_prefix)
    except ValidationError as error:
        first = error.errors()[0]
        option = "--group-prefix" if "group" in str(first["loc"][0]).lower() else "--user-prefix"
        raise InputError(f"{option}: {first['msg']}") from None
    if request.script is not None and request.output_dir is not None:
        raise InputError(f"--{request.script} prints a script: it does not go with --output-dir")
    if request.output_dir is not None and request.output_dir.exists() and not request.output_dir.is_dir():
        raise InputError(f"--output-dir {str(request.output_dir)!r}: exists and is not a folder")
    return ImportOptions(
        namespaces=frozenset(request.namespaces),
        groups=tuple(dict.fromkeys(request.groups)),
        group_prefix=request.group_prefix,
        user_prefix=request.user_prefix,
    )


async def _members(directory_file: Path | None, groups: Sequence[str]) -> dict[str, list[DirectoryMember]]:
    """Each --group's transitive members, through the reconcile's own directory phase."""
    settings = load_cli_settings(offline=directory_file is not None)
    async with open_directory(settings, directory_file) as directory:
        read = await read_directory(directory, [GroupRef(id=g) for g in groups], {}, SubjectKind.USER)
    if read.error is not None or read.resolutions is None:
        raise DirectoryError(f"Entra could not be read for --group: {read.error}")
    for group, resolution in zip(groups, read.resolutions, strict=True):
        if resolution.state is not GroupState.RESOLVED:
            raise DirectoryError(f"--group {group!r}: {resolution.message or 'no such group in Entra'}")
    return {gid: list(found) for gid, found in read.members.items()}  # the directory's are shared


def _live_resources(reader: ClusterReader) -> dict[str, Mapping[str, Any]]:
    """The live EntraGroupBindings' specs by name."""
    try:
        return {str((r.get("metadata") or {}).get("name")): r.get("spec") or {} for r in reader.resources()}
    except CrdMissingError:
        return {}  # before the operator is installed: no resource can clash


def decide(
    reader: ClusterReader,
    bindings: Sequence[Mapping[str, Any]],
    options: ImportOptions,
    members: Mapping[str, Sequence[DirectoryMember]],
    policy: Policy,
) -> ImportResult:
    """List the rest of what the proof and the guardrails read, then let the importer decide."""
    live = _live_resources(reader)
    state = ClusterState.from_lists([], [], reader.namespaces(), reader.cluster_roles(), reader.roles())
    return import_bindings(
        bindings,
        state.namespaces,
        options,
        existing_resources=live,
        members=members,
        allowed_roles=policy.allowed_roles,
        reserved_namespaces=list(policy.reserved_namespaces),
        guardrails=(policy.guardrails, state.view(policy)),
    )


def _needs_members(bindings: Sequence[Mapping[str, Any]], options: ImportOptions) -> bool:
    if not options.groups:
        return False
    return any(
        isinstance(found := classify(b, options), Candidate) and found.mode is SubjectKind.USER
        for b in bindings
    )


def _kube_args(connection: Connection) -> list[str]:
    args = [f"--kubeconfig={connection.kubeconfig}"] if connection.kubeconfig else []
    return args + ([f"--context={connection.context}"] if connection.context else [])


def _write(result: ImportResult, request: ImportRequest, kube_args: list[str], out: TextIO) -> None:
    if request.script == "annotate":
        out.write(render_import.annotate_script(result, kube_args))
    elif request.script == "cleanup":
        out.write(render_import.cleanup_script(result, kube_args))
    elif request.output_dir is not None:
        request.output_dir.mkdir(parents=True, exist_ok=True)
        for resource in result.resources:
            path = request.output_dir / f"{resource.name}.{request.output}"
            path.write_text(
                render_import.render_resource(resource, request.output, kube_args), encoding="utf-8"
            )
            out.write(f"Wrote {path} (replaces {len(resource.replaces)})\n")
    else:
        out.write(render_import.render_all(result, request.output, kube_args))


def run_import(
    request: ImportRequest,
    connection: Connection,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    errors = err or sys.stderr
    try:
        options = check_request(request)
        settings = load_cli_settings(offline=True)  # the policy part: allowlist, reserved namespaces
        reader = open_reader(connection.kubeconfig, connection.context)
        # The guardrails in force, as plan and the operator read them: the live object, else settings.
        policy, warning = policy_in_force(settings, reader.guardrails())
        if warning is not None:
            print(f"kubectl entra import: warning: {warning}", file=errors)
        bindings = reader.bindings()
        members: Mapping[str, Sequence[DirectoryMember]] = {}
        if _needs_members(bindings, options):
            members = asyncio.run(_members(connection.directory_file, options.groups))
        result = decide(reader, bindings, options, members, policy)
        _write(result, request, _kube_args(connection), out or sys.stdout)
    except (*EXPECTED, OSError) as error:
        return fail("import", error, errors)
    for line in render_import.summary(result):
        print(line, file=errors)
    return EXIT_CHANGES if result.refused else EXIT_OK
