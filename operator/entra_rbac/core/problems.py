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
    """Condition reasons (docs/design.md, Conditions). The order of STALLING / WAITING sets severity."""

    RECONCILED = "Reconciled"
    PROGRESSING = "Progressing"
    INVALID_SPEC = "InvalidSpec"
    GROUP_NOT_FOUND = "GroupNotFound"
    AMBIGUOUS_GROUP_NAME = "AmbiguousGroupName"
    DIRECTORY_UNAVAILABLE = "DirectoryUnavailable"
    DIRECTORY_FORBIDDEN = "DirectoryForbidden"
    CONFLICT = "Conflict"
    ROLE_NOT_FOUND = "RoleNotFound"
    ROLE_NOT_ALLOWED = "RoleNotAllowed"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    REVOCATION_HELD = "RevocationHeld"
    APPLY_FAILED = "ApplyFailed"
    SUSPENDED = "Suspended"


# Problems only a person (or a change outside the operator) can clear: Stalled=True.
# Listed most actionable first; the first present one becomes Ready's reason.
STALLING: tuple[Reason, ...] = (
    Reason.INVALID_SPEC,
    Reason.DIRECTORY_FORBIDDEN,
    Reason.ROLE_NOT_ALLOWED,
    Reason.CONFLICT,
    Reason.AMBIGUOUS_GROUP_NAME,
    Reason.GROUP_NOT_FOUND,
    Reason.ROLE_NOT_FOUND,
    Reason.NAMESPACE_NOT_FOUND,
)
# Problems the operator clears by itself on a later attempt: Reconciling=True.
TRANSIENT: tuple[Reason, ...] = (
    Reason.REVOCATION_HELD,
    Reason.DIRECTORY_UNAVAILABLE,
    Reason.APPLY_FAILED,
)
SEVERITY: tuple[Reason, ...] = STALLING + TRANSIENT


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
