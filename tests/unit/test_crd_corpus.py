"""The CRD and the pydantic models give the same verdict on every spec of a corpus, and both
name the offending field.

The CRD side is what a real API server does with `kubectl apply` (strict field validation):
the structural schema and its CEL rules, through the sandbox's crd_validation, and unknown
fields refused. The model side is `EntraGroupBindingSpec.model_validate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import invalid_spec_problems
from entra_rbac_sandbox.kube.crd_validation import unknown_fields, validate_object

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "entragroupbindings.yaml").read_text())
SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
GUID = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
VIEW = [{"clusterRole": "view"}]


def _guid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def _selector(**selector: Any) -> list[dict[str, Any]]:
    return [{"clusterRole": "view", "namespaceSelector": selector}]


def _generated() -> list[dict[str, Any]]:
    """Size boundaries: the largest valid list or string, and one more."""
    cases = []
    sizes: list[tuple[str, int, Any, str]] = [
        (
            "groups",
            100,
            lambda n: {"groups": [{"id": _guid(i)} for i in range(n)], "clusterRoleBindings": VIEW},
            "spec.groups",
        ),
        (
            "cluster role bindings",
            50,
            lambda n: {
                "groups": [{"id": GUID}],
                "clusterRoleBindings": [{"clusterRole": f"r{i}"} for i in range(n)],
            },
            "spec.clusterRoleBindings",
        ),
        (
            "role bindings",
            50,
            lambda n: {
                "groups": [{"id": GUID}],
                "roleBindings": [{"clusterRole": "view", "namespaces": ["a"]}] * n,
            },
            "spec.roleBindings",
        ),
        (
            "namespaces",
            256,
            lambda n: {
                "groups": [{"id": GUID}],
                "roleBindings": [{"role": "r", "namespaces": [f"ns{i}" for i in range(n)]}],
            },
            "spec.roleBindings[0].namespaces",
        ),
        (
            "display name length",
            256,
            lambda n: {"groups": [{"displayName": "x" * n}], "clusterRoleBindings": VIEW},
            "spec.groups[0].displayName",
        ),
        (
            "mail nickname length",
            64,
            lambda n: {"groups": [{"mailNickname": "x" * n}], "clusterRoleBindings": VIEW},
            "spec.groups[0].mailNickname",
        ),
        (
            "selector labels",
            32,
            lambda n: {
                "groups": [{"id": GUID}],
                "roleBindings": _selector(matchLabels={f"k{i}": "v" for i in range(n)}),
            },
            "spec.roleBindings[0].namespaceSelector.matchLabels",
        ),
        (
            "selector expressions",
            32,
            lambda n: {
                "groups": [{"id": GUID}],
                "roleBindings": _selector(
                    matchExpressions=[{"key": f"k{i}", "operator": "Exists"} for i in range(n)]
                ),
            },
            "spec.roleBindings[0].namespaceSelector.matchExpressions",
        ),
        (
            "selector values",
            64,
            lambda n: {
                "groups": [{"id": GUID}],
                "roleBindings": _selector(
                    matchExpressions=[{"key": "k", "operator": "In", "values": [f"v{i}" for i in range(n)]}]
                ),
            },
            "spec.roleBindings[0].namespaceSelector.matchExpressions[0].values",
        ),
        (
            "group prefix length",
            63,
            lambda n: {
                "groups": [{"id": GUID}],
                "subjects": {"groupPrefix": "p" * n},
                "clusterRoleBindings": VIEW,
            },
            "spec.subjects.groupPrefix",
        ),
    ]
    for what, limit, build, path in sizes:
        cases.append({"name": f"{what}: {limit} is the most", "valid": True, "spec": build(limit)})
        cases.append({"name": f"{what}: {limit + 1} is too many", "path": path, "spec": build(limit + 1)})
    return cases


CORPUS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "crd_corpus" / "specs.yaml").read_text()
)
CASES = CORPUS + _generated()


def crd_errors(spec: Any) -> list[tuple[str, str]]:
    """(field, message) for every cause the API server would give, unknown fields included."""
    obj = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "x"},
        "spec": spec,
    }
    _, errors = validate_object(SCHEMA, obj)
    causes = [(e.field, e.full()) for e in errors if e.field != "<nil>"]
    return causes + [(path, f'{path}: unknown field "{path}"') for path in unknown_fields(SCHEMA, obj)]


def model_errors(spec: Any) -> list[tuple[str, str]]:
    try:
        EntraGroupBindingSpec.model_validate(spec)
    except ValidationError as error:
        return [(problem.field, problem.text()) for problem in invalid_spec_problems(error)]
    return []


def _names(path: str, causes: list[tuple[str, str]]) -> bool:
    # A duplicate list item is named by its index in the CRD (`namespaces[1]`), by the list in pydantic.
    return any(field == path or field.startswith(path + "[") for field, _ in causes)


def test_the_corpus_is_large_enough_and_has_both_verdicts() -> None:
    valid = [c for c in CASES if c.get("valid")]
    assert len(CASES) >= 40
    assert len(valid) >= 15
    assert len(CASES) - len(valid) >= 25
    assert len({c["name"] for c in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_crd_and_models_agree(case: dict[str, Any]) -> None:
    from_crd, from_models = crd_errors(case["spec"]), model_errors(case["spec"])
    if case.get("valid"):
        assert from_crd == [], from_crd
        assert from_models == [], from_models
        return
    assert from_crd, "the CRD accepted an invalid spec"
    assert from_models, "the models accepted an invalid spec"
    assert _names(case["path"], from_crd), from_crd
    assert _names(case["path"], from_models), from_models


@pytest.mark.parametrize("case", [c for c in CASES if not c.get("valid")], ids=lambda c: c["name"])
def test_every_error_message_names_the_field_and_what_is_wrong(case: dict[str, Any]) -> None:
    for field, message in crd_errors(case["spec"]) + model_errors(case["spec"]):
        assert message.startswith(f"{field}: "), message
        assert len(message) > len(field) + 10, f"says nothing of what is wrong: {message}"


# The CRD itself: what a real API server requires before it accepts it ---------------------------


def _nodes(
    schema: dict[str, Any], path: str = "", ancestors: tuple[dict[str, Any], ...] = ()
) -> Iterator[tuple[str, dict[str, Any], tuple[dict[str, Any], ...]]]:
    yield path, schema, ancestors
    for name, child in (schema.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.{name}", (*ancestors, schema))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}.*", (*ancestors, schema))
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]", (*ancestors, schema))


NODES = list(_nodes(SCHEMA))


def test_the_schema_is_structural() -> None:
    for path, node, _ in NODES:
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert node.get("type") or untyped_ok, f"{path}: every node needs a type"
        assert not (node.get("properties") and "additionalProperties" in node), (
            f"{path}: properties or additionalProperties"
        )
        assert set(node.get("required") or []) <= set(node.get("properties") or {}), (
            f"{path}: required names a missing field"
        )
        if path == ".metadata":
            assert node == {"type": "object"}, "metadata may only be typed (or restrict name/generateName)"
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required") or [])


def _bounded(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "array":
        return "maxItems" in node
    if kind == "string":
        return "maxLength" in node  # the cost estimator does not read enum
    if kind == "object" and "additionalProperties" in node:
        return "maxProperties" in node
    return True


def test_every_list_string_and_map_a_cel_rule_touches_is_bounded() -> None:
    # The API server estimates each rule's worst-case cost from these bounds and refuses a CRD
    # whose rules could cost too much; unbounded lists above a rule multiply its cost too.
    # has(self.x) costs the same whatever x holds.
    ruled = [(p, n, a) for p, n, a in NODES if n.get("x-kubernetes-validations")]
    assert len(ruled) >= 6
    for path, node, ancestors in ruled:
        for rule in node["x-kubernetes-validations"]:
            touched = [node] + [
                child
                for name, child in (node.get("properties") or {}).items()
                if re.search(rf"(?<!has\()\bself\.{name}\b", rule["rule"])
            ]
            for schema in touched + [a for a in ancestors if a.get("type") == "array"]:
                assert _bounded(schema), f"{path}: rule {rule['rule']!r} touches an unbounded value"


def test_every_cel_rule_compiles() -> None:
    environment = celpy.Environment()
    for _, node, _ in NODES:
        for rule in node.get("x-kubernetes-validations") or []:
            environment.compile(rule["rule"])


def test_every_default_is_valid_for_its_own_schema() -> None:
    for path, node, _ in NODES:
        if "default" in node:
            _, errors = validate_object({"type": "object", "properties": {"v": node}}, {"v": node["default"]})
            assert [e.full() for e in errors] == [], path


def test_names_subresources_and_printer_columns() -> None:
    spec = CRD["spec"]
    version = spec["versions"][0]
    assert (spec["scope"], spec["names"]["shortNames"], spec["names"]["categories"]) == (
        "Cluster",
        ["egb"],
        ["entra"],
    )
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [n for n, c in columns.items() if not c.get("priority")] == [
        "Ready",
        "Groups",
        "Bindings",
        "Subjects",
        "Age",
        "Expires",
    ]
    assert columns["Message"]["priority"] == 1
    known = {p for p, _, _ in NODES}
    for column in columns.values():
        field = re.sub(r"\[\?\(.*\)\]", "[]", column["jsonPath"])
        assert field in known or field.startswith(".metadata."), (
            f"{column['name']}: {field} is not in the schema"
        )


# Fuzzing: specs assembled from valid and invalid pieces get the same verdict from both ---------

_OPTIONAL = st.just(None)  # None: the field is left out
_strings = st.sampled_from(
    ["", "a", "Payments Developers", "payments-devs", "UPPER", "a b", "a/b", "system:x", "x" * 64, "é"]
)
_group = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from([GUID, GUID.upper(), "x", _guid(7)]),
        "displayName": _strings,
        "mailNickname": _strings,
    },
)
_requirement = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["team", "example.com/team", "-bad", ""]),
        "operator": st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Equals"]),
    },
    optional={"values": st.lists(st.sampled_from(["a", "", "b c", "prod"]), max_size=3)},
)
_selector_strategy = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(
            st.sampled_from(["team", "tier"]), st.sampled_from(["a", "", "a b", "x" * 64]), max_size=2
        ),
        "matchExpressions": st.lists(_requirement, max_size=2),
    },
)
_role_binding = st.fixed_dictionaries(
    {},
    optional={
        "clusterRole": st.sampled_from(["edit", "", "a/b"]),
        "role": st.sampled_from(["deployer", "a%b"]),
        "namespaces": st.lists(st.sampled_from(["payments", "Payments", "a", "a"]), max_size=3),
        "namespaceSelector": _selector_strategy,
    },
)
_wild_spec = st.fixed_dictionaries(
    {},
    optional={
        "groups": st.lists(_group, max_size=3),
        "subjects": st.fixed_dictionaries(
            {},
            optional={
                "kind": st.sampled_from(["Group", "User", "user"]),
                "groupPrefix": _strings,
                "userPrefix": _strings,
            },
        ),
        "clusterRoleBindings": st.lists(
            st.fixed_dictionaries({}, optional={"clusterRole": st.sampled_from(["view", "view", "a/b"])}),
            max_size=2,
        ),
        "roleBindings": st.lists(_role_binding, max_size=2),
        "suspend": st.sampled_from([True, False, None, "yes", 0]),
    },
)
# Mostly valid: one valid group and target, then a few fields from the wild strategy on top.
_near_valid_spec = st.builds(
    lambda base, extra, keys: {**base, **{k: v for k, v in extra.items() if k in keys}},
    st.just({"groups": [{"id": GUID}], "clusterRoleBindings": [{"clusterRole": "view"}]}),
    _wild_spec,
    st.sets(
        st.sampled_from(["groups", "subjects", "clusterRoleBindings", "roleBindings", "suspend"]), max_size=2
    ),
)
_spec = st.one_of(_near_valid_spec, _wild_spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_spec)
def test_crd_and_models_agree_on_generated_specs(spec: dict[str, Any]) -> None:
    from_crd, from_models = crd_errors(spec), model_errors(spec)
    assert bool(from_crd) == bool(from_models), (from_crd, from_models)
