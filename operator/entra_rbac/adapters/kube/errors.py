"""Turns Kubernetes API failures into the project's `KubeError` values, with the reason that matters.

Holds the reason names the reconciler branches on and the mapping from an HTTP status and a
`Status` body (or an `ApiException`, or a connection failure) to `KubeError`. It must not
retry, log or decide anything: callers do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from entra_rbac.errors import KubeError

# The `reason` of a Kubernetes `Status`, refined where one code means two things.
NOT_FOUND: Final = "NotFound"  # 404: the object, or its namespace, does not exist
ALREADY_EXISTS: Final = "AlreadyExists"  # 409 on create: re-read, it may be ours or foreign
CONFLICT: Final = "Conflict"  # 409 on update/delete: stale resourceVersion or failed precondition
INVALID: Final = "Invalid"  # 422: e.g. a roleRef change, which Kubernetes refuses
FORBIDDEN: Final = "Forbidden"  # 403: RBAC (no `bind` on the role, or a missing verb)
NAMESPACE_TERMINATING: Final = "NamespaceTerminating"  # 403 while the namespace is being deleted
TOO_MANY_REQUESTS: Final = "TooManyRequests"  # 429: priority and fairness asked us to wait
UNAVAILABLE: Final = "Unavailable"  # no answer at all: connection refused, reset, timed out

# Worth trying again after a pause; everything else is an answer.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def error_from_response(status: int, body: bytes | str | None, what: str) -> KubeError:
    """A `KubeError` for an HTTP answer; `what` says what was being done ("create RoleBinding a/b")."""
    document = _status_document(body)
    reason = str(document.get("reason") or _default_reason(status))
    causes = (document.get("details") or {}).get("causes") or []
    if status == 403 and (
        any(cause.get("reason") == NAMESPACE_TERMINATING for cause in causes if isinstance(cause, Mapping))
        or "being terminated" in str(document.get("message", ""))
    ):
        reason = NAMESPACE_TERMINATING
    message = str(document.get("message") or (body.decode() if isinstance(body, bytes) else body) or "")
    return KubeError(f"{what}: {status} {reason}: {message.strip()}", status=status, reason=reason)


def error_from_api_exception(exception: ApiException, what: str) -> KubeError:
    """The same mapping for an `ApiException` raised by the official client's typed methods."""
    status = int(exception.status or 0)
    if status == 0:
        return unavailable(str(exception.reason or exception), what)
    return error_from_response(status, exception.body, what)


def unavailable(problem: str, what: str) -> KubeError:
    """No HTTP answer (connection refused, TLS failure, timeout): status None."""
    return KubeError(f"{what}: API server unavailable: {problem}", status=None, reason=UNAVAILABLE)


def is_retryable(error: KubeError) -> bool:
    return error.reason == UNAVAILABLE or error.status in RETRYABLE_STATUSES


def _status_document(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def _default_reason(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
        410: "Gone",
        422: INVALID,
        429: TOO_MANY_REQUESTS,
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }.get(status, "Unknown")
