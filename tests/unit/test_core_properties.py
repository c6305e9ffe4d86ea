"""Properties of the pure core, checked with hypothesis over generated specs and clusters.

Determinism; idempotence (apply a plan, plan again: nothing to do); no name collision between
two resources, even with ':' in role names; every generated name and label valid; foreign
objects never in a write.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entra_rbac.core.desired import AllowedRoles, NamespaceInfo, Owner, compute_desired
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.naming import binding_name, is_valid_binding_name, is_valid_label_value, label_value
from entra_rbac.core.plan import ObservedBinding, Verb, make_plan
from entra_rbac.core.revocation import apply_plan, check_revocation, owned_subjects
from entra_rbac.core.subjects import Subject, build_subjects
from tests.unit.core_builders import G1, G2, G3, OTHER_UID, UID, resolved

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small alphabets make near-collisions (shared prefixes, ':' in different places) likely.
_resource_chars = st.text("ab.-", max_size=6).map(lambda s: f"a{s}a" if s else "a")
resources = st.one_of(_resource_chars, st.integers(200, 253).map(lambda n: ("ab" * 127)[:n]))
roles = st.one_of(
    st.text("a:b", min_size=1, max_size=12),
    st.text("a:é", min_size=240, max_size=253),
    st.sampled_from(["system:aggregate-to-edit", "view", "role", "clusterrole", "clusterrole:x"]),
).filter(lambda r: r not in (".", ".."))
role_kinds = st.sampled_from(["ClusterRole", "Role"])


@PROFILE
@given(resources, role_kinds, roles)
def test_every_binding_name_is_valid_and_readable_names_parse_back(
    resource: str, kind: str, role: str
) -> None:
    name = binding_name(resource, kind, role)  # type: ignore[arg-type]
    assert is_valid_binding_name(name)
    prefix, found_resource, token, found_role = name.split(":", 3)
    assert prefix == "egb"
    if token in ("clusterrole", "role"):  # unshortened: the name says exactly what it binds
        assert (found_resource, token, found_role) == (resource, kind.lower(), role)
    else:  # shortened: the kind token carries the hash, so it never equals an unshortened one
        assert token.startswith(f"{kind.lower()}-")


@PROFILE
@given(st.tuples(resources, role_kinds, roles), st.tuples(resources, role_kinds, roles))
def test_different_resources_or_roles_never_share_a_binding_name(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    if first != second:
        assert binding_name(*first) != binding_name(*second)  # type: ignore[arg-type]


@PROFILE
@given(st.text(max_size=100))
def test_every_label_value_is_valid(text: str) -> None:
    value = label_value(text)
    assert is_valid_label_value(value)
    assert label_value(value) == value


# --- generated specs and clusters ---------------------------------------------------------

NAMESPACES = ["a", "b", "c", "kube-system"]
ROLE_NAMES = ["view", "edit", "admin", "system:aggregate-to-edit", "cluster-admin"]


@st.composite
def specs(draw: st.DrawFn) -> EntraGroupBindingSpec:
    groups = draw(st.lists(st.sampled_from([G1, G2, G3]), min_size=1, max_size=3, unique=True))
    crbs = draw(st.lists(st.sampled_from(ROLE_NAMES), max_size=3, unique=True))
    rbs = []
    for _ in range(draw(st.integers(0 if crbs else 1, 3))):
        entry: dict[str, Any] = {
            draw(st.sampled_from(["clusterRole", "role"])): draw(st.sampled_from(ROLE_NAMES))
        }
        explicit = draw(st.lists(st.sampled_from([*NAMESPACES, "missing"]), max_size=3, unique=True))
        if explicit:
            entry["namespaces"] = explicit
        if not explicit or draw(st.booleans()):
            entry["namespaceSelector"] = {"matchLabels": {"team": draw(st.sampled_from(["x", "y"]))}}
        rbs.append(entry)
    return EntraGroupBindingSpec.model_validate(
        {
            "groups": [{"id": g} for g in groups],
            "clusterRoleBindings": [{"clusterRole": r} for r in crbs],
            "roleBindings": rbs,
        }
    )


namespace_lists = st.lists(
    st.builds(
        NamespaceInfo,
        st.sampled_from(NAMESPACES),
        st.sampled_from([{}, {"team": "x"}, {"team": "y"}]),
        st.booleans(),
    ),
    max_size=5,
    unique_by=lambda ns: ns.name,
)
group_sets = st.lists(st.sampled_from([G1, G2, G3]), max_size=3, unique=True)
ALLOWED = AllowedRoles(cluster_roles=frozenset(ROLE_NAMES) - {"cluster-admin"}, roles=None)


def desired(
    spec: EntraGroupBindingSpec, group_ids: list[str], nss: list[NamespaceInfo], name: str = "res"
) -> Any:
    subjects = build_subjects(spec.subjects, [resolved(g) for g in group_ids])
    uid = UID if name == "res" else OTHER_UID
    return compute_desired(Owner(name, uid), spec, subjects, nss, allowed_roles=ALLOWED)


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    """What the cluster may hold: an earlier state of this resource (hand-edited, partly deleted,
    partly stolen) and another resource's bindings, including some at our names."""
    earlier = desired(draw(specs()), draw(group_sets), [NamespaceInfo(n) for n in NAMESPACES])
    other = desired(draw(specs()), draw(group_sets), [NamespaceInfo(n) for n in NAMESPACES], "res")
    objects = [b.to_manifest() for b in earlier.bindings]
    for index, obj in enumerate(objects):
        obj["metadata"].update(uid=f"u{index}", resourceVersion=str(index))
        match draw(st.sampled_from(["keep", "drop", "subjects", "foreign", "unlabelled", "role"])):
            case "drop":
                obj["metadata"]["name"] = ""
            case "subjects":
                obj["subjects"] = [*obj["subjects"][:1], {"kind": "User", "name": "intruder"}]
            case "foreign":
                obj["metadata"]["ownerReferences"][0]["uid"] = OTHER_UID
            case "unlabelled":
                obj["metadata"]["labels"].clear()
            case "role":
                obj["roleRef"]["name"] = "edit-old"
    foreign = [b.to_manifest() for b in other.bindings]
    for obj in foreign:
        obj["metadata"]["ownerReferences"][0]["uid"] = OTHER_UID
    merged = {ObservedBinding.from_manifest(o).key: o for o in objects + foreign if o["metadata"]["name"]}
    return list(merged.values())


def is_foreign(obj: dict[str, Any]) -> bool:
    return not ObservedBinding.from_manifest(obj).owned_by(UID)


@PROFILE
@given(specs(), group_sets, namespace_lists, clusters())
def test_applying_a_plan_then_planning_again_gives_an_empty_plan(
    spec: EntraGroupBindingSpec, group_ids: list[str], nss: list[NamespaceInfo], actual: list[dict[str, Any]]
) -> None:
    want = desired(spec, group_ids, nss)
    plan = make_plan(want, actual, UID)
    after = apply_plan(actual, plan)
    again = make_plan(want, after, UID)
    assert again.actions == ()
    assert again.conflicts == plan.conflicts


@PROFILE
@given(specs(), group_sets, namespace_lists, clusters())
def test_foreign_objects_are_never_in_a_write(
    spec: EntraGroupBindingSpec, group_ids: list[str], nss: list[NamespaceInfo], actual: list[dict[str, Any]]
) -> None:
    foreign = {ObservedBinding.from_manifest(o).key: o for o in actual if is_foreign(o)}
    plan = make_plan(desired(spec, group_ids, nss), actual, UID)
    assert not {a.key for a in plan.actions} & set(foreign)
    verbs = [a.verb for a in plan.actions]
    assert verbs == sorted(verbs, key=list(Verb).index)  # every create before any delete
    after = {ObservedBinding.from_manifest(o).key: o for o in apply_plan(actual, plan)}
    assert all(after[key] == obj for key, obj in foreign.items())


@PROFILE
@given(specs(), group_sets, namespace_lists, clusters(), st.randoms(use_true_random=False))
def test_desired_and_plan_do_not_depend_on_input_order(
    spec: EntraGroupBindingSpec,
    group_ids: list[str],
    nss: list[NamespaceInfo],
    actual: list[dict[str, Any]],
    rng: random.Random,
) -> None:
    want = desired(spec, group_ids, nss)
    shuffled_nss, shuffled_actual, shuffled_groups = list(nss), copy.deepcopy(actual), list(group_ids)
    for items in (shuffled_nss, shuffled_actual, shuffled_groups):
        rng.shuffle(items)
    assert desired(spec, shuffled_groups, shuffled_nss) == want
    assert make_plan(want, shuffled_actual, UID) == make_plan(want, actual, UID)


@PROFILE
@given(specs(), group_sets, namespace_lists)
def test_generated_bindings_are_valid_and_creates_come_before_deletes(
    spec: EntraGroupBindingSpec, group_ids: list[str], nss: list[NamespaceInfo]
) -> None:
    want = desired(spec, group_ids, nss)
    for binding in want.bindings:
        assert is_valid_binding_name(binding.name)
        assert all(is_valid_label_value(v) for v in binding.labels.values())
        assert binding.namespace not in want.frozen_namespaces
        assert list(binding.subjects) == sorted(set(binding.subjects))
        assert ALLOWED.allows(binding.role_ref.kind, binding.role_ref.name)
    verbs = [a.verb for a in make_plan(want, [], UID).actions]
    assert verbs == [Verb.CREATE] * len(want.bindings)


@PROFILE
@given(specs(), group_sets, namespace_lists, clusters())
def test_the_guard_counts_exactly_the_subjects_every_place_grants_that_lose_every_binding(
    spec: EntraGroupBindingSpec, group_ids: list[str], nss: list[NamespaceInfo], actual: list[dict[str, Any]]
) -> None:
    """docs/design.md, Ownership: a subject only some places grant is not weighed as a removal."""
    plan = make_plan(desired(spec, group_ids, nss), actual, UID)
    before = owned_subjects(actual, UID)
    after = owned_subjects(apply_plan(actual, plan), UID)
    check = check_revocation(actual, plan, UID)
    places: dict[tuple[Any, ...], set[Subject]] = {}
    for obj in actual:
        observed = ObservedBinding.from_manifest(obj)
        if observed.owned_by(UID):
            places.setdefault((observed.kind, observed.namespace, observed.role_ref), set()).update(
                observed.subjects
            )
    everywhere = set.intersection(*places.values()) if places else set()
    assert set(check.removed) == everywhere - after
    assert set(check.removed) <= before - after
    assert check.current == len(before)


@PROFILE
@given(
    st.tuples(resources, resources).filter(lambda pair: pair[0] != pair[1]),
    st.lists(roles, min_size=1, max_size=3, unique=True),
    st.lists(roles, min_size=1, max_size=3, unique=True),
)
def test_two_resources_never_want_a_binding_of_the_same_name(
    names: tuple[str, str], first_roles: list[str], second_roles: list[str]
) -> None:
    namespaces_ = [NamespaceInfo("a")]
    wanted = []
    for name, uid, role_names in ((names[0], UID, first_roles), (names[1], OTHER_UID, second_roles)):
        spec = EntraGroupBindingSpec.model_validate(
            {
                "groups": [{"id": G1}],
                "clusterRoleBindings": [{"clusterRole": r} for r in role_names],
                "roleBindings": [{"role": r, "namespaces": ["a"]} for r in role_names],
            }
        )
        subjects = build_subjects(spec.subjects, [resolved(G1)])
        state = compute_desired(Owner(name, uid), spec, subjects, namespaces_)
        for binding in state.bindings:
            assert is_valid_binding_name(binding.name)
            assert all(is_valid_label_value(v) for v in binding.labels.values())
        wanted.append({b.key for b in state.bindings})
    assert len(wanted[0]) == 2 * len(first_roles)  # distinct roles never share a name either
    assert not wanted[0] & wanted[1]
