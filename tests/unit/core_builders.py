"""Small builders shared by the pure-core unit tests (specs, resolutions, namespaces)."""

from __future__ import annotations

from typing import Any

from entra_rbac.core.desired import DesiredState, NamespaceInfo, Owner, compute_desired
from entra_rbac.core.entra import DirectoryGroup, GroupLookup, GroupResolution
from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef, GroupState
from entra_rbac.core.subjects import build_subjects

G1 = "11111111-1111-1111-1111-111111111111"
G2 = "22222222-2222-2222-2222-222222222222"
G3 = "33333333-3333-3333-3333-333333333333"
UID = "aaaaaaaa-0000-0000-0000-000000000001"
OTHER_UID = "bbbbbbbb-0000-0000-0000-000000000002"
OWNER = Owner(name="payments", uid=UID, generation=3)


def spec(**fields: Any) -> EntraGroupBindingSpec:
    body: dict[str, Any] = {"groups": [{"id": G1}], **fields}
    if "clusterRoleBindings" not in body and "roleBindings" not in body:
        body["clusterRoleBindings"] = [{"clusterRole": "view"}]
    return EntraGroupBindingSpec.model_validate(body)


def resolved(group_id: str, name: str = "Group", ref: GroupRef | None = None) -> GroupResolution:
    lookup = GroupLookup(ref=ref or GroupRef(id=group_id))
    return GroupResolution(lookup, GroupState.RESOLVED, DirectoryGroup(group_id, name))


def not_found(ref: GroupRef, pinned_id: str | None = None, message: str = "") -> GroupResolution:
    return GroupResolution(GroupLookup(ref=ref, pinned_id=pinned_id), GroupState.NOT_FOUND, message=message)


def namespaces(*names: str, **labels: dict[str, str]) -> list[NamespaceInfo]:
    """Namespaces by name; keyword arguments give labels (underscores stand for dashes)."""
    infos = [NamespaceInfo(name) for name in names]
    infos += [NamespaceInfo(name.replace("_", "-"), value) for name, value in labels.items()]
    return infos


def desired_for(
    body: EntraGroupBindingSpec, group_ids: tuple[str, ...] = (G1,), **kwargs: Any
) -> DesiredState:
    namespaces_ = kwargs.pop("namespaces", [])
    subject_set = build_subjects(body.subjects, [resolved(g) for g in group_ids])
    return compute_desired(kwargs.pop("owner", OWNER), body, subject_set, namespaces_, **kwargs)
