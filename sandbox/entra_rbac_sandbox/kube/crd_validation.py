"""Custom objects checked against a CRD version's structural schema, as the real API server does.

Holds `validate_object(schema, obj, old)`: it prunes unknown fields, applies `default`s
(crd_pruning.py), then validates the object against the version's `openAPIV3Schema` and returns
the pruned, defaulted object with a list of causes (`FieldError`) for a 422 `Invalid`. Also
`unknown_fields(schema, obj)` (the paths pruning drops, for `fieldValidation=Strict|Warn`).
Checked: `type`, `nullable`, `required`, `enum`, `pattern`, `minLength`/`maxLength`, `minItems`/`maxItems`,
`minProperties`/`maxProperties`, `minimum`/`maximum` (and exclusive), `multipleOf`, `format`
(those the API server checks), `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
`x-kubernetes-embedded-resource`, `x-kubernetes-list-type` set/map duplicates, `allOf`/`anyOf`/
`oneOf`/`not`, and CEL `x-kubernetes-validations` (crd_cel.py, incl. `oldSelf` transition rules
on objects and maps). Formats live in crd_formats.py.

Causes are worded as apiextensions-apiserver words them: the field path as `spec.groups[0].id`,
the kube-openapi detail (`spec.groups[0].id in body should match '^...'`) and the
k8s.io/apimachinery `field.Error` reason (FieldValueInvalid, FieldValueRequired,
FieldValueNotSupported, FieldValueTooLong, FieldValueTooMany, FieldValueTypeInvalid,
FieldValueDuplicate, FieldValueForbidden). Written by hand rather than through jsonschema because
jsonschema's paths, messages and keyword coverage (int-or-string, list types, pruning, defaulting)
are not the API server's.

Must not: import the operator's layers (the sandbox stands apart), do I/O, or check that a CRD's
schema is structural (the CRD's own validation does that).
"""

from __future__ import annotations

import copy
import math
import re
from functools import lru_cache
from typing import Any

from . import crd_cel, crd_formats
from .crd_pruning import child, default, prune
from .errors import FieldError

Schema = dict[str, Any]
# Schema failures after which the API server does not evaluate CEL rules (hasBlockingErr).
_BLOCKING = frozenset(
    (
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    )
)
_RULES_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def validate_object(
    schema: Schema, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """Prune, default and validate `obj` (not modified); `old` is the stored object on updates."""
    new = copy.deepcopy(obj)
    prune(schema, new, "", [], root=True)
    default(schema, new)
    errors: list[FieldError] = []
    _validate(schema, new, old, "", errors, root=True)
    if any(error.reason in _BLOCKING for error in errors):
        # As the API server: CEL rules are not run over an object of the wrong shape.
        errors.append(FieldError("<nil>", "FieldValueInvalid", _RULES_NOT_CHECKED, None))
    else:
        _validate(schema, new, old, "", errors, root=True, rules=True)
    return new, errors


def unknown_fields(schema: Schema, obj: dict[str, Any]) -> list[str]:
    """The paths of the fields pruning would drop, e.g. `spec.foo` (worded `unknown field "spec.foo"`)."""
    dropped: list[str] = []
    prune(schema, copy.deepcopy(obj), "", dropped, root=True)
    return dropped


# Validation ------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    """The JSON type of a value, as kube-openapi names it in `must be of type` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, wanted: str) -> bool:
    actual = _type_name(value)
    if wanted == "number":
        return actual in ("integer", "number")
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return actual == wanted


def _type_error(schema: Schema, value: Any, path: str) -> FieldError | None:
    name = path or "body"
    if value is None:
        if schema.get("nullable"):
            return None
        wanted = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        if not wanted:
            return None  # an untyped (preserve-unknown-fields) node takes anything
        return FieldError(
            path, "FieldValueTypeInvalid", f'{name} in body must be of type {wanted}: "null"', "null"
        )
    if schema.get("x-kubernetes-int-or-string"):
        if _type_name(value) in ("integer", "string"):
            return None
        detail = f'{name} in body must be of type integer,string: "{_type_name(value)}"'
        return FieldError(path, "FieldValueTypeInvalid", detail, _type_name(value))
    wanted = schema.get("type")
    if not wanted or _has_type(value, wanted):
        return None
    detail = f'{name} in body must be of type {wanted}: "{_type_name(value)}"'
    return FieldError(path, "FieldValueTypeInvalid", detail, _type_name(value))


def _validate(
    schema: Schema,
    value: Any,
    old: Any,
    path: str,
    errors: list[FieldError],
    *,
    root: bool = False,
    rules: bool = False,
) -> None:
    """One pass over the tree: the schema keywords, or (`rules`) the CEL rules."""
    type_error = _type_error(schema, value, path)
    if type_error is not None:
        if not rules:
            errors.append(type_error)
            if value is not None and "enum" in schema:  # kube-openapi checks the enum as well
                errors.extend(e for e in _value_errors({"enum": schema["enum"]}, value, path))
        return
    if value is None:
        return
    if rules:
        errors.extend(crd_cel.evaluate(schema, value, old, path, root=root))
    else:
        errors.extend(_value_errors(schema, value, path))
    if isinstance(value, dict):
        _validate_object(schema, value, old if isinstance(old, dict) else None, path, errors, rules)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                # Old items are only correlated by key in list-type map lists.
                old_item = _old_item(schema, item, old)
                _validate(items, item, old_item, f"{path}[{index}]", errors, rules=rules)


def _validate_object(
    schema: Schema,
    value: dict[str, Any],
    old: dict[str, Any] | None,
    path: str,
    errors: list[FieldError],
    rules: bool,
) -> None:
    for name in [] if rules else schema.get("required") or []:
        if name not in value:
            errors.append(FieldError(child(path, name), "FieldValueRequired", ""))
    properties: dict[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        old_item = old.get(key) if old is not None else None
        if key in properties:
            _validate(properties[key], item, old_item, child(path, key), errors, rules=rules)
        elif isinstance(additional, dict):
            _validate(additional, item, old_item, child(path, key), errors, rules=rules)


def _old_item(schema: Schema, item: Any, old: Any) -> Any:
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return None
    if not isinstance(item, dict):
        return None
    wanted = [item.get(k) for k in keys]
    for candidate in old:
        if isinstance(candidate, dict) and [candidate.get(k) for k in keys] == wanted:
            return candidate
    return None


def _value_errors(schema: Schema, value: Any, path: str) -> list[FieldError]:
    """The keyword checks of one node (its children are checked by the caller)."""
    errors: list[FieldError] = []
    name = path or "body"
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quote(v) for v in schema["enum"])
        errors.append(FieldError(path, "FieldValueNotSupported", f"supported values: {supported}", value))
    if isinstance(value, str):
        errors.extend(_string_errors(schema, value, path, name))
    elif isinstance(value, list):
        errors.extend(_array_errors(schema, value, path, name))
    elif isinstance(value, dict):
        errors.extend(_object_errors(schema, value, path, name))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        errors.extend(_number_errors(schema, value, path, name))
    errors.extend(_combinator_errors(schema, value, path, name))
    return errors


def _quote(value: Any) -> str:
    """A value as Go's strconv.Quote / json.Marshal print it in `supported values`."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return '"' + str(value) + '"'


def _string_errors(schema: Schema, value: str, path: str, name: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(
            FieldError(path, "FieldValueTooLong", f"may not be more than {schema['maxLength']} bytes", value)
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        detail = f"{name} in body should be at least {schema['minLength']} chars long"
        errors.append(FieldError(path, "FieldValueInvalid", detail, value))
    pattern = schema.get("pattern")
    if pattern is not None and not _compiled(pattern).search(value):
        errors.append(
            FieldError(path, "FieldValueInvalid", f"{name} in body should match '{pattern}'", value)
        )
    fmt = schema.get("format")
    if isinstance(fmt, str) and not crd_formats.conforms(fmt, value):
        detail = f'{name} in body must be of type {fmt}: "{value}"'
        errors.append(FieldError(path, "FieldValueTypeInvalid", detail, value))
    return errors


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    """The pattern for Python's `re` with Go RE2's meaning of `$`: the end of the text. (In
    Python `$` also matches before a final newline, which would let "abc" and a newline pass
    '^abc$'.)"""
    translated: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        translated.append(char)
    return re.compile("".join(translated))


def _array_errors(schema: Schema, value: list[Any], path: str, name: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"must have at most {schema['maxItems']} items"
        errors.append(FieldError(path, "FieldValueTooMany", detail, len(value)))
    if "minItems" in schema and len(value) < schema["minItems"]:
        detail = f"{name} in body should have at least {schema['minItems']} items"
        errors.append(FieldError(path, "FieldValueInvalid", detail, len(value)))
    errors.extend(_duplicate_errors(schema, value, path))
    return errors


def _duplicate_errors(schema: Schema, value: list[Any], path: str) -> list[FieldError]:
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if list_type not in ("set", "map"):
        return []
    seen: list[Any] = []
    errors: list[FieldError] = []
    for index, item in enumerate(value):
        if list_type == "map":
            if not isinstance(item, dict):
                continue
            identity: Any = {k: item.get(k) for k in keys}
        else:
            identity = item
        if identity in seen:
            errors.append(FieldError(f"{path}[{index}]", "FieldValueDuplicate", "", identity))
        else:
            seen.append(identity)
    return errors


def _object_errors(schema: Schema, value: dict[str, Any], path: str, name: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        detail = f"must have at most {schema['maxProperties']} items"
        errors.append(FieldError(path, "FieldValueTooMany", detail, len(value)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{name} in body should have at least {schema['minProperties']} properties"
        errors.append(FieldError(path, "FieldValueInvalid", detail, len(value)))
    return errors


def _number_errors(schema: Schema, value: float, path: str, name: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            errors.append(
                FieldError(path, "FieldValueInvalid", f"{name} in body should be greater than {low}", value)
            )
        elif value < low:
            detail = f"{name} in body should be greater than or equal to {low}"
            errors.append(FieldError(path, "FieldValueInvalid", detail, value))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            errors.append(
                FieldError(path, "FieldValueInvalid", f"{name} in body should be less than {high}", value)
            )
        elif value > high:
            detail = f"{name} in body should be less than or equal to {high}"
            errors.append(FieldError(path, "FieldValueInvalid", detail, value))
    factor = schema.get("multipleOf")
    if factor and not math.isclose(value / factor, round(value / factor)):
        errors.append(
            FieldError(path, "FieldValueInvalid", f"{name} in body should be a multiple of {factor}", value)
        )
    return errors


def _passes(schema: Schema, value: Any, path: str) -> bool:
    """Whether `value` meets a value-validation branch (allOf/anyOf/oneOf/not); types included."""
    found: list[FieldError] = []
    _validate(schema, value, None, path, found)
    return not found


def _combinator_errors(schema: Schema, value: Any, path: str, name: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for branch in schema.get("allOf") or []:
        found: list[FieldError] = []
        _validate(branch, value, None, path, found)
        errors.extend(found)
    any_of = schema.get("anyOf")
    if any_of and not any(_passes(b, value, path) for b in any_of):
        detail = f"{name} in body must validate at least one schema (anyOf)"
        errors.append(FieldError(path, "FieldValueInvalid", detail, value))
    one_of = schema.get("oneOf")
    if one_of and sum(_passes(b, value, path) for b in one_of) != 1:
        detail = f"{name} in body must validate one and only one schema (oneOf)"
        errors.append(FieldError(path, "FieldValueInvalid", detail, value))
    if isinstance(schema.get("not"), dict) and _passes(schema["not"], value, path):
        errors.append(
            FieldError(path, "FieldValueInvalid", f"{name} in body must not validate the schema (not)", value)
        )
    return errors
