"""The RBAC escalation checks on writes of roles and bindings (pkg/registry/rbac upstream).

Holds check_escalation(): a RoleBinding or ClusterRoleBinding needs `bind` on the referenced role
(honouring resourceNames) or every permission in it; a Role or ClusterRole needs `escalate` or
every permission it grants, and an aggregationRule needs full authority. Raises 403 Forbidden
with the upstream wording. Reads RBAC through the Authorizer; writes nothing.
"""

from __future__ import annotations

from typing import Any

from . import errors, rbac
from .resources import ResourceType


def check_escalation(
    authorizer: rbac.Authorizer, rtype: ResourceType, obj: dict[str, Any], user: rbac.UserInfo
) -> None:
    """Bindings need `bind` on the role or every permission in it; roles need `escalate` or theirs."""
    if rtype.group != rbac.RBAC:
        return
    namespace = obj["metadata"].get("namespace", "")
    name = obj["metadata"]["name"]
    if rtype.kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        bind = rbac.Attributes("bind", rbac.RBAC, plural, "", namespace, ref.get("name", ""))
        if authorizer.allowed(user, bind):
            return
        servant = authorizer.role_ref_rules(ref, namespace)
        if servant is None:
            raise errors.forbidden(
                rtype.plural,
                name,
                f'{_escalating(user)} {plural} "{ref.get("name")}" not found',
                rtype.group,
            )
    elif rtype.kind in ("Role", "ClusterRole"):
        escalate = rbac.Attributes("escalate", rbac.RBAC, rtype.plural, "", namespace, name)
        if authorizer.allowed(user, escalate):
            return
        servant = list(obj.get("rules") or [])
        full = [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ]
        if obj.get("aggregationRule") and rbac.uncovered(authorizer.rules_for(user, namespace), full):
            # An aggregation rule can gather anything, so it takes full authority (as upstream).
            why = "must have cluster-admin privileges to use the aggregationRule"
            raise errors.forbidden(rtype.plural, name, why, rtype.group)
    else:
        return
    missing = rbac.uncovered(authorizer.rules_for(user, namespace), servant)
    if missing:
        shown = "; ".join(_describe_rule(m) for m in missing[:10])
        raise errors.forbidden(
            rtype.plural,
            name,
            f"{_escalating(user)}\n{shown}",
            rtype.group,
        )


def _escalating(user: rbac.UserInfo) -> str:
    groups = list(user.groups)
    return f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not currently held:'


def _describe_rule(piece: rbac.Attributes) -> str:
    if piece.path is not None:
        return f"{{NonResourceURLs:[{piece.path}], Verbs:[{piece.verb}]}}"
    resource = f"{piece.resource}/{piece.subresource}" if piece.subresource else piece.resource
    names = f" ResourceNames:[{piece.name}]" if piece.name else ""
    return f'{{APIGroups:["{piece.api_group}"], Resources:["{resource}"],{names} Verbs:["{piece.verb}"]}}'
