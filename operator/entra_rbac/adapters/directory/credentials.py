"""The operator's own Entra credential, built from `DirectoryConfig` with azure-identity (async).

Holds `build_credential`, the shared TLS context, and `KeepOpenCredential`. It must not make
Graph calls. Secrets stay inside the credential objects: nothing here logs or formats them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from types import TracebackType
from typing import Any

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import CertificateCredential, ClientSecretCredential, WorkloadIdentityCredential

from entra_rbac.adapters.directory.config import DirectoryConfig
from entra_rbac.errors import SettingsError
from entra_rbac.logsetup import fields

logger = logging.getLogger(__name__)


def tls_context(config: DirectoryConfig) -> ssl.SSLContext | None:
    """The system's trust store plus `ca_file`, or None when no extra CA is configured."""
    if config.ca_file is None:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=config.ca_file)
    return context


class KeepOpenCredential:
    """Hands tokens to kiota but ignores its `close()`: older msgraph-core closed the caller's
    credential after each token (docs/design.md, Platform facts); the directory closes the real one itself,
    once."""

    def __init__(self, inner: AsyncTokenCredential) -> None:
        self._inner = inner
        # azure-identity does not coalesce concurrent token requests: without this, the first
        # burst of Graph calls would each fetch a token. Later calls are cache hits, so cheap.
        self._lock = asyncio.Lock()

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        async with self._lock:
            return await self._inner.get_token(*scopes, **kwargs)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> KeepOpenCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        return None


def build_credential(config: DirectoryConfig, context: ssl.SSLContext | None) -> AsyncTokenCredential:
    """The credential `config.credential` names, on the config's authority and trust store.

    Must be called inside a running event loop when `context` is set (it opens an aiohttp session).
    """
    options: dict[str, Any] = {
        "authority": config.endpoints.authority_host,
        # azure-core retries token requests on its own (3 times, growing backoff), which
        # would spend a reconcile's whole timeout on an outage; keep it short and let the
        # reconcile's next try be the real retry.
        "retry_total": 2,
        "retry_backoff_factor": 0.5,
        "retry_backoff_max": 4,
    }
    if config.cloud == "custom":
        # A private authority (the sandbox, a test double) has no instance-discovery endpoint.
        options["disable_instance_discovery"] = True
    kind = config.credential
    if kind == "certificate":
        # Load the certificate before any connection exists: a bad file is a settings error,
        # raised without leaving an aiohttp session behind.
        certificate = _read_certificate(config)
        _make(config, certificate, options)
    if context is not None:
        connector = aiohttp.TCPConnector(ssl=context)
        # trust_env as azure-core's own session does: HTTPS_PROXY / NO_PROXY still apply.
        session = aiohttp.ClientSession(connector=connector, trust_env=True)
        options["transport"] = AioHttpTransport(session=session)
    if kind == "client-secret":
        logger.warning(
            "Using a client secret for Entra: discouraged; prefer workload identity or a certificate",
            extra=fields(client_id=config.client_id),
        )
    return _make(config, certificate if kind == "certificate" else b"", options)


def _read_certificate(config: DirectoryConfig) -> bytes:
    try:
        with open(config.certificate_path or "", "rb") as file:
            return file.read()
    except OSError as exc:
        raise SettingsError(
            f"directory setting certificate_path: cannot read {config.certificate_path!r} ({exc.strerror})"
        ) from None


def _make(config: DirectoryConfig, certificate: bytes, options: dict[str, Any]) -> AsyncTokenCredential:
    kind = config.credential
    if kind == "client-secret":
        return ClientSecretCredential(
            config.tenant_id, config.client_id, config.client_secret or "", **options
        )
    if kind == "certificate":
        try:
            return CertificateCredential(
                config.tenant_id, config.client_id, certificate_data=certificate, **options
            )
        except ValueError as exc:
            # azure-identity's message names the problem (no private key, wrong format), not the key.
            raise SettingsError(f"directory setting certificate_path: {exc}") from None
    return WorkloadIdentityCredential(
        tenant_id=config.tenant_id,
        client_id=config.client_id,
        token_file_path=config.federated_token_file,
        **options,
    )
