"""The PATCH formats: JSON merge patch, JSON patch and strategic merge patch.

Holds apply_patch(content_type, target, patch, strategic). JSON patch comes from the `jsonpatch`
library. JSON merge patch (RFC 7386) is a dozen lines and written here. Strategic merge patch is
written here too, because no Python library implements it: it covers what kubectl and the
official client send for the built-in kinds this server serves (lists merged by key where the
Kubernetes types declare a patchMergeKey, `$patch` and `$deleteFromPrimitiveList` directives,
`$setElementOrder` and `$retainKeys` accepted and ignored). Holds no HTTP handling.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from . import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

# Lists that strategic merge patch merges by a key (field name to merge key), from the
# patchMergeKey tags of the Kubernetes API types this server serves. Lists of scalars tagged
# patchStrategy=merge are merged as sets. Every other list is replaced whole (RBAC `rules` and
# `subjects` have no strategy, so they are replaced, as on a real server).
_MERGE_KEYS = {"ownerReferences": "uid", "conditions": "type", "secrets": "name", "imagePullSecrets": "name"}
_MERGED_SCALAR_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _strategic_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in _MERGED_SCALAR_LISTS:  # the patch's new items first, as kube-apiserver orders them
        return [item for item in patch if item not in target] + target
    key = _MERGE_KEYS.get(field)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy([item for item in patch if not (isinstance(item, dict) and "$patch" in item)])
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [item for item in patch if item.get("$patch") != "replace"]
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        index = next(
            (i for i, t in enumerate(result) if isinstance(t, dict) and t.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _go(value: Any) -> str:
    """A decoded JSON value as Go's fmt prints it with %v (maps with sorted keys, nil as <nil>)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Strategic merge patch of one object level (see the module docstring for the coverage)."""
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return {}
    if "$patch" in patch:  # kube-apiserver knows replace and delete only, and fails with a 500
        raise errors.ApiError(500, "", f"unknown patch type: {patch['$patch']} in map: {_go(patch)}")
    result = dict(target)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in value]
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = strategic_merge(result[key], value)
        elif isinstance(value, dict):
            result[key] = strategic_merge({}, value)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_list(key, result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply_patch(content_type: str, target: dict[str, Any], patch: Any, *, strategic: bool) -> dict[str, Any]:
    """Apply a PATCH body; `strategic` says whether the kind supports strategic merge patch."""
    media = content_type.split(";")[0].strip()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.bad_request("json patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(target, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise errors.ApiError(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
            ) from exc
        if not isinstance(result, dict):
            raise errors.bad_request("json patch must produce an object")
        return result
    if not isinstance(patch, dict):
        raise errors.bad_request(f"{media} body must be a JSON object")
    if media == MERGE_PATCH:
        return dict(merge_patch(target, patch))
    if media == STRATEGIC_PATCH and strategic:
        return strategic_merge(target, patch)
    if media == STRATEGIC_PATCH:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            "strategic merge patch is not supported for custom resources; "
            "use a JSON merge patch (kubectl patch --type=merge)",
        )
    raise errors.unsupported_media_type(content_type)
