"""Builds the official client's configuration: from a kubeconfig, or in-cluster.

Holds `load_configuration` and `build_api_client`; the glue hands the same configuration to
kopf (`triggers.connection_info`), so the watches and the writes use one identity even with
`--kubeconfig` / `--context`. It must not make API calls, nor import kopf.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import urllib3
from kubernetes import client, config

from entra_rbac.adapters.kube.adapter import MAX_CONCURRENT_CALLS
from entra_rbac.errors import SettingsError

# The kubeconfig loader's refresh hook runs before every request, in every thread: it copies the
# token, host, CA and proxy settings into the configuration again (setting `host` re-reads every
# proxy variable of the environment), 13% of a binding write's CPU at 4,000 bindings (py-spy,
# issue 17 point 2). A token changes only when it expires, and the loader renews one five
# minutes before its expiry (exec plugins, OIDC; in-cluster: a minute after it was read), so
# with the hook run at most once a second a token is renewed at most a second later, still
# minutes before it expires. (`setattr` below: the client's code types the hook as None.)
TOKEN_REFRESH_EVERY = 1.0
_clock: Callable[[], float] = time.monotonic
Hook = Callable[[client.Configuration], None]


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
    hook: Hook | None = getattr(configuration, "refresh_api_key_hook", None)  # typed None by the client
    if hook is not None:
        setattr(configuration, "refresh_api_key_hook", throttled(hook, TOKEN_REFRESH_EVERY))  # noqa: B010
    # One connection per thread KubeAdapter runs calls in (every call goes through them): the
    # client's default, cpu_count * 5, is small on a 1-CPU pod limit, and more are never used.
    configuration.connection_pool_maxsize = MAX_CONCURRENT_CALLS
    # One retry policy, KubeTransport's (bounded, every method): urllib3 would otherwise retry
    # idempotent calls on its own and sleep for any Retry-After, however long, in our threads.
    configuration.retries = urllib3.Retry(total=0, respect_retry_after_header=False, raise_on_redirect=False)
    return configuration


def throttled(hook: Hook, every: float) -> Hook:
    """`hook`, run at most once per `every` seconds; a call meanwhile waits for one running and
    returns. A failed run (an exec plugin failing) counts for nothing: the next call runs it again.
    The kubeconfig loader's hook installs itself anew each time it runs; the newest is kept, and
    the throttle put back in its place."""
    lock = threading.Lock()
    last = [-float("inf")]
    current = [hook]

    def refresh(configuration: client.Configuration) -> None:
        if _clock() - last[0] < every:
            return
        with lock:
            if _clock() - last[0] < every:
                return
            try:
                current[0](configuration)
            finally:
                installed: Hook | None = getattr(configuration, "refresh_api_key_hook", None)
                if installed is not refresh and installed is not None:
                    current[0] = installed
                    setattr(configuration, "refresh_api_key_hook", refresh)  # noqa: B010
            last[0] = _clock()

    return refresh


def build_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    return client.ApiClient(load_configuration(kubeconfig, context))
