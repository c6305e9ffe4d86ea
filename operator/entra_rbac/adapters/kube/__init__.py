"""The Kubernetes adapter: bindings, namespaces, roles, status and events via the official client.

Public surface: `KubeAdapter`, `KubeTransport`, `build_api_client`, `load_configuration`, and
the typed errors of `errors` (each an `entra_rbac.errors.KubeError`, the only kind it raises).
It never logs and forgets a failure, and never imports kopf, the sandbox or the directory
adapter.
"""

from __future__ import annotations

from entra_rbac.adapters.kube import errors
from entra_rbac.adapters.kube.adapter import KubeAdapter, binding_path
from entra_rbac.adapters.kube.client import build_api_client, load_configuration
from entra_rbac.adapters.kube.transport import KubeTransport

__all__ = [
    "KubeAdapter",
    "KubeTransport",
    "binding_path",
    "build_api_client",
    "errors",
    "load_configuration",
]
