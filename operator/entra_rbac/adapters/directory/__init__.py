"""The directory adapter: Entra ID through Microsoft Graph (msgraph-sdk, azure-identity async).

Public surface: `DirectoryConfig` and `directory_config` (derived from the settings),
`EntraDirectory`, the metrics hook. It must not import
Kubernetes clients or kopf (an import-linter contract holds it to that).
"""

from __future__ import annotations

from entra_rbac.adapters.directory.config import DirectoryConfig, directory_config
from entra_rbac.adapters.directory.directory import EntraDirectory
from entra_rbac.adapters.directory.metrics import CountingMetrics, DirectoryMetrics, Outcome

__all__ = [
    "CountingMetrics",
    "DirectoryConfig",
    "DirectoryMetrics",
    "EntraDirectory",
    "Outcome",
    "directory_config",
]
