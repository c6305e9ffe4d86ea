"""Builds the official client's configuration: from a kubeconfig, or in-cluster.

Holds `load_configuration`, `build_api_client` and `connection_info` (the same credentials
handed to kopf's own API client, so the watches and the writes use one identity even with
`--kubeconfig` / `--context`). It must not make API calls.
"""

from __future__ import annotations

import os

import kopf
import urllib3
from kubernetes import client, config

from entra_rbac.adapters.kube.adapter import MAX_CONCURRENT_CALLS
from entra_rbac.errors import SettingsError


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> client.Configuration:
    """In-cluster when running in a pod and no kubeconfig is named; otherwise the kubeconfig.

    An unusable kubeconfig or context is a `SettingsError` (startup stops with its message).
    """
    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (config.ConfigException, OSError, TypeError, ValueError) as error:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise SettingsError(f"cannot load the Kubernetes configuration from {where}: {error}") from None
    # One connection per thread KubeAdapter runs calls in (every call goes through them): the
    # client's default, cpu_count * 5, is small on a 1-CPU pod limit, and more are never used.
    configuration.connection_pool_maxsize = MAX_CONCURRENT_CALLS
    # One retry policy, KubeTransport's (bounded, every method): urllib3 would otherwise retry
    # idempotent calls on its own and sleep for any Retry-After, however long, in our threads.
    configuration.retries = urllib3.Retry(total=0, respect_retry_after_header=False, raise_on_redirect=False)
    return configuration


def build_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    return client.ApiClient(load_configuration(kubeconfig, context))


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration (what kopf's `login_via_client` does)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )
