"""Where `plan`, `explain` and `report` read from: the cluster (read-only), Entra, the policy.

Holds `open_reader` (a `ClusterReader` from a kubeconfig), `open_directory` (the operator's
directory settings and adapter, or a directory file read offline) and `policy_from_settings`.
Errors stay the project's own (`SettingsError`, `KubeError`, `DirectoryError`); the command maps
them to one message and exit code 1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from entra_rbac.adapters.directory import EntraDirectory, directory_config
from entra_rbac.adapters.directory.file import FileDirectory
from entra_rbac.adapters.kube import KubeTransport, build_api_client
from entra_rbac.adapters.kube.reader import PAGE_SIZE, ClusterReader
from entra_rbac.core.entra import Directory
from entra_rbac.errors import SettingsError
from entra_rbac.reconciler.context import Policy
from entra_rbac.settings import Settings, load_settings

# With --directory FILE no Graph setting is used; these stand in for the required ones so the
# policy settings (allowlist, reserved namespaces, revocation guard) are still read and checked.
_OFFLINE = {
    "tenant_id": "offline",
    "client_id": "00000000-0000-0000-0000-000000000000",
    "credential": "client-secret",
    "client_secret": "unused-offline",
    "ca_file": None,
    "graph_url": None,
    "authority_host": None,
    "cloud": "public",
}
# A command gives up on an unreachable API server sooner than the operator's reconcile does.
CLI_RETRIES = 2


def open_reader(kubeconfig: str | None, context: str | None, *, page_size: int = PAGE_SIZE) -> ClusterReader:
    """`--kubeconfig`, else KUBECONFIG as it is now (the official client reads it once, at import)."""
    config = kubeconfig or os.environ.get("KUBECONFIG") or None
    api = build_api_client(config, context)
    return ClusterReader(KubeTransport(api, retries=CLI_RETRIES, max_wait=3.0), page_size=page_size)


def load_cli_settings(*, offline: bool) -> Settings:
    """The operator's settings from the environment; offline, only the policy part matters."""
    try:
        return load_settings(**_OFFLINE) if offline else load_settings()
    except SettingsError as error:
        hint = "" if offline else " (the operator's directory settings; or pass --directory FILE)"
        raise SettingsError(f"{error}{hint}") from None


def policy_from_settings(settings: Settings) -> Policy:
    return Policy.from_settings(settings)


@asynccontextmanager
async def open_directory(settings: Settings, directory_file: Path | None) -> AsyncIterator[Directory]:
    """The directory file when given (offline), else Entra through the operator's adapter."""
    if directory_file is not None:
        yield FileDirectory.load(directory_file)
        return
    async with EntraDirectory(directory_config(settings)) as directory:
        yield directory
