"""Problems found while computing what a resource asks for, and the reasons status reports.

Holds the `Reason` vocabulary of docs/design.md, Conditions and the `Problem` value. Problems are values,
never exceptions: one bad namespace or group is reported and the rest proceeds. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from entra_rbac.core.models import error_path


class Reason(StrEnum):
    """Condition reasons (docs/design.md, Conditions). `PRECEDENCE` orders them."""

    RECONCILED = "Reconciled"
    EXPIRED = "Expired"  # Ready=True: every time-bound grant has ended (a finished resource)
    PROGRESSING = "Progressing"
    INVALID_SPEC = "InvalidSpec"
    GROUP_NOT_FOUND = "GroupNotFound"
    AMBIGUOUS_GROUP_NAME = "AmbiguousGroupName"
    DIRECTORY_UNAVAILABLE = "DirectoryUnavailable"
    DIRECTORY_FORBIDDEN = "DirectoryForbidden"
    CONFLICT = "Conflict"
    ROLE_NOT_FOUND = "RoleNotFound"
    ROLE_NOT_ALLOWED = "RoleNotAllowed"
    GUARDRAIL_VIOLATION = "GuardrailViolation"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    REVOCATION_HELD = "RevocationHeld"
    DELETION_UNCONFIRMED = "DeletionUnconfirmed"
    BINDING_TOO_LARGE = "BindingTooLarge"
    APPLY_FAILED = "ApplyFailed"
    SUSPENDED = "Suspended"


# Which reason `Ready` shows: the ONE precedence, first match wins (docs/troubleshooting.md lists
# the reasons in this order, and a test compares the two). The truth that matters most comes
# first: a resource outside the guardrails grants nothing, suspended or not; a suspended
# resource is not acted on at all; an invalid spec decides nothing; a held revocation, a
# deletion not yet confirmed, or a binding too large to write means nothing was changed,
# whatever else is wrong; a directory that cannot be read means nothing was verified. Then what
# a person must fix, most actionable first;
# then what the operator retries by itself; `Progressing` (writes pending), then `Expired` (every
# grant has ended, its bindings are gone: Ready=True, a finished resource is not an error) and
# `Reconciled` only without any.
PRECEDENCE: tuple[Reason, ...] = (
    Reason.GUARDRAIL_VIOLATION,
    Reason.ROLE_NOT_ALLOWED,
    Reason.SUSPENDED,
    Reason.INVALID_SPEC,
    Reason.REVOCATION_HELD,
    Reason.DELETION_UNCONFIRMED,
    Reason.BINDING_TOO_LARGE,
    Reason.DIRECTORY_FORBIDDEN,
    Reason.DIRECTORY_UNAVAILABLE,
    Reason.CONFLICT,
    Reason.AMBIGUOUS_GROUP_NAME,
    Reason.GROUP_NOT_FOUND,
    Reason.ROLE_NOT_FOUND,
    Reason.NAMESPACE_NOT_FOUND,
    Reason.APPLY_FAILED,
    Reason.PROGRESSING,
    Reason.EXPIRED,
    Reason.RECONCILED,
)
_STALLING = {
    Reason.GUARDRAIL_VIOLATION,
    Reason.BINDING_TOO_LARGE,
    Reason.INVALID_SPEC,
    Reason.DIRECTORY_FORBIDDEN,
    Reason.ROLE_NOT_ALLOWED,
    Reason.CONFLICT,
    Reason.AMBIGUOUS_GROUP_NAME,
    Reason.GROUP_NOT_FOUND,
    Reason.ROLE_NOT_FOUND,
    Reason.NAMESPACE_NOT_FOUND,
}
_TRANSIENT = {
    Reason.REVOCATION_HELD,
    Reason.DELETION_UNCONFIRMED,
    Reason.DIRECTORY_UNAVAILABLE,
    Reason.APPLY_FAILED,
}
# Problems only a person (or a change outside the operator) can clear: Stalled=True.
STALLING: tuple[Reason, ...] = tuple(r for r in PRECEDENCE if r in _STALLING)
# Problems the operator clears by itself on a later attempt: Reconciling=True.
TRANSIENT: tuple[Reason, ...] = tuple(r for r in PRECEDENCE if r in _TRANSIENT)
# The problem reasons in precedence order (what `sort_problems` ranks by).
SEVERITY: tuple[Reason, ...] = tuple(r for r in PRECEDENCE if r in _STALLING | _TRANSIENT)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing that keeps a resource from being fully Ready, with a message a person can act on.

    `field` is the spec path concerned (e.g. `spec.roleBindings[1].namespaces[0]`) when there is one.
    """

    reason: Reason
    message: str
    field: str = ""

    @property
    def stalls(self) -> bool:
        return self.reason in STALLING

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _in_spec_order(field: str) -> tuple[tuple[int, str], ...]:
    """`spec.groups[2]` before `spec.groups[10]`: indexes compare as numbers."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", field))


def sort_problems(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """Deduplicated, most severe first, then in spec order, then by message: a deterministic order."""
    rank = {reason: i for i, reason in enumerate(SEVERITY)}
    return tuple(
        sorted(
            set(problems), key=lambda p: (rank.get(p.reason, len(rank)), _in_spec_order(p.field), p.message)
        )
    )


def invalid_spec_problems(error: ValidationError, root: str = "spec") -> tuple[Problem, ...]:
    """One InvalidSpec problem per validation error, naming the field path and what is wrong.

    Validate with camelCase input (`model_validate(body["spec"])`) so paths read as in the manifest.
    """
    return sort_problems(
        Problem(
            Reason.INVALID_SPEC,
            str(detail["msg"]).removeprefix("Value error, "),
            error_path(tuple(detail["loc"]), root),
        )
        for detail in error.errors(include_url=False)
    )
