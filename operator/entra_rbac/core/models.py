"""Pydantic models of the EntraGroupBinding spec and status (docs/design.md, The API).

These models and `crds/entragroupbindings.yaml` must agree on every verdict; a corpus test
(tests/unit/test_crd_corpus.py) holds them to it, and to naming the same field path. Field names
follow the CRD (camelCase on the wire, snake_case in Python). `error_path` names a field as the
API server would (`spec.groups[0].id`); `problems.invalid_spec_problems` turns a ValidationError
into one problem per field.
Pure: no I/O, no Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

# Lower-case GUID, as Entra object IDs reach Kubernetes.
GUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# DNS-1123 label: namespace names.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# RBAC role names are path segment names: no '/', no '%'.
ROLE_NAME_PATTERN = r"^[^/%]+$"
# Entra mail nicknames: printable ASCII without @ ( ) \ [ ] " ; : < > , and space.
MAIL_NICKNAME_PATTERN = r"^[!#$%&'*+\-./0-9=?A-Z^_`a-z{|}~]+$"
# Label values and keys (qualified names with an optional DNS subdomain prefix).
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
FORBIDDEN_PREFIX = "system:"
# RFC 3339 with a zone (Z or an offset): a zone-less time would mean whatever the operator's
# clock zone is. The CRD holds the same pattern beside `format: date-time` (which checks the date).
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
MAX_TIME_LENGTH = 40
# Bounds shared with the CRD (its CEL rules need every list and string bounded).
MAX_GROUPS = 100
MAX_BINDINGS = 50
MAX_NAMESPACES = 256
MAX_MATCH_LABELS = 32
MAX_MATCH_EXPRESSIONS = 32
MAX_SELECTOR_VALUES = 64

Guid = Annotated[str, StringConstraints(pattern=GUID_PATTERN)]
NamespaceName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=ROLE_NAME_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError("must be a string: an RFC 3339 time with a zone, e.g. 2026-12-01T18:00:00Z")
    if len(text) > MAX_TIME_LENGTH:
        raise ValueError(f"must be at most {MAX_TIME_LENGTH} characters")
    if not re.fullmatch(RFC3339_PATTERN, text):
        raise ValueError(
            f"{text!r} is not an RFC 3339 time with a zone (e.g. 2026-12-01T18:00:00Z or "
            "2026-12-01T19:00:00+01:00)"
        )
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid time: {error}") from None


# validFrom / validUntil: written as text, held as an aware datetime.
Timestamp = Annotated[datetime, BeforeValidator(_parse_time)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",  # as the API server's strict field validation (kubectl's default)
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        # The API server drops a null in a non-nullable field (or puts its default there), so
        # `suspend: null` means what leaving it out means.
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class GroupRef(_Model):
    """One Entra group, named by exactly one of object ID, display name or mail nickname."""

    id: Guid | None = None
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    mail_nickname: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=MAIL_NICKNAME_PATTERN)] | None
    ) = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GroupRef:
        given = [v for v in (self.id, self.display_name, self.mail_nickname) if v is not None]
        if len(given) != 1:
            raise ValueError("exactly one of id, displayName, mailNickname must be set")
        return self

    @property
    def key(self) -> str:
        """A stable text form, e.g. `displayName=Payments Developers` (status.groups[].ref)."""
        if self.id is not None:
            return f"id={self.id}"
        if self.display_name is not None:
            return f"displayName={self.display_name}"
        return f"mailNickname={self.mail_nickname}"


class SubjectKind(StrEnum):
    GROUP = "Group"
    USER = "User"


Prefix = Annotated[str, StringConstraints(max_length=63)]


class SubjectsSpec(_Model):
    kind: SubjectKind = SubjectKind.GROUP
    group_prefix: Prefix = ""
    user_prefix: Prefix = ""

    @field_validator("group_prefix", "user_prefix")
    @classmethod
    def _no_system_prefix(cls, value: str) -> str:
        if value.startswith(FORBIDDEN_PREFIX):
            raise ValueError(
                f"must not start with '{FORBIDDEN_PREFIX}': that prefix is reserved for Kubernetes"
            )
        return value


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(_Model):
    key: Annotated[str, StringConstraints(min_length=1, max_length=317, pattern=LABEL_KEY_PATTERN)]
    operator: SelectorOperator
    # validate_default: a missing `values` is checked against the operator too.
    values: list[LabelValue] = Field(
        default_factory=list, max_length=MAX_SELECTOR_VALUES, validate_default=True
    )

    @field_validator("values")
    @classmethod
    def _values_match_operator(cls, values: list[str], info: ValidationInfo) -> list[str]:
        operator = info.data.get("operator")
        if operator is None:
            return values  # the operator itself is invalid and reported
        needs_values = operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not values:
            raise ValueError("must be non-empty when operator is In or NotIn")
        if not needs_values and values:
            raise ValueError("must be empty when operator is Exists or DoesNotExist")
        return values


class LabelSelector(_Model):
    match_labels: dict[str, LabelValue] = Field(default_factory=dict, max_length=MAX_MATCH_LABELS)
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=MAX_MATCH_EXPRESSIONS
    )

    @model_validator(mode="after")
    def _never_empty(self) -> LabelSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError("must not be empty: it would select every namespace")
        return self


class _Windowed(_Model):
    """A grant's time window (docs/design.md, Time-bound grants): active from `valid_from`
    (inclusive) until `valid_until` (exclusive); either may be absent (open-ended)."""

    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None

    @field_validator("valid_until")
    @classmethod
    def _ends_after_start(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("valid_from")
        if until is not None and isinstance(start, datetime) and until <= start:
            raise ValueError("must be after validFrom")
        return until


class ClusterRoleBindingSpec(_Windowed):
    cluster_role: RoleName


class RoleBindingSpec(_Windowed):
    cluster_role: RoleName | None = None
    role: RoleName | None = None
    namespaces: list[NamespaceName] = Field(default_factory=list, max_length=MAX_NAMESPACES)
    namespace_selector: LabelSelector | None = None

    @field_validator("namespaces")
    @classmethod
    def _no_duplicate_namespace(cls, namespaces: list[str]) -> list[str]:
        _reject_duplicates(namespaces, "namespace")
        return namespaces

    @model_validator(mode="after")
    def _one_role_and_a_target(self) -> RoleBindingSpec:
        if (self.cluster_role is None) == (self.role is None):
            raise ValueError("exactly one of clusterRole, role must be set")
        if not self.namespaces and self.namespace_selector is None:
            raise ValueError("at least one of namespaces, namespaceSelector must be set")
        return self

    @property
    def role_kind(self) -> Literal["ClusterRole", "Role"]:
        return "ClusterRole" if self.cluster_role is not None else "Role"

    @property
    def role_name(self) -> str:
        name = self.cluster_role if self.cluster_role is not None else self.role
        assert name is not None  # guaranteed by the validator
        return name


def _reject_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} at index {index}")
        seen.add(value)


class EntraGroupBindingSpec(_Windowed):
    groups: list[GroupRef] = Field(min_length=1, max_length=MAX_GROUPS)
    subjects: SubjectsSpec = Field(default_factory=SubjectsSpec)
    cluster_role_bindings: list[ClusterRoleBindingSpec] = Field(default_factory=list, max_length=MAX_BINDINGS)
    role_bindings: list[RoleBindingSpec] = Field(default_factory=list, max_length=MAX_BINDINGS)
    suspend: StrictBool = False

    @field_validator("cluster_role_bindings")
    @classmethod
    def _one_binding_per_cluster_role(
        cls, bindings: list[ClusterRoleBindingSpec]
    ) -> list[ClusterRoleBindingSpec]:
        _reject_duplicates([b.cluster_role for b in bindings], "clusterRole")
        return bindings

    @model_validator(mode="after")
    def _at_least_one_target(self) -> EntraGroupBindingSpec:
        if not self.cluster_role_bindings and not self.role_bindings:
            raise ValueError("at least one of clusterRoleBindings, roleBindings must be set")
        return self


# --- status -------------------------------------------------------------------------------


class GroupState(StrEnum):
    RESOLVED = "Resolved"
    NOT_FOUND = "NotFound"
    AMBIGUOUS = "Ambiguous"
    UNVERIFIED = "Unverified"


Count = Annotated[StrictInt, Field(ge=0)]


class GroupStatus(_Model):
    ref: Annotated[str, StringConstraints(max_length=300)]
    id: Annotated[str, StringConstraints(max_length=36)] | None = None
    display_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    state: GroupState
    members: Count | None = None  # user mode only


class BindingStatus(_Model):
    kind: Literal["RoleBinding", "ClusterRoleBinding"]
    namespace: Annotated[str, StringConstraints(max_length=63)] | None = None
    name: Annotated[str, StringConstraints(max_length=253)]
    role_ref: Annotated[str, StringConstraints(max_length=264)]  # "ClusterRole/edit" or "Role/deployer"
    subjects: Count


class Summary(_Model):
    """Counts for the printer columns: `groups` is "resolved/total" (GROUPS), `bindings` the
    total of both kinds (BINDINGS)."""

    groups: Annotated[str, StringConstraints(max_length=16, pattern=r"^[0-9]+/[0-9]+$")] | None = None
    bindings: Count = 0
    cluster_role_bindings: Count = 0
    role_bindings: Count = 0
    subjects: Count = 0


class GrantState(StrEnum):
    """Where a time-bound grant stands now (docs/design.md, Time-bound grants)."""

    PENDING = "Pending"
    ACTIVE = "Active"
    EXPIRED = "Expired"


class GrantStatus(_Model):
    """One time-bound grant in status: which entry, its effective window, its state now."""

    grant: Annotated[str, StringConstraints(max_length=64)]
    role_ref: Annotated[str, StringConstraints(max_length=264)]
    scope: Annotated[str, StringConstraints(max_length=1024)] | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    state: GrantState


class Condition(_Model):
    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
    ]
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    observed_generation: Count | None = None
    last_transition_time: str


class RevocationHold(_Model):
    """A sync held back by the mass-revocation guard (docs/design.md, Directory semantics)."""

    fingerprint: Annotated[str, StringConstraints(max_length=64)]
    since: str
    removed: Annotated[int, Field(ge=0)] | None = None
    current: Annotated[int, Field(ge=0)] | None = None
    message: Annotated[str, StringConstraints(max_length=1024)] | None = None


class EntraGroupBindingStatus(_Model):
    observed_generation: Count | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    groups: list[GroupStatus] = Field(default_factory=list, max_length=MAX_GROUPS)
    bindings: list[BindingStatus] = Field(default_factory=list, max_length=MAX_BINDINGS)
    summary: Summary = Field(default_factory=Summary)
    last_directory_sync: str | None = None
    grants: list[GrantStatus] = Field(default_factory=list, max_length=2 * MAX_BINDINGS)
    next_expiry: str | None = None
    revocation_hold: RevocationHold | None = None
    kopf: dict[str, Any] | None = None  # kopf's own bookkeeping, when it keeps any in status
    # kopf's last-handled configuration (JSON: the spec's digest, labels, annotations), recorded
    # with the reconcile's status write (docs/design.md, kopf's state).
    last_handled_configuration: Annotated[str, StringConstraints(max_length=262144)] | None = None


# --- errors -------------------------------------------------------------------------------


def error_path(loc: tuple[int | str, ...], root: str = "spec") -> str:
    """A pydantic location as the API server prints a field: ("groups", 0, "id") -> spec.groups[0].id."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "enum[", "literal[", "constrained-str")):
            continue  # pydantic's names for validator steps, not fields
        else:
            path = f"{path}.{part}" if path else part
    return path
