"""`ControlPlane`: real etcd, kube-apiserver and kube-controller-manager as local processes.

    with ControlPlane() as cp:                       # binaries found by `binaries.find_binaries`
        cp.admin_kubeconfig                          # Path: cluster admin (O=system:masters)
        cp.kubeconfig_for("alice", ["payments"])     # Path: a least-privileged person, for real
        cp.token_kubeconfig("alice", token)          # Path: signed in with a bearer (OIDC) token
        cp.url, cp.ca_file, cp.startup_seconds

Everything lives in one temporary folder (certificates, etcd's data, logs, kubeconfigs) removed
on stop. Ports are free loopback ports picked at start. `start` returns when `/readyz` is ok and
the aggregated ClusterRoles `admin`, `edit` and `view` have rules (so kube-controller-manager is
working), or raises `StartupError` naming the binary that failed, why, and the tail of its log.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.controlplane import audit, pki
from tests.controlplane.binaries import find_binaries, served_minor
from tests.controlplane.oidc import OidcIssuer, authentication_config
from tests.controlplane.processes import ManagedProcess, StartupError, wait_until

__all__ = ["CONTROLLERS", "ControlPlane", "StartupError"]

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Garbage collection, namespace termination and ClusterRole aggregation are what a cluster without
# a kubelet still needs from kube-controller-manager; the service-account controllers give each
# namespace its `default` ServiceAccount (so Pods pass admission) as on a real cluster.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "clusterrole-aggregation-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
)
AGGREGATED_CLUSTER_ROLES = ("admin", "edit", "view")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kubeconfig(server: str, ca_pem: bytes, user: str, client: pki.KeyPair) -> dict[str, Any]:
    cluster = {"server": server, "certificate-authority-data": _b64(ca_pem)}
    credentials = {"client-certificate-data": _b64(client.cert_pem), "client-key-data": _b64(client.key_pem)}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "controlplane", "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "controlplane", "context": {"cluster": "controlplane", "user": user}}],
        "current-context": "controlplane",
    }


class ControlPlane:
    """Real etcd + kube-apiserver + kube-controller-manager, started and stopped as one."""

    def __init__(
        self,
        binaries: Path | None = None,
        workdir: Path | None = None,
        timeout: float = 90.0,
        oidc: OidcIssuer | None = None,
        apiserver_args: tuple[str, ...] = (),
    ) -> None:
        """`oidc`: an issuer kube-apiserver trusts for people's tokens (see tests/controlplane/oidc.py);
        `apiserver_args`: more kube-apiserver flags (e.g. `--watch-cache=false`)."""
        self.oidc = oidc
        self.apiserver_args = apiserver_args
        self.binaries = binaries if binaries is not None else find_binaries()
        self._own_workdir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="entra-rbac-cp-"))
        self.timeout = timeout
        self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.startup_seconds: float | None = None
        self._ca = pki.CertificateAuthority()
        self._admin = self._ca.client("entra-rbac-admin", ["system:masters"])
        self._processes: list[ManagedProcess] = []
        self._users = 0
        self.pki_dir = self.workdir / "pki"
        self.ca_file = self.pki_dir / "ca.crt"
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.audit_log = self.workdir / "logs" / "audit.log"
        self.authentication_config = self.workdir / "authentication-config.yaml"
        self._minor: int | None = None

    @property
    def minor(self) -> int:
        """The Kubernetes minor version of these binaries (36 for the pinned v1.36.3)."""
        if self._minor is None:
            self._minor = served_minor(self.binaries)
        return self._minor

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager; return when all are working."""
        began = time.monotonic()
        try:
            self._write_pki()
            self._write_kubeconfig(self.admin_kubeconfig, "entra-rbac-admin", self._admin)
            self._start_binaries(began + self.timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def dead(self) -> list[ManagedProcess]:
        """The binaries started and not stopped that have exited since: empty while all run."""
        return [p for p in self._processes if p.exit_code() is not None]

    def restart(self) -> float:
        """Stop what still runs and start the three binaries again, on the same ports, with the
        same certificates, service-account keys and etcd data (kill -9 leaves etcd's files whole):
        every kubeconfig, token and object of before still works. Returns the seconds it took;
        raises `StartupError` as `start` does (the workdir is kept then, for its logs)."""
        began = time.monotonic()
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        try:
            self._start_binaries(began + self.timeout)
        except BaseException:
            for process in reversed(self._processes):
                process.stop()
            raise
        return time.monotonic() - began

    def _start_binaries(self, deadline: float) -> None:
        etcd = self._start(self._etcd())
        wait_until(self._etcd_healthy, deadline, "etcd /health", [etcd])
        apiserver = self._start(self._apiserver())
        wait_until(
            lambda: self._get("/readyz")[0] == 200, deadline, "kube-apiserver /readyz", [etcd, apiserver]
        )
        kcm = self._start(self._controller_manager())
        wait_until(
            self._aggregated, deadline, "aggregated ClusterRoles admin/edit/view", [etcd, apiserver, kcm]
        )

    def restart_controller_manager(self) -> None:
        """Stop kube-controller-manager and start a new one (same flags and log). Its garbage
        collector builds its monitors from discovery when it starts and re-reads discovery only
        every 30 s afterwards: a restart right after a CRD is installed makes the collector know
        the new kind at once instead of up to 30 s later."""
        old = self.process("kube-controller-manager")
        old.stop()
        self._processes.remove(old)
        self._start(self._controller_manager())

    def stop(self) -> None:
        """Stop every process started (controller manager first, etcd last); remove the workdir."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def process(self, name: str) -> ManagedProcess:
        """The running (or exited, not yet restarted) binary called `name`."""
        return next(p for p in self._processes if p.name == name)

    @property
    def pids(self) -> list[int]:
        """The process ids of the running binaries."""
        return [p.pid for p in self._processes if p.pid is not None and p.running()]

    def running_names(self) -> set[str]:
        """The names of the binaries running now."""
        return {p.name for p in self._processes if p.running()}

    @property
    def logs(self) -> dict[str, Path]:
        """Each binary's log file, by name."""
        return {p.name: p.log for p in self._processes}

    # -- users -----------------------------------------------------------------------------------

    def kubeconfig_for(self, user: str, groups: list[str] | tuple[str, ...] = ()) -> Path:
        """A kubeconfig signed in as `user` in `groups` (a client certificate from the client CA)."""
        self._users += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:60]
        path = self.workdir / "users" / f"{self._users:03d}-{safe}.kubeconfig"
        path.parent.mkdir(exist_ok=True)
        self._write_kubeconfig(path, user, self._ca.client(user, groups))
        return path

    def token_kubeconfig(self, user: str, token: str) -> Path:
        """A kubeconfig whose user presents `token` as a bearer token (no client certificate)."""
        self._users += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:60]
        path = self.workdir / "users" / f"{self._users:03d}-{safe}-token.kubeconfig"
        path.parent.mkdir(exist_ok=True)
        config = _kubeconfig(self.url, self._ca.cert_pem, user, self._admin)
        config["users"] = [{"name": user, "user": {"token": token}}]
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def configure_oidc(self, oidc: OidcIssuer) -> None:
        """Rewrite the authentication configuration; kube-apiserver re-reads it (within about a minute)."""
        if self.oidc is None:
            raise RuntimeError("configure_oidc: the control plane was started without oidc=")
        self.oidc = oidc
        temporary = self.authentication_config.with_suffix(".tmp")
        temporary.write_text(authentication_config(oidc, self.minor), encoding="utf-8")
        temporary.replace(self.authentication_config)

    # -- HTTP to the API server as admin ----------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        return context

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, context=self._ssl_context(), timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str) -> Any:
        """GET `path` from the API server as admin; the decoded JSON (raises on a non-200)."""
        status, body = self._get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def compact(self) -> int:
        """Compact etcd at its current revision (physically), so older resourceVersions are gone
        from storage, as kube-apiserver's periodic compaction leaves them; returns the revision.
        Through etcd's JSON gateway (/v3/kv/range and /v3/kv/compaction)."""

        def post(path: str, body: dict[str, Any]) -> Any:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.etcd_port}{path}", data=json.dumps(body).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())

        revision = int(post("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.etcd_port}/health"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    def _aggregated(self) -> bool:
        for name in AGGREGATED_CLUSTER_ROLES:
            status, body = self._get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
            if status != 200 or not json.loads(body).get("rules"):
                return False
        return True

    # -- files -----------------------------------------------------------------------------------

    def _write_pki(self) -> None:
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_bytes(self._ca.cert_pem)
        dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local"]  # fmt: skip
        self._ca.serving(dns, ["127.0.0.1", "10.0.0.1"]).write(self.pki_dir, "apiserver")
        self._admin.write(self.pki_dir, "admin")
        pki.service_account_keys().write(self.pki_dir, "sa")  # sa.crt holds the public key
        self._write_kubeconfig(
            self.pki_dir / "controller-manager.kubeconfig",
            "system:kube-controller-manager",
            self._ca.client("system:kube-controller-manager"),
        )

    def _write_kubeconfig(self, path: Path, user: str, client: pki.KeyPair) -> None:
        path.touch(mode=0o600)
        path.write_text(
            yaml.safe_dump(_kubeconfig(self.url, self._ca.cert_pem, user, client), sort_keys=False)
        )

    # -- the three binaries ----------------------------------------------------------------------

    def _start(self, process: ManagedProcess) -> ManagedProcess:
        self._processes.append(process)
        try:
            process.start()
        except OSError as error:
            raise StartupError(process, f"could not be executed: {error}") from error
        return process

    def _process(self, name: str, args: list[str]) -> ManagedProcess:
        return ManagedProcess(name, [str(self.binaries / name), *args], self.workdir / "logs" / f"{name}.log")

    def _etcd(self) -> ManagedProcess:
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.etcd_peer_port}"
        return self._process("etcd", [
            "--name=controlplane",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=controlplane={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ])  # fmt: skip

    def _apiserver(self) -> ManagedProcess:
        p = self.pki_dir
        return self._process("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={p}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={p / 'sa.crt'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # The default admission plugins all work without a kubelet; none is disabled.
            "--profiling=false",
            *self._audit_args(),
            *self._oidc_args(),
            *self.apiserver_args,
        ])  # fmt: skip

    def _oidc_args(self) -> list[str]:
        if self.oidc is None:
            return []
        self.authentication_config.write_text(authentication_config(self.oidc, self.minor), encoding="utf-8")
        return [f"--authentication-config={self.authentication_config}"]

    def _audit_args(self) -> list[str]:
        """Every request in `audit_log` (JSON lines, see tests/controlplane/audit.py for the reader)."""
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(audit.POLICY, encoding="utf-8")
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # written before the request is served: counts never lag
            "--audit-log-maxsize=0",
            "--audit-log-maxbackup=0",
        ]

    def _controller_manager(self) -> ManagedProcess:
        p = self.pki_dir
        kubeconfig = p / "controller-manager.kubeconfig"
        return self._process("kube-controller-manager", [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={p / 'controller-manager'}",
        ])  # fmt: skip


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition()` until it returns a truthy value (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = "never checked"
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:
            last = f"last error: {error!r}"
        else:
            if value:
                return value
            last = f"last value: {value!r}"
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} ({last})")
