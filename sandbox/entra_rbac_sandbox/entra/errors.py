"""Graph's error answers: `{"error": {"code", "message", "innerError": {...}}}` and their codes.

Holds the error body builder and `GraphError`, which handlers raise to answer with one.
Nothing else.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Final

NOT_FOUND: Final = "Request_ResourceNotFound"
DENIED: Final = "Authorization_RequestDenied"
BAD_REQUEST: Final = "BadRequest"
REQUEST_BAD_REQUEST: Final = "Request_BadRequest"
UNSUPPORTED_QUERY: Final = "Request_UnsupportedQuery"
INVALID_TOKEN: Final = "InvalidAuthenticationToken"

# The codes Graph uses for the statuses a fault injects (the sandbox's own choice per status).
_FAULT_CODES: Final = {
    400: BAD_REQUEST,
    401: INVALID_TOKEN,
    403: DENIED,
    404: NOT_FOUND,
    409: "Request_MultipleObjectsWithSameKeyValue",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceNotAvailable",
    504: "GatewayTimeout",
}


class GraphError(Exception):
    """Answer with Graph's error JSON."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, client_request_id: str | None = None) -> dict[str, Any]:
        return error_body(self.code, self.message, client_request_id)


def error_body(code: str, message: str, client_request_id: str | None = None) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def fault_body(status: int, retry_after: int | None) -> dict[str, Any]:
    """The body of an injected fault, as Graph would word it (FaultInjector's `error_body`)."""
    code = _FAULT_CODES.get(status, "UnknownError" if status < 500 else "InternalServerError")
    message = f"Injected by the sandbox: HTTP {status}."
    if status == 429:
        message = "Too many requests. Please try again later."
        if retry_after is not None:
            message += f" Retry after {retry_after} seconds."
    return error_body(code, message)
