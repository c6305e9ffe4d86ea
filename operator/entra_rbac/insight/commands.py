"""The bodies of `plan`, `explain` and `report` (`entra-rbac ...` and `kubectl entra ...`).

Each `run_*` reads, decides through the pure modules, writes to `out` and returns the exit code:
0 nothing would change (plan) or done, 2 something would change (plan, as `terraform plan
-detailed-exitcode`), 1 an error, printed as ONE line on stderr naming what is wrong. The click
glue in `entra_rbac.cli` only parses options and calls these.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from entra_rbac.adapters.directory.file import DirectoryFileError
from entra_rbac.adapters.kube.reader import ClusterReader
from entra_rbac.core.entra import Directory
from entra_rbac.errors import DirectoryError, KubeError, SettingsError
from entra_rbac.insight import explain, report
from entra_rbac.insight.inputs import InputError, Proposal, read_files, read_kustomization
from entra_rbac.insight.plan import ClusterState, ResourcePlan, plan_deletion, plan_resource
from entra_rbac.insight.render_plan import render
from entra_rbac.insight.sources import (
    load_cli_settings,
    open_directory,
    open_reader,
    policy_in_force,
    reading_policy,
)
from entra_rbac.reconciler.context import Policy
from entra_rbac.reconciler.resolve import read_directory

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
# Errors a command reports as one line (anything else is a bug and keeps its traceback).
EXPECTED = (InputError, KubeError, SettingsError, DirectoryError, DirectoryFileError)


@dataclass(frozen=True)
class Connection:
    kubeconfig: str | None = None
    context: str | None = None
    directory_file: Path | None = None


def fail(command: str, error: Exception, err: TextIO | None = None) -> int:
    print(f"kubectl entra {command}: {error}", file=err or sys.stderr)
    return EXIT_ERROR


def warn(command: str, warning: str | None, err: TextIO | None = None) -> None:
    if warning is not None:
        print(f"kubectl entra {command}: warning: {warning}", file=err or sys.stderr)


def read_proposal(files: Sequence[Path], kustomization: Path | None) -> Proposal:
    if kustomization is not None and files:
        raise InputError("give either -f or -k, not both")
    if kustomization is not None:
        return read_kustomization(kustomization)
    if not files:
        raise InputError("nothing to plan: give -f FILE|DIR or -k DIR")
    return read_files(files)


def cluster_state(reader: ClusterReader, proposal: Proposal) -> ClusterState:
    return ClusterState.from_lists(
        reader.resources(),
        reader.bindings(),
        reader.namespaces(),
        [*reader.cluster_roles(), *(r for r in proposal.roles if r.get("kind") == "ClusterRole")],
        [*reader.roles(), *(r for r in proposal.roles if r.get("kind") == "Role")],
        proposed_namespaces=proposal.namespaces,
    )


async def _plans(
    proposal: Proposal,
    state: ClusterState,
    directory: Directory,
    policy: Policy,
    *,
    prune: bool,
    now: datetime,
) -> list[ResourcePlan]:
    plans = []
    for resource in proposal.resources:
        status = (state.resources.get(resource.name) or {}).get("status") or {}
        spec = resource.spec
        read = await read_directory(directory, spec.groups, status, spec.subjects.kind)
        if read.error is not None and not spec.suspend:
            raise DirectoryError(f"Entra could not be read for {resource.name!r}: {read.error}")
        plans.append(plan_resource(resource.name, spec, read, state, policy, now=now, source=resource.source))
    if prune:
        proposed = {r.name for r in proposal.resources}
        plans.extend(plan_deletion(name, state) for name in sorted(state.resources) if name not in proposed)
    return plans


def run_plan(
    files: Sequence[Path],
    kustomization: Path | None,
    connection: Connection,
    *,
    output: str = "text",
    prune: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    try:
        proposal = read_proposal(files, kustomization)
        settings = load_cli_settings(offline=connection.directory_file is not None)
        reader = open_reader(connection.kubeconfig, connection.context)
        state = cluster_state(reader, proposal)
        policy, warning = policy_in_force(settings, reader.guardrails())
        warn("plan", warning, err)

        async def plans() -> list[ResourcePlan]:
            async with open_directory(settings, connection.directory_file) as directory:
                return await _plans(
                    proposal,
                    state,
                    directory,
                    policy,
                    prune=prune,
                    now=datetime.now(UTC),
                )

        found = asyncio.run(plans())
    except EXPECTED as error:
        return fail("plan", error, err)
    (out or sys.stdout).write(render(found, output, ignored=proposal.ignored))
    return EXIT_CHANGES if any(p.changes for p in found) else EXIT_OK


def run_explain(
    query: explain.Query,
    connection: Connection,
    *,
    output: str = "text",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    try:
        reader = open_reader(connection.kubeconfig, connection.context)
        policy, warning = reading_policy(reader)
        warn("explain", warning, err)
        state = explain.ExplainState.read(reader, policy=policy)
        directory_wanted = connection.directory_file is not None or explain.needs_directory(query)
        settings = (
            load_cli_settings(offline=connection.directory_file is not None) if directory_wanted else None
        )

        async def answer() -> explain.Answer:
            if settings is None:
                return await explain.explain(query, state, None)
            async with open_directory(settings, connection.directory_file) as directory:
                return await explain.explain(query, state, directory)

        found = asyncio.run(answer())
    except EXPECTED as error:
        return fail("explain", error, err)
    (out or sys.stdout).write(explain.render(found, output))
    return EXIT_OK


def run_report(
    connection: Connection, *, output: str = "csv", out: TextIO | None = None, err: TextIO | None = None
) -> int:
    try:
        reader = open_reader(connection.kubeconfig, connection.context, page_size=report.REPORT_PAGE_SIZE)
        policy, warning = reading_policy(reader)
        warn("report", warning, err)
        report.write_report(reader, output, out or sys.stdout, datetime.now(UTC), policy=policy)
    except EXPECTED as error:
        return fail("report", error, err)
    return EXIT_OK
