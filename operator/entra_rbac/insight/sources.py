"""Where `plan`, `explain` and `report` read from: the cluster (read-only), Entra, the policy.

Holds `open_reader` (a `ClusterReader` from a kubeconfig), `open_directory` (the operator's
directory settings and adapter, or a directory file read offline) and `policy_in_force` (the
settings' policy with the guardrails the operator would have in force: the cluster's Guardrails
object when there is one, as triggers/guardrails.py puts it in force). Errors stay the project's
own (`SettingsError`, `KubeError`, `DirectoryError`); the command maps them to one message and
exit code 1.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from entra_rbac.adapters.directory import EntraDirectory, directory_config
from entra_rbac.adapters.directory.file import FileDirectory
from entra_rbac.adapters.kube import KubeTransport, build_api_client
from entra_rbac.adapters.kube.reader import PAGE_SIZE, ClusterReader
from entra_rbac.core.entra import Directory
from entra_rbac.core.guardrails import OBJECT_SOURCE, Guardrails, GuardrailsError
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


def reading_policy(reader: ClusterReader) -> tuple[Policy, str | None]:
    """The policy `explain` and `report` decide ownership with (where each resource's bindings
    stand: reserved namespaces, allowlist, ENTRA_RBAC_MAX_SHARDS), from the operator's settings
    read offline (a bad value is one `SettingsError` naming the variable) and the cluster's
    Guardrails object, as `policy_in_force`; with its warning."""
    return policy_in_force(load_cli_settings(offline=True), reader.guardrails())


def policy_in_force(settings: Settings, guardrails: Mapping[str, Any] | None) -> tuple[Policy, str | None]:
    """The policy a reconcile would apply, and a warning when the Guardrails object is ignored.

    No object (or no Guardrails kind): the settings' guardrails, as the operator starts with.
    An object that does not parse is ignored by the operator too, which keeps the guardrails it
    had (the settings' at start): planned with the settings', and said so."""
    policy = Policy.from_settings(settings)
    if guardrails is None:
        return policy, None
    try:
        in_force = Guardrails.from_object(guardrails)
    except GuardrailsError as error:
        return policy, (
            f"{OBJECT_SOURCE} is not valid ({error}); the operator ignores it and keeps the "
            "guardrails it had: planned with the settings' guardrails"
        )
    return dataclasses.replace(policy, guardrails=in_force), None


@asynccontextmanager
async def open_directory(settings: Settings, directory_file: Path | None) -> AsyncIterator[Directory]:
    """The directory file when given (offline), else Entra through the operator's adapter."""
    if directory_file is not None:
        yield FileDirectory.load(directory_file)
        return
    async with EntraDirectory(directory_config(settings)) as directory:
        yield directory
