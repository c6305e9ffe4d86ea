"""Builds the official client's configuration: from a kubeconfig, or in-cluster.

Holds `load_configuration` and `build_api_client`; the glue hands the same configuration to
kopf (`triggers.connection_info`), so the watches and the writes use one identity even with
`--kubeconfig` / `--context`. It must not make API calls, nor import kopf.
"""

from __future__ import annotations

import os

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
