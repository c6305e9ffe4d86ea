"""CEL `x-kubernetes-validations` of one schema node, evaluated as the API server evaluates them.

Holds `evaluate(schema, value, old, path)`, called by crd_validation.py on every node whose type
is right: each rule runs with `self` bound to the node (and `oldSelf` to the stored value on an
update; transition rules are skipped when there is none, as the API server does), and a failed
rule becomes a `FieldError` at `path` plus the rule's `fieldPath`, with the rule's `reason`,
its `messageExpression` or `message`, or `failed rule: <rule>`. cel-python (`celpy`) evaluates;
it knows the standard CEL macros and functions the API server offers (`has`, `size`, `all`,
`exists`, `exists_one`, `filter`, `map`, `startsWith`, `endsWith`, `contains`, `matches`).

Must not: estimate CEL cost (the real server refuses costly rules when the CRD is created; keep
every list and string a rule touches bounded in the CRD instead), or import the operator's layers.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError

from .errors import OMIT, FieldError

_OLD_SELF = re.compile(r"\boldSelf\b")
# At an object's root, CEL sees these and, of metadata, only name and generateName.
_ROOT_METADATA_FIELDS = ("name", "generateName")


# One environment for every rule, made at import: making one raises the interpreter's recursion
# limit (celpy needs it for deep expressions), which is better done once than mid-request.
_ENVIRONMENT = celpy.Environment()


@lru_cache(maxsize=1024)
def _program(expression: str) -> celpy.Runner:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(expression))


def _run(expression: str, activation: dict[str, Any]) -> Any:
    """The value of `expression`, or the CELEvalError / compile error it failed with."""
    try:
        result = _program(expression).evaluate(activation)
    except (CELEvalError, CELParseError) as error:
        return error
    except Exception as error:  # celpy raises plain TypeErrors etc. on bad operands
        return CELEvalError(str(error))
    return result


def _visible(value: Any, root: bool) -> Any:
    if not root or not isinstance(value, dict) or "metadata" not in value:
        return value
    metadata = value.get("metadata") or {}
    shown = {k: metadata[k] for k in _ROOT_METADATA_FIELDS if k in metadata}
    return {**value, "metadata": shown}


def evaluate(
    schema: dict[str, Any], value: Any, old: Any, path: str, *, root: bool = False
) -> list[FieldError]:
    """The causes for the node's failed rules (empty when every rule holds)."""
    rules = schema.get("x-kubernetes-validations") or []
    if not rules:
        return []
    self_json = _canonical(_visible(value, root))
    old_json = _canonical(_visible(old, root)) if old is not None else None
    shown = value if isinstance(value, str | int | float | bool) else OMIT  # objects are not shown
    errors: list[FieldError] = []
    for rule in rules:
        expression = rule["rule"]
        transition = bool(_OLD_SELF.search(expression))
        if transition and old_json is None:
            # A transition rule runs only on updates that have an old value. (With
            # optionalOldSelf the API server would run it with oldSelf unset; celpy has no
            # optional types, so those rules are skipped on creation here.)
            continue
        outcome = _outcome(expression, self_json, old_json if transition else None)
        if isinstance(outcome, Exception):
            errors.append(FieldError(path, "FieldValueInvalid", f"{expression}: {outcome}", shown))
        elif outcome is not True and outcome != BoolType(True):
            activation = _activation(self_json, old_json)
            errors.append(_failure(rule, activation, _with_field_path(path, rule.get("fieldPath")), shown))
    return errors


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _activation(self_json: str, old_json: str | None) -> dict[str, Any]:
    activation = {"self": json_to_cel(json.loads(self_json))}
    if old_json is not None:
        activation["oldSelf"] = json_to_cel(json.loads(old_json))
    return activation


# celpy interprets a rule in about a millisecond, and the sandbox validates the same values over
# and over (every status write re-validates the spec), so outcomes are kept by rule and value.
@lru_cache(maxsize=8192)
def _outcome(expression: str, self_json: str, old_json: str | None) -> Any:
    return _run(expression, _activation(self_json, old_json))


def _failure(rule: dict[str, Any], activation: dict[str, Any], path: str, shown: Any) -> FieldError:
    message = rule.get("message") or f"failed rule: {rule['rule']}"
    if rule.get("messageExpression"):
        produced = _run(rule["messageExpression"], activation)
        if isinstance(produced, str) and produced.strip():
            message = str(produced)
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        return FieldError(path, reason, message)
    if reason == "FieldValueRequired":
        return FieldError(path, reason, message)
    if reason == "FieldValueDuplicate":
        return FieldError(path, reason, message, shown)
    return FieldError(path, "FieldValueInvalid", message, shown)


def _with_field_path(path: str, field_path: str | None) -> str:
    """`spec.x` + `.values` -> `spec.x.values`; `['a.b']` subscripts print as `[a.b]`, as field.Path does."""
    if not field_path:
        return path
    suffix = re.sub(r"\[['\"]([^'\"]*)['\"]\]", r"[\1]", field_path)
    if not suffix.startswith((".", "[")):
        suffix = "." + suffix
    joined = path + suffix
    return joined[1:] if joined.startswith(".") else joined
