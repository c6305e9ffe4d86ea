"""SubjectAccessReview, SelfSubjectAccessReview and LocalSubjectAccessReview answers.

Holds review(): fills a review's `status` (allowed, reason) from the same Authorizer that guards
every request, so `kubectl auth can-i` tells exactly what the server would do. Holds no HTTP.
"""

from __future__ import annotations

import copy
from typing import Any

from . import errors
from .rbac import Attributes, Authorizer, UserInfo
from .resources import ResourceType


def _attributes(spec: dict[str, Any], namespace: str) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if resource:
        return Attributes(
            verb=resource.get("verb", ""),
            api_group=resource.get("group", ""),
            resource=resource.get("resource", ""),
            subresource=resource.get("subresource", ""),
            namespace=namespace or resource.get("namespace", ""),
            name=resource.get("name", ""),
        )
    if non_resource:
        return Attributes(verb=non_resource.get("verb", ""), path=non_resource.get("path", ""))
    raise errors.invalid(
        "SubjectAccessReview",
        "",
        [
            errors.FieldError(
                "spec.resourceAttributes",
                "FieldValueRequired",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ],
        "authorization.k8s.io",
    )


def review(
    rtype: ResourceType, body: dict[str, Any], requester: UserInfo, namespace: str, authorizer: Authorizer
) -> dict[str, Any]:
    """The review with its status filled in."""
    answer = copy.deepcopy(body)
    spec = answer.setdefault("spec", {})
    if rtype.kind == "SelfSubjectAccessReview":
        user = requester
    else:
        if not spec.get("user") and not spec.get("groups"):
            raise errors.invalid(
                rtype.kind,
                "",
                [
                    errors.FieldError(
                        "spec.user",
                        "FieldValueInvalid",
                        "at least one of user or group must be specified",
                        "",
                    )
                ],
                rtype.group,
            )
        user = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()))
    attrs = _attributes(spec, namespace)
    allowed = authorizer.allowed(user, attrs)
    answer["apiVersion"], answer["kind"] = rtype.api_version, rtype.kind
    answer.setdefault("metadata", {})
    answer["status"] = {"allowed": allowed}
    if allowed:
        answer["status"]["reason"] = "allowed by RBAC"
    return answer
