"""Turns Kubernetes API failures into typed `KubeError`s: callers catch a class, not a status code.

Holds the error classes (one per answer a caller treats differently), the `reason` names of a
Kubernetes `Status` they carry, and the mapping from an HTTP status and a `Status` body (or an
`ApiException`, or a connection failure) to an error. It must not retry, log or decide
anything: callers do.

The classes mirror HTTP: `AlreadyExistsError` is a `ConflictError` (both 409) and
`NamespaceTerminatingError` a `ForbiddenError` (both 403), so a caller that does not care about
the refinement catches the broader class. Every error keeps `status` and `reason` for messages.
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
GONE: Final = "Gone"  # 410: a list's continue token (or a watch's version) expired
TOO_MANY_REQUESTS: Final = "TooManyRequests"  # 429: priority and fairness asked us to wait
UNAVAILABLE: Final = "Unavailable"  # no answer at all: connection refused, reset, timed out
TOO_LARGE: Final = "RequestEntityTooLarge"  # 413, or etcd's refusal of a too large object (a 500)
# What a 500 says when etcd refused the object as too large (docs/design.md, Subjects the operator
# emits): over etcd's --max-request-bytes (1.5 MiB), or over the API server's gRPC send limit
# (2 MiB). Measured on the real control plane; a retry cannot succeed.
_ETCD_TOO_LARGE: Final = ("etcdserver: request is too large", "trying to send message larger than max")


class NotFoundError(KubeError):
    """404: the object, or the namespace it would live in, does not exist."""


class ConflictError(KubeError):
    """409: the object changed since it was read, or a precondition (uid, resourceVersion) failed."""


class AlreadyExistsError(ConflictError):
    """409 on create: something already holds the name (ours after a race, or a foreign object)."""


class ForbiddenError(KubeError):
    """403: RBAC refused the call (a missing verb, or no `bind` on the role being granted)."""


class NamespaceTerminatingError(ForbiddenError):
    """403 for a write into a namespace that is being deleted: nothing to do there any more."""


class InvalidError(KubeError):
    """422: the API server rejected the object itself (e.g. a changed roleRef)."""


class GoneError(KubeError):
    """410: a paging token or resource version the server no longer keeps; start the read again."""


class UnavailableError(KubeError):
    """No answer, 429 or 5xx: the call may succeed later (the transport retries these)."""


class TooLargeError(KubeError):
    """413, or a 500 in which etcd refused the object as too large: the same write never succeeds."""


class UnexpectedError(KubeError):
    """Any other answer (400, 401, ...): a bug or a misconfiguration, reported as it is."""


_BY_STATUS: Final[Mapping[int, type[KubeError]]] = {
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: InvalidError,
    429: UnavailableError,
    500: UnavailableError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}
# Refinements chosen by the Status `reason` where one HTTP code means two things.
_BY_REASON: Final[Mapping[str, type[KubeError]]] = {
    ALREADY_EXISTS: AlreadyExistsError,
    NAMESPACE_TERMINATING: NamespaceTerminatingError,
}


def error_from_response(status: int, body: bytes | str | None, what: str) -> KubeError:
    """A typed error for an HTTP answer; `what` says what was being done ("create RoleBinding a/b")."""
    document = _status_document(body)
    reason = str(document.get("reason") or _default_reason(status))
    causes = (document.get("details") or {}).get("causes") or []
    if status == 403 and (
        any(cause.get("reason") == NAMESPACE_TERMINATING for cause in causes if isinstance(cause, Mapping))
        or "being terminated" in str(document.get("message", ""))
    ):
        reason = NAMESPACE_TERMINATING
    message = str(document.get("message") or (body.decode() if isinstance(body, bytes) else body) or "")
    cls = _BY_STATUS.get(status, UnexpectedError)
    if status == 413 or (status == 500 and any(text in message for text in _ETCD_TOO_LARGE)):
        cls, reason = TooLargeError, TOO_LARGE
    refined = _BY_REASON.get(reason)
    if refined is not None and issubclass(refined, cls):
        cls = refined
    return cls(f"{what}: {status} {reason}: {message.strip()}", status=status, reason=reason)


def error_from_api_exception(exception: ApiException, what: str) -> KubeError:
    """The same mapping for an `ApiException` raised by the official client's typed methods."""
    status = int(exception.status or 0)
    if status == 0:
        return unavailable(str(exception.reason or exception), what)
    return error_from_response(status, exception.body, what)


def unavailable(problem: str, what: str) -> UnavailableError:
    """No HTTP answer (connection refused, TLS failure, timeout): status None."""
    return UnavailableError(f"{what}: API server unavailable: {problem}", status=None, reason=UNAVAILABLE)


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
        410: GONE,
        422: INVALID,
        429: TOO_MANY_REQUESTS,
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }.get(status, "Unknown")
