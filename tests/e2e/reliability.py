"""What the end-to-end reliability scenarios of issue 18 share: the directory's people and its
team group, the resource several scenarios apply, and readers of status and of the sandbox
directory's timestamped request log.

The scenarios, each with request counts as evidence, on the sandbox and on the real control
plane, are one file per theme (so that pytest-xdist's `--dist loadfile` can run them on different
workers, docs/testing.md):

- `test_reliability_forgery.py`: a namespace admin forges a binding carrying a resource's marks
  (docs/design.md, Ownership);
- `test_reliability_peering.py`: two, then three, `entra-rbac run` processes at once
  (docs/deployment.md, Never two writers);
- `test_reliability_limits.py`: maxStaleness across a restart; the largest legal spec;
- `test_reliability_revocation.py`: a blip never revokes, a lasting deletion only once confirmed,
  and status while a revocation waits or is held (docs/design.md, Directory semantics);
- `test_reliability_throttle.py`: one throttle for the tenant; a 404 on getByIds itself.
"""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.harness import Cluster, guid

TEAM = guid(300)
ALICE = {"id": guid(1), "userPrincipalName": "alice@contoso.com", "userType": "Member"}
BOB = {"id": guid(2), "userPrincipalName": "bob@contoso.com", "userType": "Member"}


def directory(*members: dict[str, str]) -> dict[str, Any]:
    return {
        "users": [ALICE, BOB],
        "groups": [
            {
                "id": TEAM,
                "displayName": "Team",
                "mailNickname": "team",
                "securityEnabled": True,
                "members": [m["id"] for m in members],
            }
        ],
    }


def pair() -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "pair"},
        "spec": {"groups": [{"id": TEAM}], "clusterRoleBindings": [{"clusterRole": "view"}]},
    }


def conditions_of(cluster: Cluster, name: str) -> dict[str, tuple[str, str]]:
    status = cluster.egb(name).get("status") or {}
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status.get("conditions") or []}


def entra_log(cluster: Cluster, path: str, since: float = 0.0) -> list[Any]:
    """The sandbox directory's requests (timestamped) on paths matching `path`, after `since`."""
    compiled = re.compile(path)
    return [r for r in cluster.sandbox.entra.request_log() if r.time > since and compiled.search(r.path)]
