"""The kube adapter's error mapping: each HTTP answer becomes the class its callers catch."""

from __future__ import annotations

import json

import pytest

from entra_rbac.adapters.kube import errors
from entra_rbac.errors import KubeError


def status_body(reason: str, message: str = "", causes: list[dict[str, str]] | None = None) -> bytes:
    document = {"kind": "Status", "reason": reason, "message": message, "details": {"causes": causes or []}}
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected", "reason"),
    [
        (404, status_body("NotFound"), errors.NotFoundError, errors.NOT_FOUND),
        (409, status_body("AlreadyExists"), errors.AlreadyExistsError, errors.ALREADY_EXISTS),
        (409, status_body("Conflict"), errors.ConflictError, errors.CONFLICT),
        (403, status_body("Forbidden"), errors.ForbiddenError, errors.FORBIDDEN),
        (
            403,
            status_body("Forbidden", causes=[{"reason": "NamespaceTerminating"}]),
            errors.NamespaceTerminatingError,
            errors.NAMESPACE_TERMINATING,
        ),
        (
            403,
            status_body("Forbidden", "because it is being terminated"),
            errors.NamespaceTerminatingError,
            errors.NAMESPACE_TERMINATING,
        ),
        (422, status_body("Invalid"), errors.InvalidError, errors.INVALID),
        (410, status_body("Expired"), errors.GoneError, "Expired"),
        (429, None, errors.UnavailableError, errors.TOO_MANY_REQUESTS),
        (503, b"not json", errors.UnavailableError, "ServiceUnavailable"),
        (400, status_body("BadRequest"), errors.UnexpectedError, "BadRequest"),
        # A reason that does not refine the status's class is kept as text only.
        (404, status_body("AlreadyExists"), errors.NotFoundError, errors.ALREADY_EXISTS),
    ],
)
def test_each_answer_maps_to_the_class_callers_catch(
    status: int, body: bytes | None, expected: type[KubeError], reason: str
) -> None:
    error = errors.error_from_response(status, body, "get RoleBinding a/b")
    assert type(error) is expected
    assert (error.status, error.reason) == (status, reason)
    assert str(error).startswith(f"get RoleBinding a/b: {status} {reason}")


def test_refinements_are_caught_by_their_broader_class() -> None:
    assert issubclass(errors.AlreadyExistsError, errors.ConflictError)
    assert issubclass(errors.NamespaceTerminatingError, errors.ForbiddenError)


def test_no_answer_is_unavailable_without_a_status() -> None:
    error = errors.unavailable("connection refused", "list namespaces")
    assert isinstance(error, errors.UnavailableError)
    assert (error.status, error.reason) == (None, errors.UNAVAILABLE)
