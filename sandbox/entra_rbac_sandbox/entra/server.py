"""The sandbox Entra directory as an HTTPS server on loopback: token endpoint plus Graph v1.0.

Holds `EntraSandbox` (an async context manager on the caller's loop) and `EntraSandboxThread`
(the same server on its own loop in a daemon thread, for synchronous tests and for code that runs
its own loop). The Graph logic is in `graph.py`/`batch.py`, tokens in `tokens.py`, the directory
file in `directory.py`; this module wires them to aiohttp, TLS and fault injection.

Attributes: `url` (https://127.0.0.1:PORT), `graph_url` (`{url}/v1.0`), `authority_host` (`url`:
what azure-identity takes as authority; pass `disable_instance_discovery=True` to sync
credentials so MSAL never looks for login.microsoftonline.com), `tenant_id`, `client_id`,
`client_secret`, `ca_file`, `directory_file`, `faults` (the `FaultInjector`), `tokens`.
Helpers: `client_certificate_path` (PEM, certificate and RSA key, registered on the app),
`write_federated_token(path, subject=None, audience=None, lifetime=3600)` (a service-account
token the app's federated credential accepts), `issue_token(roles=None, lifetime=None)` (an access
token for plain-HTTP tests), `write_directory(document)` (atomic rewrite of the directory file),
`env(credential=..., federated_token_file=..., certificate_path=...)` (the `ENTRA_RBAC_*`
settings that reach this server), `write_env_file(path, credential)` (the same as a file a shell
can source, mode 0600), `request_log()`, `request_counts()`, `count(method, path)`,
`reset_requests()`, `add_fault(...)`.

Endpoints besides Graph (`/v1.0/...`), in `identity.py`: `POST /{tenant}/oauth2/v2.0/token`,
`POST /{tenant}/oauth2/v2.0/devicecode` (and `POST /_sandbox/devicecode/approve|decline` for the
person, see `devicecode.py`; `device_codes` is the `DeviceCodes`),
`GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 form without `/v2.0`),
`GET /{tenant}/discovery/v2.0/keys`, `GET /common/discovery/instance`, and `/_sandbox/faults`,
`/_sandbox/requests` (see `sandbox.common.faults`). Inner `$batch` requests are counted, logged
and faulted under their own path without `/v1.0` (e.g. `GET /groups`).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shlex
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from entra_rbac_sandbox.common import tls
from entra_rbac_sandbox.common.faults import FaultInjector, RequestRecord
from entra_rbac_sandbox.entra import devicecode, errors
from entra_rbac_sandbox.entra.batch import run_batch
from entra_rbac_sandbox.entra.directory import DirectoryFile
from entra_rbac_sandbox.entra.errors import GraphError
from entra_rbac_sandbox.entra.graph import Graph, GraphRequest, GraphResponse
from entra_rbac_sandbox.entra.identity import IdentityEndpoints
from entra_rbac_sandbox.entra.oidc import AKS_SERVER_APP_ID, SignIn
from entra_rbac_sandbox.entra.tokens import (
    DEFAULT_ROLES,
    DEFAULT_SUBJECT,
    AccessTokenError,
    Application,
    FederatedCredential,
    ServiceAccountIssuer,
    TokenService,
)

T = TypeVar("T")

GRAPH_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
# The issuer a cluster's service-account tokens carry; only a name, never fetched.
CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local"
CREDENTIALS = ("workload-identity", "certificate", "client-secret")


class EntraSandbox:
    """The sandbox directory server; see the module docstring."""

    def __init__(
        self,
        directory_file: Path | str | None = None,
        *,
        port: int = 0,
        state_dir: Path | str | None = None,
        tenant_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        roles: tuple[str, ...] = DEFAULT_ROLES,
        token_lifetime: int = 3600,
        cluster_applications: tuple[str, ...] = (AKS_SERVER_APP_ID,),
        device_code_lifetime: int = devicecode.DEFAULT_LIFETIME,
        device_code_interval: int = devicecode.DEFAULT_INTERVAL,
    ) -> None:
        """`cluster_applications`: the application ids people sign in to (token audiences);
        `device_code_lifetime` / `device_code_interval`: a device code's `expires_in` and `interval`."""
        self._own_state = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="entra-sandbox-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if directory_file is None:
            directory_file = self.state_dir / "directory.yaml"
            directory_file.write_text("{}\n", encoding="utf-8")
        self.directory_file = Path(directory_file)
        self.directory = DirectoryFile(self.directory_file)
        self.port = port
        self.tenant_id = str(uuid.UUID(tenant_id)) if tenant_id else str(uuid.uuid4())
        self.client_id = str(uuid.UUID(client_id)) if client_id else str(uuid.uuid4())
        self.client_secret = client_secret or f"sandbox~{uuid.uuid4().hex}"
        self.federation = ServiceAccountIssuer(CLUSTER_ISSUER)
        self.application = Application(
            self.client_id,
            self.client_secret,
            federated=[FederatedCredential(CLUSTER_ISSUER, DEFAULT_SUBJECT)],
            roles=roles,
        )
        self.sign_in = SignIn(
            self.tenant_id,
            self.directory.current,
            lambda: self.url,
            applications=tuple(str(uuid.UUID(a)) for a in cluster_applications),
            token_lifetime=token_lifetime,
        )
        self.device_codes = devicecode.DeviceCodes(
            self.sign_in,
            lambda: f"{self.url}/_sandbox/devicecode",
            lifetime=device_code_lifetime,
            interval=device_code_interval,
        )
        self.tokens = TokenService(
            self.tenant_id,
            [self.application],
            federation=self.federation,
            token_lifetime=token_lifetime,
            sign_in=self.sign_in,
            device_codes=self.device_codes,
        )
        self.ca = tls.generate(self.state_dir / "pki")
        self.ca_file = self.ca.ca_file
        self.faults = FaultInjector(error_body=errors.fault_body)
        self.graph = Graph(self.directory.current)
        self._client_cert: tls.IssuedCert | None = None
        self._cert_lock = threading.Lock()
        self._runner: web.AppRunner | None = None

    # Addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def authority_host(self) -> str:
        return self.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def issuer(self) -> str:
        """The OIDC issuer of people's tokens (`iss`), as a cluster's authentication names it."""
        return self.sign_in.issuer

    @property
    def cluster_app_id(self) -> str:
        """The first cluster application: the audience of people's tokens by default."""
        return self.sign_in.applications[0]

    def token_for(self, name: str, audience: str | None = None, **kwargs: Any) -> str:
        """A sign-in token for a user (UPN or id) or service principal (appId), as issued by the grants."""
        return self.sign_in.token_for(name, audience, **kwargs)

    # Credentials -----------------------------------------------------------------------------

    @property
    def client_certificate(self) -> tls.IssuedCert:
        """An RSA client certificate registered on the app (made on first use: RSA keys are slow)."""
        with self._cert_lock:
            if self._client_cert is None:
                self._client_cert = self.ca.issue_client_cert("entra-rbac-operator", name="client-credential")
                self.application.certificates.append(self._client_cert.certificate)
            return self._client_cert

    @property
    def client_certificate_path(self) -> Path:
        """PEM file with the certificate and its private key, as CertificateCredential reads it."""
        return self.client_certificate.pem_file

    def write_federated_token(
        self,
        path: Path | str,
        *,
        subject: str | None = None,
        audience: str | None = None,
        lifetime: float = 3600,
    ) -> Path:
        """Write a service-account token (what AKS projects into the pod) that the app accepts."""
        kwargs: dict[str, Any] = {"lifetime": lifetime}
        if audience is not None:
            kwargs["audience"] = audience
        token = self.federation.sign(subject or DEFAULT_SUBJECT, **kwargs)
        path = Path(path)
        path.write_text(token, encoding="utf-8")
        return path

    def issue_token(self, roles: tuple[str, ...] | None = None, lifetime: int | None = None) -> str:
        """An access token for Graph, as the token endpoint would issue it (for plain-HTTP tests)."""
        return self.tokens.issue(self.application, roles=roles, lifetime=lifetime)

    def env(
        self,
        credential: str = "client-secret",
        *,
        federated_token_file: Path | str | None = None,
        certificate_path: Path | str | None = None,
    ) -> dict[str, str]:
        """The environment with which a process (the operator) reaches this server."""
        if credential not in CREDENTIALS:
            raise ValueError(f"credential: must be one of {', '.join(CREDENTIALS)}, got {credential!r}")
        env = {
            "ENTRA_RBAC_TENANT_ID": self.tenant_id,
            "ENTRA_RBAC_CLIENT_ID": self.client_id,
            "ENTRA_RBAC_CREDENTIAL": credential,
            "ENTRA_RBAC_AUTHORITY_HOST": self.authority_host,
            "ENTRA_RBAC_GRAPH_URL": self.graph_url,
            "ENTRA_RBAC_CA_FILE": str(self.ca_file),
        }
        if credential == "client-secret":
            env["ENTRA_RBAC_CLIENT_SECRET"] = self.client_secret
        elif credential == "certificate":
            env["ENTRA_RBAC_CERTIFICATE_PATH"] = str(certificate_path or self.client_certificate_path)
        else:
            token_file = federated_token_file or self.write_federated_token(
                self.state_dir / "federated-token"
            )
            env["AZURE_FEDERATED_TOKEN_FILE"] = str(token_file)
        return env

    def write_env_file(self, path: Path | str, credential: str = "client-secret") -> Path:
        """`env(credential)` as `KEY=value` lines a shell can source; owner-only (it may hold a secret)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        lines = (f"{key}={shlex.quote(value)}\n" for key, value in self.env(credential).items())
        path.write_text("".join(lines), encoding="utf-8")
        return path

    # Directory and requests ------------------------------------------------------------------

    def write_directory(self, document: Mapping[str, Any] | str) -> None:
        """Replace the directory file atomically (the server sees it on its next request)."""
        dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: 5x faster
        text = (
            document
            if isinstance(document, str)
            else yaml.dump(dict(document), Dumper=dumper, sort_keys=False)
        )
        temporary = self.directory_file.with_name(f".{self.directory_file.name}.{uuid.uuid4().hex}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.directory_file)

    def request_log(self) -> list[RequestRecord]:
        return self.faults.request_log()

    def request_counts(self) -> dict[str, int]:
        return self.faults.counts()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return self.faults.count(method, path)

    def reset_requests(self) -> None:
        self.faults.reset_requests()

    def expire_delta_tokens(self) -> None:
        """Every `/groups/delta` token issued so far answers 410 syncStateNotFound (as one older
        than Graph's seven days does)."""
        self.graph.delta.expire_tokens()

    def add_fault(self, path: str, **kwargs: Any) -> None:
        self.faults.add_fault(path, **kwargs)

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self.faults.middleware], client_max_size=16 * 1024 * 1024)
        IdentityEndpoints(self.tokens, lambda: self.token_url, self.device_codes).add_routes(app.router)
        app.router.add_route("*", "/v1.0/{tail:.*}", self._graph)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ca.server_ssl_context())
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.tokens.port = self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def __aenter__(self) -> EntraSandbox:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # Graph -----------------------------------------------------------------------------------

    async def _graph(self, request: web.Request) -> web.Response:
        try:
            claims = self.tokens.validate(request.headers.get("Authorization"), self.tokens.graph_resources())
        except AccessTokenError as refused:
            error = GraphError(401, errors.INVALID_TOKEN, str(refused))
            headers = {"WWW-Authenticate": f'Bearer realm="", client_id="{self.client_id}"'}
            return self._graph_response(request, GraphResponse(401, error.body(), headers))
        body: Any = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read() or b"null")
            except ValueError:
                error = GraphError(400, errors.BAD_REQUEST, "Unable to read JSON request payload.")
                return self._graph_response(request, GraphResponse(400, error.body()))
        path = "/" + request.match_info["tail"]
        graph_request = GraphRequest(
            method=request.method,
            path=path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            base_url=f"https://{request.host}/v1.0",
            roles=frozenset(claims.roles),
            body=body,
        )
        if path.rstrip("/") == "/$batch" and request.method == "POST":
            answer = await run_batch(self.graph, graph_request, self._inner_request)
        else:
            answer = self.graph.dispatch(graph_request)
        return self._graph_response(request, answer)

    async def _inner_request(self, method: str, path: str, query: str) -> GraphResponse | None:
        fault = self.faults.take(method, path)
        status = fault.status if fault is not None and fault.status else None
        self.faults.record(method, path, query, status)
        if fault is None:
            return None
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if not status:
            return None
        seconds = None if fault.retry_after is None else math.ceil(fault.retry_after)
        headers = {} if seconds is None else {"Retry-After": str(seconds)}
        return GraphResponse(status, errors.fault_body(status, seconds), headers)

    @staticmethod
    def _graph_response(request: web.Request, answer: GraphResponse) -> web.Response:
        request_id = str(uuid.uuid4())
        headers = {
            "request-id": request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
            **answer.headers,
        }
        if answer.body is None:
            return web.Response(status=answer.status, headers=headers)
        text = json.dumps(answer.body, separators=(",", ":"))
        headers["Content-Type"] = GRAPH_CONTENT_TYPE
        return web.Response(status=answer.status, text=text, headers=headers)


class EntraSandboxThread:
    """An EntraSandbox on its own event loop in a daemon thread; a (sync) context manager.

    Takes EntraSandbox's arguments. Its attributes and methods are the server's (`thread.url`,
    `thread.write_federated_token(...)`, ...); `thread.server` is the server itself and
    `call(fn)` runs `fn(server)` on the server's loop and returns the result.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.server = EntraSandbox(*args, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="entra-sandbox", daemon=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def start(self) -> EntraSandboxThread:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=30)
        except BaseException:
            self.stop()  # e.g. the port is taken: leave no thread or loop behind
            raise
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def call(self, fn: Callable[[EntraSandbox], T]) -> T:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn(self.server))
            except BaseException as error:  # handed to the caller's thread
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def __enter__(self) -> EntraSandboxThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
