"""Running the sandbox API server: in-process (async), in a background thread, and its kubeconfig.

Holds ApiServer (an async context manager serving on a loopback port, TLS optional),
ApiServerThread (the same on its own event loop in a thread, for synchronous callers such as
the official client, kubectl and kopf's own loop) and write_kubeconfig(). Holds no API
semantics (cluster.py) and no routing (handlers.py).
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from entra_rbac_sandbox.common import faults, tls

from . import errors
from .auth import Authenticator
from .bootstrap import ADMIN_USER, bootstrap
from .cluster import Cluster
from .gc import GarbageCollector
from .handlers import ApiHandler
from .rbac import UserInfo
from .store import Store

T = TypeVar("T")
ADMIN_NAME = ADMIN_USER.name


class ApiServer:
    """The sandbox Kubernetes API server on 127.0.0.1; use `async with ApiServer() as server`."""

    def __init__(
        self,
        *,
        port: int = 0,
        tls: bool = True,
        cert_dir: Path | None = None,
        ca: tls.CertificateAuthority | None = None,
        token_file: Path | None = None,
        authentication_config: str | None = None,
        bookmark_interval: float = 5.0,
        history_size: int = 20_000,
    ) -> None:
        self.port = port
        self.tls = tls
        self.cert_dir = cert_dir
        # A CA shared with the other sandbox server (one CA file for every client), or a new one.
        self._ca = ca
        self.cluster = Cluster(Store(history_size))
        self.authenticator = Authenticator()
        self.admin_token = secrets.token_urlsafe(24)
        self.authenticator.add_token(self.admin_token, ADMIN_USER.name, ADMIN_USER.groups)
        if token_file is not None:
            self.authenticator.load_token_file(token_file)
        if authentication_config is not None:  # the document kube-apiserver's --authentication-config reads
            self.authenticator.configure_jwt(authentication_config)
        self._identities: dict[str, str] = {ADMIN_USER.name: self.admin_token}
        self.handler = ApiHandler(self.cluster, self.authenticator, bookmark_interval=bookmark_interval)
        self.ca_file: Path | None = None
        # Fault injection and request counts (docs/design.md, The sandbox contract), also usable in-process.
        self.faults = faults.FaultInjector(error_body=_fault_status)
        self._runner: web.AppRunner | None = None
        self._gc: GarbageCollector | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # Identities -----------------------------------------------------------------------------

    def add_identity(
        self, user: str, groups: list[str] | tuple[str, ...] = (), token: str | None = None
    ) -> str:
        """Register a bearer token for `user` in `groups`; returns the token."""
        token = token or secrets.token_urlsafe(24)
        self.authenticator.add_token(token, user, groups)
        self._identities[user] = token
        return token

    def token_for(self, user: str) -> str:
        return self._identities[user]

    def write_kubeconfig(self, path: Path, *, user: str = ADMIN_NAME) -> Path:
        """A kubeconfig for `user` (default: the cluster admin) with this server as current context."""
        return write_kubeconfig(path, self.url, self.token_for(user), ca_file=self.ca_file, user=user)

    # Lifecycle ------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self.faults.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("DELETE", "/_sandbox/watches", self._drop_watches)
        app.router.add_route("*", "/{tail:.*}", self.handler.handle)
        return app

    async def _drop_watches(self, _: web.Request) -> web.Response:
        return web.json_response({"dropped": self.cluster.store.drop_watches()})

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ca = self._ca or tls.generate(self.cert_dir)
        self.ca_file = ca.ca_file
        return ca.server_context()

    async def start(self) -> None:
        bootstrap(self.cluster)
        self._gc = GarbageCollector(self.cluster)
        self._gc.start()
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._ssl_context())
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.cluster.store.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._gc is not None:
            await self._gc.stop()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


def _fault_status(status: int, retry_after: int | None) -> dict[str, Any]:
    reasons = {
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
        409: "Conflict",
    }
    error = errors.ApiError(status, reasons.get(status, "InternalError"), f"injected fault: {status}")
    if retry_after is not None:
        error.details = {"retryAfterSeconds": retry_after}
    return error.status()


class ApiServerThread:
    """An ApiServer on its own event loop in a daemon thread; a context manager.

    Attributes and methods of the server are reachable as `thread.server`; `call(fn)` runs a
    function on the server's loop (the store is not thread-safe) and returns its result.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.server = ApiServer(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="sandbox-apiserver", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        # The last admin kubeconfig written, for callers that need "the" kubeconfig.
        self.kubeconfig: Path | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # handed to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.server.stop()

    def start(self) -> ApiServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise TimeoutError("the sandbox API server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=30)

    def call(self, fn: Callable[[ApiServer], T]) -> T:
        """Run `fn(server)` on the server's loop and return its result."""

        async def run() -> T:
            return fn(self.server)

        return self.run(run())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=60)

    # Conveniences delegating to the server (read-only or thread-safe) ------------------------

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_file(self) -> Path | None:
        return self.server.ca_file

    @property
    def admin_token(self) -> str:
        return self.server.admin_token

    @property
    def faults(self) -> faults.FaultInjector:
        """Fault injection and request counts (thread-safe, usable from any thread)."""
        return self.server.faults

    def add_identity(
        self, user: str, groups: list[str] | tuple[str, ...] = (), token: str | None = None
    ) -> str:
        return self.call(lambda s: s.add_identity(user, groups, token))

    def write_kubeconfig(self, path: Path, *, user: str = ADMIN_NAME) -> Path:
        written = self.server.write_kubeconfig(path, user=user)
        if user == ADMIN_NAME:
            self.kubeconfig = written
        return written

    def drop_watches(self) -> int:
        return self.call(lambda s: s.cluster.store.drop_watches())

    def compact(self) -> None:
        self.call(lambda s: s.cluster.store.compact())

    def __enter__(self) -> ApiServerThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def run_in_thread(**kwargs: Any) -> ApiServerThread:
    """Start an ApiServerThread (stop it with `.stop()`, or use it as a context manager)."""
    return ApiServerThread(**kwargs).start()


def write_kubeconfig(
    path: Path, url: str, token: str, *, ca_file: Path | None, user: str = ADMIN_NAME
) -> Path:
    """Write a kubeconfig with one cluster, one user and the current context set to them."""
    cluster: dict[str, Any] = {"server": url}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": "default"}}
        ],
        "current-context": "sandbox",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


__all__ = ["ADMIN_NAME", "ApiServer", "ApiServerThread", "UserInfo", "run_in_thread", "write_kubeconfig"]
