"""The revocation hold: whether a plan that revokes too much at once goes ahead now.

Holds `RevocationHold` (the record kept in `status.revocationHold`) and `revocation_hold`, the
decision. Deciding that a plan is a mass revocation is the core's (`core.revocation`); what is
here is remembering that it was held (in status, so a restart keeps it) and the two releases:
a later directory read, at least `retry_delay` after the hold, that asks for the same removals,
or the annotation `entra-rbac.io/confirm-revocation=<fingerprint>` naming exactly them. No I/O.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from entra_rbac.constants import CONFIRM_REVOCATION_ANNOTATION
from entra_rbac.core.desired import Owner
from entra_rbac.core.plan import ObservedBinding, Plan
from entra_rbac.core.revocation import check_revocation
from entra_rbac.core.status import timestamp
from entra_rbac.core.subjects import Subject
from entra_rbac.logsetup import fields

log = logging.getLogger("entra_rbac.reconcile")

HOLD_KEY: Final = "revocationHold"  # where status keeps the hold


@dataclass(frozen=True)
class RevocationHold:
    """A held revocation: which removals (their fingerprint), since when, and what status says."""

    fingerprint: str
    since: str
    removed: int
    current: int
    message: str

    def to_status(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "since": self.since,
            "removed": self.removed,
            "current": self.current,
            "message": self.message,
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> RevocationHold | None:
        """The hold recorded in a status, or None (none, or not one this operator wrote)."""
        raw = status.get(HOLD_KEY)
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(
                fingerprint=str(raw["fingerprint"]),
                since=str(raw["since"]),
                removed=int(raw["removed"]),
                current=int(raw["current"]),
                message=str(raw["message"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def held_for(self, now: datetime) -> float:
        """Seconds since the hold began (a `since` that does not parse counts as just now)."""
        try:
            return (now - datetime.fromisoformat(self.since)).total_seconds()
        except ValueError:
            return 0.0


@dataclass(frozen=True)
class HoldPolicy:
    """The guard's thresholds and the least time between a hold and the read that releases it."""

    max_share: float
    min_count: int
    retry_delay: float


def revocation_hold(
    owner: Owner,
    observed: Sequence[ObservedBinding],
    plan: Plan,
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    *,
    now: datetime,
    policy: HoldPolicy,
) -> RevocationHold | None:
    """The hold to record when this plan revokes too much at once, or None to go ahead."""
    check = check_revocation(
        observed, plan, owner.uid, max_share=policy.max_share, min_count=policy.min_count
    )
    released = fields(resource=owner.name, subjects=len(check.removed))
    if not check.held:
        return None
    fingerprint = fingerprint_of(check.removed)
    if annotations.get(CONFIRM_REVOCATION_ANNOTATION) == fingerprint:
        log.info("Released revocation hold: confirmed by annotation", extra=released)
        return None
    earlier = RevocationHold.from_status(status)
    if earlier is not None and earlier.fingerprint == fingerprint:
        if earlier.held_for(now) >= policy.retry_delay:
            log.info("Released revocation hold: a later read agreed", extra=released)
            return None
        return earlier
    message = check.message.replace(
        f"annotate the resource with {CONFIRM_REVOCATION_ANNOTATION}",
        f"annotate the resource with {CONFIRM_REVOCATION_ANNOTATION}={fingerprint}",
    )
    return RevocationHold(
        fingerprint=fingerprint,
        since=timestamp(now),
        removed=len(check.removed),
        current=check.current,
        message=message,
    )


def fingerprint_of(subjects: Sequence[Subject]) -> str:
    """A short digest naming exactly these removals (what the confirming annotation must carry)."""
    text = "\n".join(f"{s.kind}:{s.name}" for s in sorted(subjects))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
