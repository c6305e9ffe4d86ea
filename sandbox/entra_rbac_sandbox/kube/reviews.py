"""Review answers: SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview,
SelfSubjectRulesReview (`kubectl auth can-i --list`) and SelfSubjectReview (`kubectl auth whoami`).

Holds review(): fills a review's `status` from the same Authorizer that guards every request, so
`kubectl auth can-i` tells exactly what the server would do. Holds no HTTP.
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
    answer["apiVersion"], answer["kind"] = rtype.api_version, rtype.kind
    answer.setdefault("metadata", {})
    if rtype.kind == "SelfSubjectReview":
        answer["status"] = {"userInfo": {"username": requester.name, "groups": list(requester.groups)}}
        return answer
    spec = answer.setdefault("spec", {})
    if rtype.kind == "SelfSubjectRulesReview":
        answer["status"] = _rules_status(authorizer.rules_for(requester, spec.get("namespace", "")))
        return answer
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
    answer["status"] = {"allowed": allowed}
    if allowed:
        answer["status"]["reason"] = "allowed by RBAC"
    return answer


def _rules_status(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """SubjectRulesReviewStatus: the rules, resource and non-resource ones apart."""
    resource, non_resource = [], []
    for rule in rules:
        if rule.get("nonResourceURLs"):
            non_resource.append({"verbs": rule.get("verbs", []), "nonResourceURLs": rule["nonResourceURLs"]})
        else:
            keys = ("verbs", "apiGroups", "resources", "resourceNames")
            resource.append({k: rule[k] for k in keys if rule.get(k) is not None})
    return {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": False}
