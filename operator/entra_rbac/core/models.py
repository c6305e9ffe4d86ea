"""Pydantic models of the EntraGroupBinding spec and status (DESIGN section 2).

These models and `crds/entragroupbindings.yaml` must agree on every verdict; a corpus test
holds them to it. Field names follow the CRD (camelCase on the wire, snake_case in Python).
Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

# Lower-case GUID, as Entra object IDs reach Kubernetes.
GUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# DNS-1123 label: namespace names.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# RBAC role names are path segment names: no '/', no '%', not '.' or '..'.
ROLE_NAME_PATTERN = r"^[^/%]+$"
FORBIDDEN_PREFIX = "system:"

Guid = Annotated[str, StringConstraints(pattern=GUID_PATTERN)]
NamespaceName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=ROLE_NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class GroupRef(_Model):
    """One Entra group, named by exactly one of object ID, display name or mail nickname."""

    id: Guid | None = None
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    mail_nickname: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

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

    @model_validator(mode="after")
    def _no_system_prefix(self) -> SubjectsSpec:
        for name, value in (("groupPrefix", self.group_prefix), ("userPrefix", self.user_prefix)):
            if value.startswith(FORBIDDEN_PREFIX):
                raise ValueError(f"{name} must not start with '{FORBIDDEN_PREFIX}'")
        return self


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(_Model):
    key: Annotated[str, StringConstraints(min_length=1, max_length=317)]
    operator: SelectorOperator
    values: list[Annotated[str, StringConstraints(max_length=63)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not self.values:
            raise ValueError(f"values must be non-empty for operator {self.operator.value}")
        if not needs_values and self.values:
            raise ValueError(f"values must be empty for operator {self.operator.value}")
        return self


class LabelSelector(_Model):
    match_labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _never_empty(self) -> LabelSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError("namespaceSelector must not be empty: it would select every namespace")
        return self


class ClusterRoleBindingSpec(_Model):
    cluster_role: RoleName


class RoleBindingSpec(_Model):
    cluster_role: RoleName | None = None
    role: RoleName | None = None
    namespaces: list[NamespaceName] = Field(default_factory=list, max_length=256)
    namespace_selector: LabelSelector | None = None

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


class EntraGroupBindingSpec(_Model):
    groups: list[GroupRef] = Field(min_length=1, max_length=100)
    subjects: SubjectsSpec = Field(default_factory=SubjectsSpec)
    cluster_role_bindings: list[ClusterRoleBindingSpec] = Field(default_factory=list, max_length=50)
    role_bindings: list[RoleBindingSpec] = Field(default_factory=list, max_length=50)
    suspend: bool = False

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


class GroupStatus(_Model):
    ref: str
    id: str | None = None
    display_name: str | None = None
    state: GroupState
    members: int | None = None


class BindingStatus(_Model):
    kind: Literal["RoleBinding", "ClusterRoleBinding"]
    namespace: str | None = None
    name: str
    role_ref: str  # "ClusterRole/edit" or "Role/deployer"
    subjects: int


class Summary(_Model):
    cluster_role_bindings: int = 0
    role_bindings: int = 0
    subjects: int = 0


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: str


class EntraGroupBindingStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    groups: list[GroupStatus] = Field(default_factory=list)
    bindings: list[BindingStatus] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    last_directory_sync: str | None = None
