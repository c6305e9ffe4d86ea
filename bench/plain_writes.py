"""The floor under user mode's wall time (issue 17 point 7): a plain client writing the bindings
the operator would, with nothing else to do.

`python -m bench.plain_writes KUBECONFIG OWNERS MODE IN_FLIGHT` creates, for each owner (the
EntraGroupBinding manifests as created, `owners` of the JSON file OWNERS; owner i bound to group
i % GROUPS, as bench_user_mode's resources are), its RoleBinding in each of the file's
`namespaces`, exactly as
`core.desired.build_binding` makes it (name, labels, annotations, controller owner reference,
subjects: one Group in group mode, the group's 1,000 Users in user mode), POSTed with the
operator's fieldManager through the official client's ApiClient and connection pool, IN_FLIGHT
threads at once. It prints one JSON line: the seconds from the first create to the last answer,
its own CPU seconds and the bytes sent.

The bodies go through the client's REST layer as dicts (its `json.dumps`), not its models: the
models' `sanitize_for_serialization` costs 4.5 ms per 1,000-subject body in Python
(docs/performance.md), which would make this a floor of the client rather than of the server.
It runs in a process of its own because the sandbox's API server runs in the benchmark's.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.e2e.harness import guid

from entra_rbac.constants import FIELD_MANAGER
from entra_rbac.core.desired import Owner, build_binding
from entra_rbac.core.entra import DirectoryMember, MemberType
from entra_rbac.core.subjects import Subject, SubjectSet, render_subjects, users_of

GROUPS, GROUP_SIZE = 10, 1000


def user(n: int) -> dict[str, str]:
    """Directory user n (bench_user_mode's directory and this module's bindings agree on it)."""
    return {"id": guid(100_000 + n), "userPrincipalName": f"user{n}@contoso.com", "userType": "Member"}


def group_id(g: int) -> str:
    return guid(10_000 + g)


def _subject_sets(mode: str) -> list[SubjectSet]:
    """Per group, the subjects the operator binds for it in `mode`."""
    sets = []
    for g in range(GROUPS):
        if mode == "group":
            subjects: tuple[Subject, ...] = (Subject("Group", group_id(g)),)
        else:
            members = tuple(
                DirectoryMember(u["id"], MemberType.USER, u["userPrincipalName"], u["userType"])
                for u in map(user, range(g * GROUP_SIZE, (g + 1) * GROUP_SIZE))
            )
            subjects = users_of([members], "")
        sets.append(SubjectSet(subjects=subjects, group_ids=(group_id(g),)))
    return sets


def bodies(owners: Sequence[dict[str, Any]], mode: str, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Every RoleBinding the operator writes for `owners` (bench_user_mode's `many` resources)
    over `namespaces`; each group's rendered subjects shared by the bodies over it, as the
    operator's plans share them."""
    sets = _subject_sets(mode)
    rendered = [render_subjects(s.subjects) for s in sets]
    found = []
    for i, manifest in enumerate(owners):
        owner, g = Owner.from_manifest(manifest), i % GROUPS
        for ns in namespaces:
            binding = build_binding(owner, "ClusterRole", "edit", ns, sets[g], presorted=True)
            found.append(binding.to_manifest(rendered[g]))
    return found


def write(api: client.ApiClient, body: dict[str, Any]) -> None:
    """POST one RoleBinding (the operator's path and fieldManager), its answer read and dropped."""
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{body['metadata']['namespace']}/rolebindings"
    _, url, headers, _, _ = api.param_serialize(
        method="POST",
        resource_path=path,
        query_params=[("fieldManager", FIELD_MANAGER)],
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api("POST", url, header_params=headers, body=body, _request_timeout=(5.0, 60.0))
    answer: bytes = response.read()  # type: ignore[no-untyped-call]
    if response.status != 201:
        raise AssertionError(f"POST {path}: {response.status} {answer[:300]!r}")


def run(kubeconfig: Path, found: Sequence[dict[str, Any]], in_flight: int) -> dict[str, float]:
    """Create `found`, `in_flight` at once: seconds, this process's CPU seconds, bytes sent."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = in_flight
    sent = sum(len(json.dumps(body)) for body in found)
    with client.ApiClient(configuration) as api, ThreadPoolExecutor(in_flight) as pool:
        cpu0, started = _cpu(), time.monotonic()
        each: Callable[[dict[str, Any]], None] = lambda body: write(api, body)  # noqa: E731
        list(pool.map(each, found))
        return {"seconds": time.monotonic() - started, "cpu": _cpu() - cpu0, "bytes": float(sent)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str]) -> None:
    kubeconfig, owners_file, mode, in_flight = argv
    given = json.loads(Path(owners_file).read_text(encoding="utf-8"))
    found = bodies(given["owners"], mode, given["namespaces"])
    print(json.dumps(run(Path(kubeconfig), found, int(in_flight))))


if __name__ == "__main__":
    main(sys.argv[1:])
