"""The end-to-end harness: the operator as a real `entra-rbac run` process against an API server.

`Cluster` wraps the launcher's `Sandbox` (the Entra directory, and either the sandbox API server or
a real one: the session's kube-apiserver or a kind cluster; the CRD and the operator's
least-privileged RBAC from deploy/ installed) and gives tests what a person at a terminal has:
kubectl, the official client as cluster admin, the directory file, the API server's request
counts (`cluster.requests`, one interface over the sandbox's counter and the real server's audit
log) and a deadline-bounded `wait_for`. Nothing here sleeps and hopes: every wait polls a condition.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import yaml
from kubernetes import client

from entra_rbac_sandbox.common.faults import FaultInjector
from entra_rbac_sandbox.launcher import OPERATOR_USER, Sandbox, kubectl_path
from tests.controlplane.audit import AuditLog

T = TypeVar("T")
MANAGED = "app.kubernetes.io/managed-by=entra-rbac-operator"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
EGB = ("entra-rbac.io", "v1alpha1", "entragroupbindings")
PEERING = ("kopf.dev", "v1", "clusterkopfpeerings", "entra-rbac-operator")  # deploy/peering.yaml

# Short cadence so that directory changes are followed within seconds.
OPERATOR_ENV = {
    "ENTRA_RBAC_REFRESH_INTERVAL": "2s",
    # A deletion seen in Entra is acted on after a confirming read this much later (default 60s).
    "ENTRA_RBAC_DELETION_CONFIRMATION": "3s",
    # A Warning that recurs is counted up on its Event at most this often (default 30m).
    "ENTRA_RBAC_EVENT_SERIES_INTERVAL": "1s",
    "ENTRA_RBAC_LOG_LEVEL": "debug",
    # Peering is on (the default): a killed operator's heartbeat holds the next one back at most
    # this long (default 60s).
    "ENTRA_RBAC_PEERING_LIFETIME": "10",
}


def guid(n: int) -> str:
    """A readable lower-case GUID for test fixtures: guid(1) -> 00000000-0000-0000-0000-000000000001."""
    return f"00000000-0000-0000-0000-{n:012d}"


class RequestCounts(Protocol):
    """The API server's requests since the last `reset`, as (HTTP method, path without query)."""

    def reset(self) -> None: ...

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests with this method (any if None) on a path matching the regex `path`."""
        ...

    def counts(self) -> dict[str, int]:
        """Requests by "METHOD /path"."""
        ...

    def log(self) -> list[tuple[str, str]]:
        """(method, path) of each request, in arrival order."""
        ...


class SandboxRequests:
    """The sandbox API server's own counter: every request it received (the test's too)."""

    def __init__(self, faults: FaultInjector) -> None:
        self.faults = faults

    def reset(self) -> None:
        self.faults.reset_requests()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return self.faults.count(method, path)

    def counts(self) -> dict[str, int]:
        return self.faults.counts()

    def log(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.faults.request_log()]


class AuditRequests:
    """The real kube-apiserver's audit log, the requests of one user (the operator's identity)."""

    def __init__(self, audit: AuditLog, user: str = OPERATOR_USER) -> None:
        self.audit = audit
        self.user = user
        self.since = time.time()

    def reset(self) -> None:
        self.since = time.time()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return self.audit.count(self.user, method, path, since=self.since)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for method, path in self.log():
            found[f"{method} {path}"] = found.get(f"{method} {path}", 0) + 1
        return found

    def log(self) -> list[tuple[str, str]]:
        return [(e.method, e.path) for e in self.audit.events(self.user, since=self.since)]


class Cluster:
    def __init__(
        self, sandbox: Sandbox, log_path: Path, *, server: str = "sandbox", audit: AuditLog | None = None
    ) -> None:
        """`server`: "sandbox", "real" (the session's control plane, whose `audit` log counts
        requests) or "cluster" (ENTRA_RBAC_E2E_KUBECONFIG, e.g. kind: no request counts)."""
        self.sandbox = sandbox
        self.log_path = log_path
        self.server = server
        self._requests: RequestCounts | None = None
        if sandbox.kube is not None:
            self._requests = SandboxRequests(sandbox.kube.faults)
        elif audit is not None:
            self._requests = AuditRequests(audit)
        self.created_namespaces: list[str] = []
        self.api = sandbox.admin_client()
        self.core = client.CoreV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    # --- kubectl and objects ---
    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [kubectl_path(), "--kubeconfig", str(self.sandbox.kubeconfig), *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done

    def apply(self, *documents: Mapping[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(list(documents)), check=check)

    @property
    def requests(self) -> RequestCounts:
        """The API server's request counts: the sandbox's counter, or the real server's audit log
        (the operator's requests only). Skips only on an external cluster, whose audit log the
        suite cannot read (ENTRA_RBAC_E2E_KUBECONFIG, e.g. kind)."""
        if self._requests is None:
            pytest.skip("needs the API server's request counts: no audit log on an external cluster")
        return self._requests

    def namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Create a namespace; on a shared cluster, first wait until an earlier test's is gone."""
        if self.server != "sandbox":
            self.wait_for(
                f"namespace {name} of an earlier test to be gone", lambda: not self._exists(name), 120
            )
        self.created_namespaces.append(name)
        # The client, not `kubectl apply` (a process: 0.16 CPU-s and 0.28 s a namespace): set-up,
        # not what the test is about. Created, or its labels set when it exists already.
        body = {"metadata": {"name": name, "labels": dict(labels or {})}}
        try:
            self.core.create_namespace(body)
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise
            self.core.patch_namespace(name, {"metadata": {"labels": dict(labels or {})}})

    def egb(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_cluster_custom_object(
            "entra-rbac.io", "v1alpha1", "entragroupbindings", name
        )
        return found

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        for condition in self.egb(name).get("status", {}).get("conditions") or []:
            if condition.get("type") == kind:
                return dict(condition)
        return {}

    def managed_bindings(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Every managed binding by (kind, namespace, name), as plain dicts: the API server's JSON
        as sent (tests poll this every 0.1 s; the client's models cost several times the
        request, which the operator under test would otherwise be short of on 2 cores)."""
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        lists = (
            ("ClusterRoleBinding", self.rbac.list_cluster_role_binding),
            ("RoleBinding", self.rbac.list_role_binding_for_all_namespaces),
        )
        for kind, list_bindings in lists:
            response = list_bindings(label_selector=MANAGED, _preload_content=False)
            for item in json.loads(response.data)["items"]:
                metadata = item["metadata"]
                found[(kind, metadata.get("namespace", ""), metadata["name"])] = item
        return found

    def subjects(self, kind: str, namespace: str, name: str) -> list[str]:
        binding = self.managed_bindings().get((kind, namespace, name))
        return [s["name"] for s in (binding or {}).get("subjects") or []]

    def can_i(
        self, verb: str, resource: str, *, user: str, groups: tuple[str, ...] = (), namespace: str = ""
    ) -> bool:
        args = ["auth", "can-i", verb, resource, "--as", user, *[f"--as-group={g}" for g in groups]]
        if namespace:
            args += ["-n", namespace]
        done = self.kubectl(*args, check=False)
        return done.stdout.strip() == "yes"

    def can_i_within(
        self,
        expected: bool,
        verb: str,
        resource: str,
        *,
        user: str,
        groups: tuple[str, ...] = (),
        namespace: str = "",
        timeout: float = 10.0,
    ) -> bool:
        """`can_i`, asked again until it answers `expected` or `timeout` passes; the last answer.

        The real API server authorizes from an informer's copy of the bindings, so the answer
        right after a binding was written or deleted can still be the old one (the sandbox
        answers from its store at once). Assert on the result: `assert cluster.can_i_within(True,
        ...)`, `assert not cluster.can_i_within(False, ...)`: a grant that never comes, or never
        goes, still fails, after the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.can_i(verb, resource, user=user, groups=groups, namespace=namespace)
            if answer is expected or time.monotonic() >= deadline:
                return answer
            time.sleep(0.2)  # asking again until the authorizer's copy catches up, with a deadline

    def request_sync(self, name: str) -> None:
        """The on-demand sync annotation, with a new value each time."""
        self.kubectl(
            "annotate", "egb", name, "--overwrite", f"entra-rbac.io/sync-requested={time.monotonic_ns()}"
        )

    # --- the directory ---
    def directory(self, document: Mapping[str, Any]) -> None:
        self.sandbox.entra.write_directory(dict(document))

    # --- requests ---
    def operator_writes(self, path: str = r"^/apis/rbac|/status$") -> int:
        requests = self.requests
        return sum(requests.count(method, path) for method in WRITES)

    # --- waiting ---
    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
        """Poll `probe` until it returns something truthy; fail naming `what` and the operator log."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.assert_operator_alive()
            try:
                last = probe()
            except client.exceptions.ApiException as error:
                last = error
            if last and not isinstance(last, Exception):
                return last  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; last: {last!r}\n{self.log_tail()}"
        )

    def wait_ready(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            resource = self.egb(name)
            condition = self.condition(name)
            fresh = resource.get("status", {}).get("observedGeneration") == resource["metadata"]["generation"]
            # kopf's record of what it handled (in status, written with the reconcile's status or
            # by kopf after the handler returned; in an annotation by releases before that, as
            # the upgrade test runs them); until then a new change (an annotation) could be
            # folded into the same handling cycle.
            annotations = resource["metadata"].get("annotations") or {}
            handled = "lastHandledConfiguration" in (resource.get("status") or {}) or any(
                key.endswith("/last-handled-configuration") for key in annotations
            )
            return condition if fresh and handled and condition.get("status") == "True" else None

        return self.wait_for(f"{name} to be Ready", ready, timeout)

    def wait_reason(self, name: str, reason: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for(
            f"{name} Ready reason {reason}",
            lambda: (c := self.condition(name)) and c.get("reason") == reason and c,
            timeout,
        )

    def assert_operator_alive(self) -> None:
        process = self.sandbox.process
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the operator exited with {process.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "operator log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
        return [self.api.sanitize_for_serialization(e) for e in items]

    def dump(self, name: str) -> str:
        return json.dumps(self.egb(name).get("status"), indent=2)

    def clean_up(self, timeout: float = 120.0) -> None:
        """On a shared real cluster (the operator stopped first): remove what the test created and
        wait until its EntraGroupBindings and managed bindings are gone, so the next test starts
        clean; raises when something stays. Its namespaces finish terminating meanwhile: the next
        test's `namespace()` waits for one it reuses. Sent with the test's own client: the four
        kubectl processes it took before cost 0.4 CPU-s and 0.5 s per test (docs/testing.md)."""
        self.custom.delete_collection_cluster_custom_object(*EGB)
        self.core.patch_namespace("kube-system", {"metadata": {"labels": {"team": None}}})
        for name in sorted(set(self.created_namespaces)):
            try:
                self.core.delete_namespace(name)
            except client.exceptions.ApiException as error:
                if error.status != 404:
                    raise
        # Events about EntraGroupBindings (namespace default) would otherwise answer the next test.
        self.core.delete_collection_namespaced_event(
            "default", field_selector="involvedObject.kind=EntraGroupBinding"
        )
        # kopf's peering heartbeats: an instance killed without its goodbye (or a test's extra one)
        # would otherwise hold the next test's operator back until its lifetime ran out.
        self.custom.patch_cluster_custom_object(*PEERING, {"status": None})
        # The bindings go by the garbage collector (their owner is gone) or with their namespace.
        deadline = time.monotonic() + timeout
        left: list[Any] = []
        while time.monotonic() < deadline:
            left = list(self.managed_bindings()) + self.custom.list_cluster_custom_object(*EGB)["items"]
            if not left:
                return
            time.sleep(0.1)
        raise AssertionError(f"clean-up: still there after {timeout:.0f}s: {left}")

    def _exists(self, namespace: str) -> bool:
        try:
            self.core.read_namespace(namespace)
        except client.exceptions.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True
