"""Kubernetes `Status` failures as an exception, with the bodies the real API server sends.

Holds ApiError and one constructor per failure kind (reason + code + message wording of
k8s.io/apimachinery/pkg/api/errors), so clients (the official client, kopf, kubectl) raise the
same exceptions they would against a real cluster. Holds no HTTP handling and no storage.
"""

from __future__ import annotations

import json
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
        if not self.reason:  # omitempty, as an internal error without a reason reads
            del body["reason"]
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


def uid_precondition_failed(
    plural: str, group: str, custom: bool, namespace: str, name: str, wanted: str, stored: dict[str, Any]
) -> ApiError:
    """409 for an update whose metadata.uid is not the stored object's, worded as the real
    server's storage layer words it (etcd key /registry/[group/]plural/[namespace/]name, the group
    for custom resources only)."""
    key = "/".join(p for p in ("/registry", group if custom else "", plural, namespace, name) if p)
    why = (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {wanted}, "
        f"UID in object meta: {stored['metadata']['uid']}"
    )
    return conflict(plural, name, why, group)


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


OMIT = object()  # a FieldError without a value to show (field.Error's omitValue)


def go_quote(text: str) -> str:
    """A string as Go's `%q` prints it (strconv.Quote)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class GoPrinted(str):
    """A bad value already worded as field.Error prints it (a Go struct is marshalled with its Go
    field names, e.g. a roleRef as `{"APIGroup":...,"Kind":...,"Name":...}`); shown as is."""

    __slots__ = ()


def go_value(value: Any) -> str | None:
    """A bad value as field.Error prints it: strings Go-quoted, numbers and booleans bare, null
    as `null`; objects and lists are not shown (None), unless already `GoPrinted`."""
    if isinstance(value, GoPrinted):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))  # Go's %v of a float64 3.0 is 3
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    return None


class FieldError:
    """One invalid field: a cause of a 422 Invalid, worded as field.Error.ErrorBody does."""

    _TYPES = {
        "FieldValueRequired": "Required value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueTypeInvalid": "Invalid value",
        "FieldValueInvalid": "Invalid value",
    }
    _VALUELESS = ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong")

    def __init__(self, field: str, reason: str, detail: str, value: Any = OMIT) -> None:
        self.field = field
        self.reason = reason  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
        self.detail = detail
        self.value = value

    def message(self) -> str:
        text = self._TYPES.get(self.reason, "Invalid value")
        if self.reason not in self._VALUELESS and self.value is not OMIT:
            shown = go_value(self.value)
            if shown is None and self.reason == "FieldValueDuplicate":
                shown = json.dumps(self.value, ensure_ascii=False)  # not checked on the real server
            if shown is not None:
                text += f": {shown}"
        return f"{text}: {self.detail}" if self.detail else text

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


def request_entity_too_large(limit: int) -> ApiError:
    """A body over --max-request-body-bytes (apiserver endpoints/handlers/rest.go, limitedReadBody)."""
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


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


def apply_conflict(conflicts: list[tuple[str, str]]) -> ApiError:
    """409 for a server-side apply that would take fields other managers own: `conflicts` are
    (the manager as printed, the field path) pairs (apiserver's NewConflictError wording)."""
    ordered = sorted(conflicts)
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {manager}", "field": path}
        for manager, path in ordered
    ]
    if len(ordered) == 1:
        manager, path = ordered[0]
        message = f"Apply failed with 1 conflict: conflict with {manager}: {path}"
    else:
        lines: list[str] = []
        for manager in sorted({m for m, _ in ordered}):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {path}" for m, path in ordered if m == manager]
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details={"causes": causes})
