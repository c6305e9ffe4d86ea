"""Fixtures for the directory adapter's tests against the sandbox Entra directory over HTTPS.

- `graph`: a `GraphSandbox` around the suite's `entra_directory` server (tests/fixtures/entra.py):
  `.config(**changes)` a `DirectoryConfig` reaching it (client secret by default, short timeouts),
  `.write(Tenant)` replaces the directory file (`write_directory`), `.fault(...)` injects a fault
  (docs/design.md, The sandbox contract),
  `.request_times(method, path_regex)` when matching requests arrived (method "*": any) and
  `.request_queries(...)` what they asked (from the sandbox's log).
- `Tenant`: a small builder of directory files with deterministic GUIDs.
- `Recorder`: a `DirectoryMetrics` that also keeps the time of every attempt and can call a
  hook after each (to change the sandbox between two pages of one read).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from entra_rbac.adapters.directory import CountingMetrics, DirectoryConfig, Outcome
from entra_rbac_sandbox.entra.server import EntraSandboxThread

NAMESPACE = uuid.UUID("6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f")


def guid(name: str) -> str:
    """A stable lower-case GUID per name, so tests can name objects before writing them."""
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass
class Tenant:
    """A directory file (docs/design.md, The sandbox contract) built in code."""

    users: list[dict[str, Any]] = field(default_factory=list)
    service_principals: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def user(self, upn: str, user_type: str = "Member") -> str:
        self.users.append(
            {"id": guid(upn), "userPrincipalName": upn, "userType": user_type, "displayName": upn}
        )
        return guid(upn)

    def service_principal(self, name: str, kind: str = "Application") -> str:
        self.service_principals.append(
            {
                "id": guid(name),
                "appId": guid(name + "/app"),
                "displayName": name,
                "servicePrincipalType": kind,
            }
        )
        return guid(name)

    def device(self, name: str) -> str:
        self.extra.setdefault("devices", []).append({"id": guid(name), "displayName": name})
        return guid(name)

    def contact(self, name: str) -> str:
        self.extra.setdefault("orgContacts", []).append({"id": guid(name), "displayName": name})
        return guid(name)

    def group(
        self,
        display_name: str,
        *,
        mail_nickname: str | None = None,
        members: list[str] | None = None,
        key: str | None = None,
        deleted: bool = False,
    ) -> str:
        group_id = guid(key or display_name)
        entry: dict[str, Any] = {
            "id": group_id,
            "displayName": display_name,
            "mailNickname": mail_nickname or f"g-{group_id[:8]}",
            "securityEnabled": True,
            "members": members or [],
        }
        if deleted:
            entry["deleted"] = True
        self.groups.append(entry)
        return group_id

    def document(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "servicePrincipals": self.service_principals,
            "groups": self.groups,
            **self.extra,
        }


class Recorder(CountingMetrics):
    """Counts like CountingMetrics and keeps (monotonic time, operation, outcome) of each attempt."""

    def __init__(self, hook: Callable[[str, str], None] | None = None) -> None:
        super().__init__()
        self.attempts: list[tuple[float, str, str]] = []
        self._hook = hook

    def graph_request(self, operation: str, outcome: Outcome) -> None:
        super().graph_request(operation, outcome)
        self.attempts.append((time.monotonic(), operation, outcome.value))
        if self._hook is not None:
            self._hook(operation, outcome.value)


class GraphSandbox:
    def __init__(self, server: EntraSandboxThread) -> None:
        self.server = server
        self._http = httpx.Client(verify=str(server.ca_file), timeout=10)

    def close(self) -> None:
        self._http.close()

    def config(self, **changes: Any) -> DirectoryConfig:
        values: dict[str, Any] = {
            "tenant_id": self.server.tenant_id,
            "client_id": self.server.client_id,
            "cloud": "custom",
            "credential": "client-secret",
            "client_secret": self.server.client_secret,
            "authority_host": self.server.authority_host,
            "graph_url": self.server.graph_url,
            "ca_file": str(self.server.ca_file),
            "cache_ttl": 60.0,
            # A hang guard, not a timing: at load 13-16 (make test beside other work) single reads
            # took over 3 s; a test about timeouts sets its own (test_directory_table: 0.5 s).
            "request_timeout": 10.0,
            "max_retries": 3,
            "max_retry_wait": 5.0,
        }
        values.update(changes)
        return DirectoryConfig(**values)

    def write(self, tenant: Tenant) -> None:
        self.server.write_directory(tenant.document())

    def fault(
        self,
        path: str,
        *,
        method: str = "GET",
        status: int = 503,
        retry_after: float | None = None,
        count: int = 1,
        delay_ms: int = 0,
        drop: bool = False,
    ) -> None:
        body: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "count": count,
            "delayMs": delay_ms,
            "drop": drop,
        }
        if retry_after is not None:
            body["retryAfter"] = retry_after
        response = self._http.post(f"{self.server.url}/_sandbox/faults", json=body)
        response.raise_for_status()

    def request_times(self, method: str, path: str) -> list[float]:
        """Arrival times (wall clock, from the sandbox's request log) of requests whose path
        matches the regex `path`."""
        return sorted(float(entry["time"]) for entry in self._log(method, path))

    def request_queries(self, method: str, path: str) -> list[str]:
        """Raw query strings the sandbox received (inner `$batch` requests included)."""
        return [str(entry["query"]) for entry in self._log(method, path)]

    def _log(self, method: str, path: str) -> list[dict[str, Any]]:
        response = self._http.get(f"{self.server.url}/_sandbox/requests", params={"log": "true"})
        response.raise_for_status()
        return [
            entry
            for entry in response.json()["log"]
            if method in ("*", entry["method"]) and re.search(path, entry["path"])
        ]


@pytest.fixture
def graph(entra_directory: EntraSandboxThread) -> Iterator[GraphSandbox]:
    sandbox = GraphSandbox(entra_directory)
    yield sandbox
    sandbox.close()
