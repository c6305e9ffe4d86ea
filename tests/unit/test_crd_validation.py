"""The sandbox's custom-object validation words its causes as the real API server does, and
prunes, defaults and evaluates CEL as it does. Causes are rendered here as apimachinery renders
field errors, so these tests pin the real server's text whatever errors.py does with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from entra_rbac_sandbox.kube.crd_validation import unknown_fields, validate_object
from entra_rbac_sandbox.kube.errors import OMIT, FieldError

Schema = dict[str, Any]


def _root(spec_schema: Schema) -> Schema:
    return {"type": "object", "properties": {"spec": spec_schema}}


def _object(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.io/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "labels": {"a": "b"}},
        "spec": spec,
    }


def _go(value: Any, reason: str) -> str | None:
    """A bad value as k8s.io/apimachinery's field.Error prints it (%q for strings, %v for numbers,
    `null`; an object, a list or no value is not shown: None). Checked on kube-apiserver v1.36.3."""
    if value is OMIT or (isinstance(value, dict | list) and reason != "FieldValueDuplicate"):
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


_TYPES = {
    "FieldValueInvalid": "Invalid value",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueTooMany": "Too many",
    "FieldValueRequired": "Required value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
}


def render(error: FieldError) -> str:
    """The cause as the real API server prints it (field.Error.Error()): what the sandbox must say."""
    text = _TYPES[error.reason]
    shown = _go(error.value, error.reason)
    if error.reason not in ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong") and shown:
        text += f": {shown}"
    return f"{error.field}: {text}: {error.detail}" if error.detail else f"{error.field}: {text}"


def causes(spec_schema: Schema, spec: Any, old_spec: Any = None) -> list[str]:
    old = _object(old_spec) if old_spec is not None else None
    _, errors = validate_object(_root(spec_schema), _object(spec), old)
    return [render(e) for e in errors]


def reasons(spec_schema: Schema, spec: Any) -> list[tuple[str, str]]:
    _, errors = validate_object(_root(spec_schema), _object(spec))
    return [(e.field, e.reason) for e in errors]


def _props(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties}


GUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@pytest.mark.parametrize(
    ("schema", "spec", "expected"),
    [
        (
            _props(id={"type": "string", "pattern": GUID}),
            {"id": "x"},
            'spec.id: Invalid value: "x": spec.id in body should match \'' + GUID + "'",
        ),
        ({**_props(a={"type": "string"}), "required": ["a"]}, {}, "spec.a: Required value"),
        (
            _props(k={"type": "string", "enum": ["Group", "User"]}),
            {"k": "Foo"},
            'spec.k: Unsupported value: "Foo": supported values: "Group", "User"',
        ),
        (
            _props(l={"type": "array", "maxItems": 2, "items": {"type": "string"}}),
            {"l": ["a", "b", "c"]},
            "spec.l: Too many: 3: must have at most 2 items",
        ),
        (
            _props(l={"type": "array", "minItems": 1, "items": {"type": "string"}}),
            {"l": []},
            "spec.l: Invalid value: 0: spec.l in body should have at least 1 items",
        ),
        (
            _props(s={"type": "string", "maxLength": 3}),
            {"s": "abcd"},
            "spec.s: Too long: may not be more than 3 bytes",
        ),
        (
            _props(s={"type": "string", "minLength": 2}),
            {"s": "a"},
            'spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long',
        ),
        (
            _props(b={"type": "boolean"}),
            {"b": "yes"},
            'spec.b: Invalid value: "string": spec.b in body must be of type boolean: "string"',
        ),
        (
            _props(n={"type": "integer", "minimum": 0}),
            {"n": -1},
            "spec.n: Invalid value: -1: spec.n in body should be greater than or equal to 0",
        ),
        (
            _props(n={"type": "integer", "maximum": 5, "exclusiveMaximum": True}),
            {"n": 5},
            "spec.n: Invalid value: 5: spec.n in body should be less than 5",
        ),
        (
            _props(n={"type": "integer", "multipleOf": 2}),
            {"n": 3},
            "spec.n: Invalid value: 3: spec.n in body should be a multiple of 2",
        ),
        (
            _props(n={"type": "integer"}),
            {"n": 1.5},
            'spec.n: Invalid value: "number": spec.n in body must be of type integer: "number"',
        ),
        (
            _props(m={"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}),
            {"m": {"a": "1", "b": "2"}},
            "spec.m: Too many: 2: must have at most 1 items",
        ),
        (
            _props(m={"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}}),
            {"m": {}},
            "spec.m: Invalid value: 0: spec.m in body should have at least 1 properties",
        ),
        (
            _props(m={"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}}),
            {"m": {"k": "long"}},
            "spec.m.k: Too long: may not be more than 1 bytes",
        ),
        (
            _props(t={"type": "string", "format": "date-time"}),
            {"t": "yesterday"},
            'spec.t: Invalid value: "yesterday": spec.t in body must be of type date-time: "yesterday"',
        ),
        (
            _props(v={"x-kubernetes-int-or-string": True}),
            {"v": True},
            'spec.v: Invalid value: "boolean": spec.v in body must be of type integer,string: "boolean"',
        ),
        (_props(s={"type": "string"}), {"s": None, "t": 1}, None),
        (
            _props(l={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}),
            {"l": ["a", "b", "a"]},
            'spec.l[2]: Duplicate value: "a"',
        ),
        (
            _props(
                l={
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": _props(name={"type": "string"}, v={"type": "integer"}),
                }
            ),
            {"l": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]},
            'spec.l[1]: Duplicate value: {"name": "a"}',
        ),
        (
            _props(
                v={
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True,
                    "not": {"type": "string", "pattern": "^x"},
                }
            ),
            {"v": "xy"},
            'spec.v: Invalid value: "xy": spec.v in body must not validate the schema (not)',
        ),
        (
            _props(s={"type": "string", "oneOf": [{"minLength": 1}, {"maxLength": 3}]}),
            {"s": "ab"},
            'spec.s: Invalid value: "ab": spec.s in body must validate one and only one schema (oneOf)',
        ),
        (
            _props(s={"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}),
            {"s": "c"},
            'spec.s: Invalid value: "c": spec.s in body must validate at least one schema (anyOf)',
        ),
        (
            _props(s={"type": "string", "allOf": [{"maxLength": 1}]}),
            {"s": "ab"},
            "spec.s: Too long: may not be more than 1 bytes",
        ),
    ],
    ids=lambda v: "" if not isinstance(v, str) else v[:40],
)
def test_schema_failures_are_worded_as_the_api_server_words_them(
    schema: Schema, spec: Any, expected: str | None
) -> None:
    found = causes(schema, spec)
    if expected is None:
        assert found == []
    else:
        assert expected in found, found


@pytest.mark.parametrize(
    ("rule", "spec", "expected"),
    [
        (
            {"rule": "self.a != 7", "message": "a must not be 7"},
            {"a": 7},
            "spec: Invalid value: a must not be 7",
        ),
        ({"rule": "self.a != 7"}, {"a": 7}, "spec: Invalid value: failed rule: self.a != 7"),
        (
            {"rule": "self.a != 7", "messageExpression": "'a is ' + string(self.a)"},
            {"a": 7},
            "spec: Invalid value: a is 7",
        ),
        (
            {"rule": "self.a != 7", "fieldPath": ".a", "reason": "FieldValueForbidden", "message": "no"},
            {"a": 7},
            "spec.a: Forbidden: no",
        ),
        (
            {"rule": "has(self.b)", "reason": "FieldValueRequired", "message": "b is needed"},
            {"a": 1},
            "spec: Required value: b is needed",
        ),
        (
            {"rule": "[has(self.a), has(self.b)].exists_one(x, x)", "message": "one"},
            {"a": 1, "b": "x"},
            "spec: Invalid value: one",
        ),
        (
            {"rule": "!self.b.startsWith('system:')", "message": "no system"},
            {"b": "system:x"},
            "spec: Invalid value: no system",
        ),
        (
            {"rule": "self.b.matches('^[a-z]+$')", "message": "lower"},
            {"b": "ABC"},
            "spec: Invalid value: lower",
        ),
        (
            {"rule": "self.l.all(x, x > 0) && size(self.l) < 3", "message": "positive"},
            {"l": [1, -1]},
            "spec: Invalid value: positive",
        ),
    ],
    ids=lambda v: v["rule"][:30] if isinstance(v, dict) and "rule" in v else "",
)
def test_cel_rules_fail_with_their_message_reason_and_field_path(
    rule: dict[str, Any], spec: Any, expected: str
) -> None:
    schema = {
        **_props(
            a={"type": "integer"}, b={"type": "string"}, l={"type": "array", "items": {"type": "integer"}}
        ),
        "x-kubernetes-validations": [rule],
    }
    assert causes(schema, spec) == [expected]


def test_cel_rules_that_hold_give_no_cause() -> None:
    schema = {**_props(a={"type": "integer"}), "x-kubernetes-validations": [{"rule": "self.a > 1"}]}
    assert causes(schema, {"a": 2}) == []


def test_cel_rules_are_not_run_after_a_blocking_schema_error() -> None:
    schema = {
        **_props(a={"type": "integer"}),
        "required": ["a"],
        "x-kubernetes-validations": [{"rule": "self.a > 1"}],
    }
    assert causes(schema, {}) == ["spec.a: Required value", NOT_CHECKED]


def test_cel_rules_still_run_after_a_pattern_error() -> None:
    schema = {
        **_props(a={"type": "integer"}, s={"type": "string", "pattern": "^x$"}),
        "x-kubernetes-validations": [{"rule": "self.a > 1", "message": "small"}],
    }
    assert causes(schema, {"a": 1, "s": "y"}) == [
        "spec.s: Invalid value: \"y\": spec.s in body should match '^x$'",
        "spec: Invalid value: small",
    ]


def test_transition_rules_run_only_on_updates() -> None:
    schema = {
        **_props(a={"type": "string"}),
        "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a", "message": "a is immutable"}],
    }
    assert causes(schema, {"a": "new"}) == []
    assert causes(schema, {"a": "new"}, old_spec={"a": "old"}) == ["spec: Invalid value: a is immutable"]
    assert causes(schema, {"a": "same"}, old_spec={"a": "same"}) == []


def test_rules_in_list_items_name_the_item() -> None:
    item = {
        **_props(a={"type": "integer"}),
        "x-kubernetes-validations": [{"rule": "self.a > 0", "message": "pos"}],
    }
    schema = _props(l={"type": "array", "items": item})
    assert causes(schema, {"l": [{"a": 1}, {"a": 0}]}) == ["spec.l[1]: Invalid value: pos"]


def test_unknown_fields_are_pruned_and_reported_but_metadata_is_kept() -> None:
    schema = _root(
        _props(a={"type": "string"}, keep={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    )
    obj = _object({"a": "x", "b": 1, "keep": {"anything": [1]}})
    obj["extra"] = True
    pruned, errors = validate_object(schema, obj)
    assert errors == []
    assert pruned["spec"] == {"a": "x", "keep": {"anything": [1]}}
    assert pruned["metadata"] == obj["metadata"]
    assert "extra" not in pruned
    assert sorted(unknown_fields(schema, obj)) == ["extra", "spec.b"]
    assert obj["spec"]["b"] == 1, "the input object is not modified"


def test_embedded_resources_keep_their_type_and_metadata() -> None:
    schema = _root(
        _props(template={"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}})
    )
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "junk": 1}
    pruned, _ = validate_object(schema, _object({"template": template}))
    assert pruned["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"kind": "Group", "sub": {"kind": "Group", "prefix": ""}, "suspend": False}),
        (
            {"suspend": None, "sub": None},
            {"kind": "Group", "sub": {"kind": "Group", "prefix": ""}, "suspend": False},
        ),
        (
            {"kind": "User", "sub": {"prefix": "p"}},
            {"kind": "User", "sub": {"kind": "Group", "prefix": "p"}, "suspend": False},
        ),
        ({"note": None}, {"kind": "Group", "sub": {"kind": "Group", "prefix": ""}, "suspend": False}),
    ],
)
def test_defaults_fill_absent_and_null_fields(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    sub = _props(kind={"type": "string", "default": "Group"}, prefix={"type": "string", "default": ""})
    schema = _root(
        _props(
            kind={"type": "string", "default": "Group"},
            sub={**sub, "default": {}},
            suspend={"type": "boolean", "default": False},
            note={"type": "string"},
        )
    )
    pruned, errors = validate_object(schema, _object(spec))
    assert errors == []
    assert pruned["spec"] == expected


def test_nullable_fields_keep_their_null() -> None:
    schema = _root(_props(n={"type": "string", "nullable": True}))
    pruned, errors = validate_object(schema, _object({"n": None}))
    assert (errors, pruned["spec"]) == ([], {"n": None})


def test_null_list_items_are_type_errors() -> None:
    assert reasons(_props(l={"type": "array", "items": {"type": "string"}}), {"l": [None]}) == [
        ("spec.l[0]", "FieldValueTypeInvalid"),
        ("<nil>", "FieldValueInvalid"),
    ]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2026-11-28T10:00:00Z", "2026-11-28"),
        ("date", "2026-11-28", "28/11/2026"),
        ("uuid", "6F1C2F0E-8E4B-4A8E-9D4C-1B2A3C4D5E6F", "6f1c2f0e"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "fe80::1", "10.0.0.1"),
        ("cidr", "10.0.0.0/8", "10.0.0.0"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("hostname", "api.example.com", "-bad-.example"),
        ("duration", "1h30m", "an hour"),
    ],
)
def test_formats_the_api_server_checks(fmt: str, good: str, bad: str) -> None:
    schema = _props(v={"type": "string", "format": fmt})
    assert causes(schema, {"v": good}) == []
    assert reasons(schema, {"v": bad})[0] == ("spec.v", "FieldValueTypeInvalid")


def test_unknown_formats_and_int_formats_are_accepted() -> None:
    schema = _props(v={"type": "string", "format": "something-new"}, n={"type": "integer", "format": "int64"})
    assert causes(schema, {"v": "whatever", "n": 3}) == []


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),
        ("^[$]+$", "$$", True),
        (r"^\$x$", "$x", True),
        ("b", "abc", True),
    ],
)
def test_patterns_mean_what_they_mean_to_go(pattern: str, value: str, matches: bool) -> None:
    # RE2's `$` is the end of the text; Python's also matches before a final newline.
    assert (causes(_props(s={"type": "string", "pattern": pattern}), {"s": value}) == []) is matches
