"""The project's own error types. Adapters raise these; the glue alone maps them (as Outcomes) to kopf.

Holds exception classes only; imports nothing of ours but constants.
"""

from __future__ import annotations


class EntraRbacError(Exception):
    """Base of every error the operator raises on purpose."""


class SettingsError(EntraRbacError):
    """The operator's settings are invalid; startup stops with this message."""


class DirectoryError(EntraRbacError):
    """A directory read failed; nothing may be decided from it (fail-static)."""

    reason = "DirectoryUnavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DirectoryUnavailableError(DirectoryError):
    """5xx, timeout, throttling, token failure or a failed page: try again later."""

    reason = "DirectoryUnavailable"


class DirectoryForbiddenError(DirectoryError):
    """401/403 from Graph: the operator's identity lacks consent or permission."""

    reason = "DirectoryForbidden"


class GroupNotFoundError(EntraRbacError):
    """Graph answered 404 for a group (it was deleted): a decision, not a failed read (NotFound)."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"group {group_id} does not exist in Entra")
        self.group_id = group_id


class KubeError(EntraRbacError):
    """A Kubernetes API call failed in a way the reconciler must handle."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
