"""The reconciler's answer to its caller: `Outcome`, what one reconcile came to.

The glue turns an outcome into kopf's errors (a requeue becomes `kopf.TemporaryError`); the
refresher and the event fan-out read it directly. It must not import kopf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

# Results of a reconcile that wrote no status (beside the Ready reasons of core.problems).
DELETED: Final = "Deleted"  # the resource is being deleted; its bindings were removed
GONE: Final = "Gone"  # no such resource any more (deleted, or recreated under a new uid)
FAILED: Final = "error"  # the Kubernetes API failed before a status could be written


@dataclass(frozen=True)
class Outcome:
    """What one reconcile came to.

    `reason` is the Ready reason it wrote to status (`Reconciled`, `DirectoryUnavailable`,
    `RevocationHeld`, ...), or `DELETED`, `GONE` or `FAILED`: the `result` label of the
    reconcile metric. `requeue_after` asks for another reconcile after that many seconds
    (something is pending: a held revocation, a failed read or write), None when the resource
    is settled until its next trigger. `message` says why a requeue is asked for.
    `next_change` is when a time-bound grant of it next starts or ends (the refresher wakes it
    then), None when none will. `stamped`: status now holds the last-handled configuration the
    caller handed in (kopf's, recorded with the status write: triggers.diffbase);
    `stamp_dropped`: the API server dropped it from the write (the CRD lacks the field).
    """

    reason: str
    requeue_after: float | None = None
    message: str = ""
    next_change: datetime | None = None
    stamped: bool = False
    stamp_dropped: bool = False

    @property
    def settled(self) -> bool:
        return self.requeue_after is None
