"""The real kube-apiserver's audit log, read back as request counts.

`ControlPlane` starts kube-apiserver with `POLICY` (every request at level Metadata, one event per
request at its RequestReceived stage, so a request is seen as soon as it arrives, in arrival
order) writing JSON lines to `cp.audit_log`. `AuditLog(path)` tails that file and answers the
questions tests ask of the sandbox's request counter, for one user: how many requests with this
HTTP method on a path matching a regex, since a mark. Unlike `/metrics`' `apiserver_request_total`,
an audit event names who sent the request, so the operator's own requests are told apart from the
test's and the controllers'.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# One event per request, written when it arrives (before it is served).
omitStages: [ResponseStarted, ResponseComplete, Panic]
rules:
  - level: Metadata
"""

# Audit verbs as the HTTP methods the sandbox's request log records.
_METHODS = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}


@dataclass(frozen=True)
class AuditEvent:
    """One request from the audit log."""

    received: float  # requestReceivedTimestamp, seconds since the epoch
    user: str
    verb: str
    method: str  # the HTTP method, from the verb
    path: str  # requestURI without its query
    resource: str  # objectRef.resource ("" for non-resource URLs)
    subresource: str


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse(line: str) -> AuditEvent | None:
    """An event from one JSON line, or None for a line that is not a complete event."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return None
    verb = str(raw.get("verb", ""))
    ref = raw.get("objectRef") or {}
    return AuditEvent(
        received=_timestamp(raw["requestReceivedTimestamp"]),
        user=str((raw.get("user") or {}).get("username", "")),
        verb=verb,
        method=_METHODS.get(verb, verb.upper()),
        path=str(raw.get("requestURI", "")).partition("?")[0],
        resource=str(ref.get("resource", "")),
        subresource=str(ref.get("subresource", "")),
    )


class AuditLog:
    """The audit log file, read incrementally; every query reads what was appended since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()

    def events(self, user: str | None = None, since: float = 0.0) -> list[AuditEvent]:
        """Events received at or after `since` (epoch seconds), from `user` if given, in arrival order."""
        with self._lock:
            self._read()
            found = [e for e in self._events if e.received >= since and (user is None or e.user == user)]
        return sorted(found, key=lambda e: e.received)

    def count(
        self, user: str | None, method: str | None = None, path: str | None = None, since: float = 0.0
    ) -> int:
        """Requests with this HTTP method (any if None) on a path matching the regex `path`."""
        compiled = re.compile(path) if path is not None else None
        return sum(
            1
            for e in self.events(user, since)
            if (method is None or e.method == method.upper())
            and (compiled is None or compiled.search(e.path))
        )

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next read
        for line in lines:
            if line.strip() and (event := parse(line.decode("utf-8", "replace"))) is not None:
                self._events.append(event)
