"""Builds the msgraph-sdk client the directory talks through, configured for the operator's needs.

Holds `build_graph_client` only; it must not send requests. Choices made here, and why:
- kiota's own retry handler is switched off: it gives up silently on `Retry-After` >= 180 s and
  cannot retry items inside a `$batch`, so `graph.GraphCaller` retries with one bounded budget.
- the auth provider gets the Graph host as its only allowed host (a bare name) and an explicit
  `.default` scope on that host: a host not in the list silently gets no token (docs/design.md, Platform
  facts).
- the httpx client trusts `ca_file` (when set) and has the configured timeout.
"""

from __future__ import annotations

import ssl

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import APIVersion, GraphClientFactory
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from entra_rbac.adapters.directory.config import DirectoryConfig
from entra_rbac.adapters.directory.credentials import KeepOpenCredential


def build_graph_client(
    config: DirectoryConfig, credential: AsyncTokenCredential, context: ssl.SSLContext | None
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """A Graph v1.0 client on the config's Graph host, authenticating with `credential`, and
    the httpx client under it (the caller closes that one)."""
    auth = AzureIdentityAuthenticationProvider(
        KeepOpenCredential(credential),
        scopes=[config.graph_scope],
        allowed_hosts=[config.graph_host],
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(config.request_timeout),
        verify=context if context is not None else True,
        base_url=f"{config.endpoints.graph_url}/v1.0",
    )
    options = {
        RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False),
        GraphTelemetryHandlerOption.get_key(): GraphTelemetryHandlerOption(api_version=APIVersion.v1),
    }
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(auth, client=http)
    # Set before the service client exists: it would otherwise default to the public cloud.
    adapter.base_url = f"{config.endpoints.graph_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter), http
