"""Kubernetes `Status` failures as an exception, with the bodies the real API server sends.

Holds ApiError and one constructor per failure kind (reason + code + message wording of
k8s.io/apimachinery/pkg/api/errors), so clients (the official client, kopf, kubectl) raise the
same exceptions they would against a real cluster. Holds no HTTP handling and no storage.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request, rendered as a `Status` object with `code` as the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """The `Status` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(name: str, kind: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind} if name else {"kind": kind}  # omitempty
    if group:
        details["group"] = group
    return details


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details=_details(name, plural, group))


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        409, "AlreadyExists", f'{qualified} "{name}" already exists', details=_details(name, plural, group)
    )


def conflict(plural: str, name: str, why: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        details=_details(name, plural, group),
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


class FieldError:
    """One invalid field: a cause of a 422 Invalid, worded as field.ErrorList does."""

    def __init__(self, field: str, reason: str, detail: str, value: Any = None) -> None:
        self.field = field
        self.reason = reason  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
        self.detail = detail
        self.value = value

    def message(self) -> str:
        if self.reason == "FieldValueRequired":
            return f"Required value: {self.detail}" if self.detail else "Required value"
        if self.reason == "FieldValueForbidden":
            return f"Forbidden: {self.detail}"
        if self.reason == "FieldValueNotSupported":
            return f"Unsupported value: {self.value!r}: {self.detail}"
        if self.reason == "FieldValueTooLong":
            return f"Too long: {self.detail}"
        if self.reason == "FieldValueTooMany":
            return f"Too many: {self.value!r}: {self.detail}"
        if self.reason == "FieldValueDuplicate":
            return f"Duplicate value: {self.value!r}"
        if self.reason == "FieldValueTypeInvalid":
            return f"Invalid value: {self.value!r}: {self.detail}"
        return f"Invalid value: {self.value!r}: {self.detail}"

    def full(self) -> str:
        return f"{self.field}: {self.message()}"


def invalid(kind: str, name: str, errors: list[FieldError], group: str = "") -> ApiError:
    """422 Invalid naming every bad field, as `Kind "name" is invalid: [...]`."""
    listed = errors[0].full() if len(errors) == 1 else "[" + ", ".join(e.full() for e in errors) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details = _details(name, kind, group)
    details["causes"] = [{"reason": e.reason, "message": e.message(), "field": e.field} for e in errors]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {listed}', details=details)


def forbidden(plural: str, name: str, why: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details=_details(name, plural, group))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, details={})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        f'application/strategic-merge-patch+json; got "{content_type}"',
    )


def gone(message: str = "too old resource version") -> ApiError:
    return ApiError(410, "Expired", message)
