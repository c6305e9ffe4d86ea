"""Time-bound grants (issue 11; docs/design.md, Time-bound grants): the pure windows of
`core.windows` and the reconciler against the in-memory fakes with a clock that moves only when
told. Real expiry on a real API server is in tests/e2e/test_time_bound.py; precision is measured
in bench/test_bench_time_bound.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entra_rbac.core.models import EntraGroupBindingSpec, GrantState
from entra_rbac.core.naming import BindingKey
from entra_rbac.core.windows import (
    Window,
    all_expired,
    binding_expiry,
    grant_entries,
    grants_of,
    lapsed_keys,
    next_expiry,
    next_transition,
    transitions,
)
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.reconciler import Policy, sweep_expired
from tests.unit.reconcile_fakes import START, World, guid

G1 = guid(1)
VIEW = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:view")
ADMIN = BindingKey.of("ClusterRoleBinding", None, "egb:team:clusterrole:admin")
GRANT_EVENTS = ("GrantStarted", "GrantExpired")
PAYMENTS_EDIT = BindingKey.of("RoleBinding", "payments", "egb:team:clusterrole:edit")


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def spec(*grants: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"groups": [{"id": G1}], "clusterRoleBindings": list(grants), **extra}


def parsed(raw: dict[str, Any]) -> EntraGroupBindingSpec:
    return EntraGroupBindingSpec.model_validate(raw)


# --- the pure windows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "minutes", "state"),
    [
        (Window(moment(10), moment(20)), 9.99, GrantState.PENDING),
        (Window(moment(10), moment(20)), 10, GrantState.ACTIVE),  # validFrom is inclusive
        (Window(moment(10), moment(20)), 19.99, GrantState.ACTIVE),
        (Window(moment(10), moment(20)), 20, GrantState.EXPIRED),  # validUntil is exclusive
        (Window(None, moment(20)), -1000, GrantState.ACTIVE),
        (Window(moment(10), None), 1e6, GrantState.ACTIVE),
        (Window(moment(20), moment(10)), 5, GrantState.PENDING),  # never opens...
        (Window(moment(20), moment(10)), 15, GrantState.EXPIRED),  # ...and is over from its end
    ],
)
def test_a_window_is_pending_then_active_from_its_start_and_expired_from_its_end(
    window: Window, minutes: float, state: GrantState
) -> None:
    assert window.state(moment(minutes)) is state


def test_an_entry_narrows_the_resources_window_and_never_widens_it() -> None:
    raw = spec(
        {"clusterRole": "view", "validFrom": at(-60), "validUntil": at(60)},
        {"clusterRole": "edit", "validFrom": at(10)},
        {"clusterRole": "admin"},
        validFrom=at(0),
        validUntil=at(30),
    )
    windows = [g.window for g in grants_of(parsed(raw))]
    assert windows == [
        Window(moment(0), moment(30)),
        Window(moment(10), moment(30)),
        Window(moment(0), moment(30)),
    ]


def test_the_schedule_names_the_next_start_or_end_and_the_next_expiry() -> None:
    raw = parsed(
        spec(
            {"clusterRole": "view", "validFrom": at(10), "validUntil": at(20)},
            {"clusterRole": "edit", "validUntil": at(5)},
            {"clusterRole": "admin"},
        )
    )
    assert [next_transition(raw, moment(m)) for m in (0, 5, 10, 20)] == [
        moment(5),
        moment(10),
        moment(20),
        None,
    ]
    assert [next_expiry(raw, moment(m)) for m in (0, 5, 19, 20)] == [moment(5), moment(20), moment(20), None]
    assert not all_expired(raw, moment(100))  # admin has no end
    finished = parsed(spec({"clusterRole": "view", "validUntil": at(5)}, validUntil=at(10)))
    assert (all_expired(finished, moment(4)), all_expired(finished, moment(5))) == (False, True)


def test_status_lists_each_time_bound_grant_with_its_window_and_state() -> None:
    raw = parsed(
        {
            "groups": [{"id": G1}],
            "clusterRoleBindings": [{"clusterRole": "view", "validUntil": at(20)}, {"clusterRole": "admin"}],
            "roleBindings": [
                {
                    "clusterRole": "edit",
                    "namespaces": ["payments"],
                    "namespaceSelector": {"matchLabels": {"team": "payments"}},
                    "validFrom": "2026-11-28T11:30:00+01:00",  # 10:30 UTC
                }
            ],
        }
    )
    assert grant_entries(raw, moment(25)) == [
        {
            "grant": "spec.clusterRoleBindings[0]",
            "roleRef": "ClusterRole/view",
            "scope": "cluster-wide",
            "validUntil": "2026-11-28T10:20:00Z",
            "state": "Expired",
        },
        {
            "grant": "spec.roleBindings[0]",
            "roleRef": "ClusterRole/edit",
            "scope": "namespaces payments; namespaces selected by team=payments",
            "validFrom": "2026-11-28T10:30:00Z",
            "state": "Pending",
        },
    ]


def test_lapsed_bindings_are_those_only_inactive_grants_stand_behind() -> None:
    raw = parsed(
        {
            "groups": [{"id": G1}],
            "clusterRoleBindings": [{"clusterRole": "view", "validUntil": at(10)}, {"clusterRole": "admin"}],
            "roleBindings": [
                {"clusterRole": "edit", "namespaces": ["payments"], "validUntil": at(10)},
                {"clusterRole": "edit", "namespaces": ["billing"]},
            ],
        }
    )
    billing_edit = BindingKey.of("RoleBinding", "billing", "egb:team:clusterrole:edit")
    keys = [VIEW, ADMIN, PAYMENTS_EDIT, billing_edit]
    assert lapsed_keys(raw, "team", moment(9), keys) == frozenset()
    assert lapsed_keys(raw, "team", moment(10), keys) == {VIEW, PAYMENTS_EDIT}
    # An active selector may stand behind any namespace: kept until a verified sync decides.
    raw = parsed(
        {
            "groups": [{"id": G1}],
            "roleBindings": [
                {"clusterRole": "edit", "namespaces": ["payments"], "validUntil": at(10)},
                {"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "x"}}},
            ],
        }
    )
    assert lapsed_keys(raw, "team", moment(10), [PAYMENTS_EDIT]) == frozenset()


def test_a_binding_expires_when_the_last_active_grant_behind_it_ends() -> None:
    grants = grants_of(
        parsed(
            {
                "groups": [{"id": G1}],
                "clusterRoleBindings": [
                    {"clusterRole": "view", "validUntil": at(10)},
                    {"clusterRole": "admin"},
                ],
                "roleBindings": [
                    {"clusterRole": "edit", "namespaces": ["payments"], "validUntil": at(10)},
                    {"clusterRole": "edit", "namespaces": ["payments"], "validUntil": at(30)},
                    {
                        "clusterRole": "edit",
                        "namespaces": ["payments"],
                        "validFrom": at(40),
                        "validUntil": at(50),
                    },
                ],
            }
        )
    )
    assert binding_expiry(grants, "team", VIEW, moment(5)) == moment(10)
    assert binding_expiry(grants, "team", ADMIN, moment(5)) is None  # open-ended
    # Two active grants stand behind it: it lasts as long as the later; a pending one does not count.
    assert binding_expiry(grants, "team", PAYMENTS_EDIT, moment(5)) == moment(30)
    assert binding_expiry(grants, "team", PAYMENTS_EDIT, moment(20)) == moment(30)
    # Its time over, the removal still to come: the latest end of those that could have written it.
    assert binding_expiry(grants, "team", VIEW, moment(15)) == moment(10)
    # Nothing of this resource writes it.
    other = BindingKey.of("RoleBinding", "billing", "egb:team:clusterrole:edit")
    assert binding_expiry(grants, "team", other, moment(5)) is None


def test_a_transition_is_a_grant_that_became_active_or_expired() -> None:
    entries = [{"grant": "spec.clusterRoleBindings[0]", "roleRef": "ClusterRole/view", "state": "Active"}]
    assert [t.verb for t in transitions(None, entries)] == ["Started"]
    assert transitions(entries, entries) == ()
    expired = [{**entries[0], "state": "Expired"}]
    assert [(t.before, t.verb) for t in transitions(entries, expired)] == [("Active", "Expired")]
    assert transitions(None, [{**entries[0], "state": "Pending"}]) == ()


# --- the reconciler with a clock that moves only when told ---------------------------------


async def world_with(raw: dict[str, Any], *members: str, policy: Policy | None = None) -> World:
    world = World(policy=policy or Policy())
    world.directory.add_group(G1, *members)
    world.apply(raw)
    await world.reconcile()
    return world


async def test_a_grant_is_bound_from_valid_from_and_removed_at_valid_until() -> None:
    world = await world_with(spec({"clusterRole": "view", "validFrom": at(10), "validUntil": at(20)}))
    assert world.kube.owned_keys() == []
    assert world.status["grants"][0]["state"] == "Pending"
    assert world.condition()["reason"] == "Reconciled"
    outcome = await world.reconcile()
    assert outcome.next_change == moment(10)  # what the scheduler wakes it for
    world.clock.now = moment(10)
    outcome = await world.reconcile()
    assert world.kube.owned_keys() == [VIEW]
    assert (world.status["grants"][0]["state"], world.status["nextExpiry"]) == ("Active", at(20))
    assert outcome.next_change == moment(20)
    world.clock.now = moment(20)
    outcome = await world.reconcile()
    assert world.kube.owned_keys() == []
    assert world.status["grants"][0]["state"] == "Expired"
    assert (world.condition()["status"], world.condition()["reason"]) == ("True", "Expired")
    assert "nextExpiry" not in world.status or world.status["nextExpiry"] is None
    assert outcome.next_change is None
    assert outcome.settled


async def test_a_finished_resource_is_ready_expired_without_reading_entra() -> None:
    world = await world_with(spec({"clusterRole": "view", "validUntil": at(20)}))
    world.clock.now = moment(30)
    world.directory.failure = DirectoryUnavailableError("Graph is down")
    lookups = world.directory.lookups
    outcome = await world.reconcile()
    assert (outcome.reason, outcome.settled) == ("Expired", True)
    assert world.directory.lookups == lookups
    assert world.kube.owned_keys() == []
    assert "every grant has ended (the last at 2026-11-28T10:20:00Z)" in world.condition()["message"]


async def test_a_directory_outage_keeps_unexpired_grants_and_still_removes_expired_ones() -> None:
    world = await world_with(
        spec({"clusterRole": "view", "validUntil": at(20)}, {"clusterRole": "admin"}),
    )
    assert world.kube.owned_keys() == [ADMIN, VIEW]
    world.directory.failure = DirectoryUnavailableError("Graph is down")
    world.clock.now = moment(20)
    outcome = await world.reconcile()
    assert outcome.reason == "DirectoryUnavailable"
    assert world.kube.owned_keys() == [ADMIN]
    assert world.status["grants"][0]["state"] == "Expired"
    reasons = [e["reason"] for e in world.kube.events]
    assert {"Revoked", "GrantExpired"} <= set(reasons), reasons  # the delete's audit, and the expiry's


async def test_the_mass_revocation_guard_never_holds_back_an_expiry() -> None:
    people = [f"u{i}" for i in range(10)]
    raw = {
        "groups": [{"id": G1}],
        "subjects": {"kind": "User"},
        "clusterRoleBindings": [{"clusterRole": "view", "validUntil": at(20)}],
    }
    world = await world_with(raw, *people)
    assert len(world.subjects(VIEW)) == 10
    world.clock.now = moment(20)
    outcome = await world.reconcile()
    assert world.kube.owned_keys() == []
    assert outcome.reason == "Expired"
    # Expiry beside a directory change that the guard does hold: the expiry still happens.
    raw = {
        **raw,
        "clusterRoleBindings": [{"clusterRole": "view", "validUntil": at(40)}, {"clusterRole": "admin"}],
    }
    world = await world_with(raw, *people)
    world.directory.add_group(G1, "newcomer")  # ten leave, one joins: a mass revocation, held
    world.clock.now = moment(40)
    outcome = await world.reconcile()
    assert outcome.reason == "RevocationHeld"
    assert world.kube.owned_keys() == [ADMIN], "view must expire although the guard holds admin's removals"
    assert len(world.subjects(ADMIN)) == 10, "the held change itself is not applied"


async def test_a_suspended_resource_keeps_its_bindings_but_not_past_their_time() -> None:
    world = await world_with(spec({"clusterRole": "view", "validUntil": at(20)}, {"clusterRole": "admin"}))
    world.apply({**world.kube.resources["team"]["spec"], "suspend": True})
    world.clock.now = moment(20)
    await world.reconcile()
    assert world.kube.owned_keys() == [ADMIN]


async def test_starts_and_expiries_are_audited_with_a_log_line_and_an_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = await world_with(spec({"clusterRole": "view", "validFrom": at(10), "validUntil": at(20)}))
    caplog.set_level("INFO", logger="entra_rbac.reconcile")
    for minutes in (10, 15, 20):
        world.clock.now = moment(minutes)
        await world.reconcile()
    grant_events = [e for e in world.kube.events if e["reason"] in GRANT_EVENTS]
    assert [e["reason"] for e in grant_events] == ["GrantStarted", "GrantExpired"]
    assert grant_events[0]["message"] == (
        f"Grant spec.clusterRoleBindings[0] started: ClusterRole/view cluster-wide for Entra groups id={G1} "
        "(window 2026-11-28T10:10:00Z..2026-11-28T10:20:00Z)"
    )
    logged = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" grant")]
    assert logged == ["Started grant", "Expired grant"]


async def test_a_grant_whose_window_opened_during_an_outage_starts_with_the_next_good_read() -> None:
    world = await world_with(spec({"clusterRole": "view", "validFrom": at(10)}))
    world.directory.failure = DirectoryUnavailableError("Graph is down")
    world.clock.now = moment(10)
    await world.reconcile()
    assert world.kube.owned_keys() == []
    assert world.status["grants"][0]["state"] == "Pending", "no binding yet: not reported Active"
    world.directory.failure = None
    await world.reconcile()
    assert world.kube.owned_keys() == [VIEW]
    assert [e["reason"] for e in world.kube.events if e["reason"] in GRANT_EVENTS] == ["GrantStarted"]


async def test_start_up_revokes_what_expired_while_the_operator_was_down_before_any_reconcile() -> None:
    world = await world_with(spec({"clusterRole": "view", "validUntil": at(20)}, {"clusterRole": "admin"}))
    world.clock.now = moment(25)
    world.directory.failure = DirectoryUnavailableError("Entra is not needed for this")
    restarted = world.new_context()
    deleted = await sweep_expired(list(world.kube.resources.values()), restarted)
    assert deleted == 1
    assert world.kube.owned_keys() == [ADMIN]
    assert world.directory.lookups == 1  # only the first reconcile's


async def test_metrics_count_active_time_bound_grants_and_the_seconds_to_the_next_expiry() -> None:
    world = await world_with(
        spec({"clusterRole": "view", "validUntil": at(20)}, {"clusterRole": "admin", "validUntil": at(30)})
    )
    world.metrics._wall_clock = world.clock
    sample = world.metrics.registry.get_sample_value
    assert sample("entra_rbac_time_bound_grants_active") == 2
    world.clock.now = moment(5)
    assert sample("entra_rbac_time_bound_next_expiry_seconds") == 15 * 60
    world.clock.now = moment(20)
    await world.reconcile()
    assert sample("entra_rbac_time_bound_grants_active") == 1
    assert sample("entra_rbac_time_bound_next_expiry_seconds") == 10 * 60
    await world.reconcile(deletion=True)
    assert sample("entra_rbac_time_bound_next_expiry_seconds") == float("inf")


def test_models_refuse_bad_windows_naming_the_field() -> None:
    from pydantic import ValidationError

    from entra_rbac.core.problems import invalid_spec_problems

    def problems(raw: dict[str, Any]) -> list[str]:
        with pytest.raises(ValidationError) as raised:
            parsed(raw)
        return [p.text() for p in invalid_spec_problems(raised.value)]

    assert problems(spec({"clusterRole": "view", "validFrom": at(10), "validUntil": at(10)})) == [
        "spec.clusterRoleBindings[0].validUntil: must be after validFrom"
    ]
    [zoneless] = problems(spec({"clusterRole": "view", "validUntil": "2026-12-01T18:00:00"}))
    assert zoneless.startswith(
        "spec.clusterRoleBindings[0].validUntil: '2026-12-01T18:00:00' is not an RFC 3339"
    )
    assert problems(spec({"clusterRole": "view"}, validUntil="2026-02-30T18:00:00Z"))[0].startswith(
        "spec.validUntil: '2026-02-30T18:00:00Z' is not a valid time"
    )
    assert parsed(
        spec({"clusterRole": "view"}, validFrom="2026-12-01T18:00:00.5+01:00")
    ).valid_from == datetime(2026, 12, 1, 17, 0, 0, 500000, tzinfo=UTC)


# --- the break-glass guardrail (point 5), as the reconcile re-checks it ---------------------


def test_the_guardrail_bounds_the_window_of_break_glass_roles() -> None:
    from entra_rbac.core.guardrails import ClusterView, Guardrails, GuardrailsError, check_guardrails

    rails = Guardrails.from_data(
        {
            "ENTRA_RBAC_ALLOWED_CLUSTER_ROLES": "*",
            "ENTRA_RBAC_PRIVILEGED_ROLES": "admin",
            "ENTRA_RBAC_MAX_WINDOW_ROLES": "admin",
            "ENTRA_RBAC_MAX_WINDOW": "4h",
        },
        source="Guardrails g",
    )

    def verdict(*grants: dict[str, Any], **extra: Any) -> list[str]:
        return [p.text() for p in check_guardrails(parsed(spec(*grants, **extra)), rails, ClusterView())]

    why = (
        "ClusterRole admin may only be granted for at most 4h: set validFrom and validUntil (on the grant "
        "or the spec) at most that far apart (ENTRA_RBAC_MAX_WINDOW_ROLES in Guardrails g)"
    )
    assert verdict({"clusterRole": "admin"}) == [f"spec.clusterRoleBindings[0]: {why}"]
    assert verdict({"clusterRole": "admin", "validUntil": at(60)}) == [f"spec.clusterRoleBindings[0]: {why}"]
    assert verdict({"clusterRole": "admin", "validFrom": at(0), "validUntil": at(241)}) != []
    assert verdict({"clusterRole": "admin", "validFrom": at(0), "validUntil": at(240)}) == []
    # Five hours on the grant, narrowed to four by the spec: the effective window counts.
    assert (
        verdict({"clusterRole": "admin", "validFrom": at(-60), "validUntil": at(240)}, validFrom=at(0)) == []
    )
    assert verdict({"clusterRole": "view"}) == []
    with pytest.raises(GuardrailsError, match="ENTRA_RBAC_MAX_WINDOW: 'four hours' is not a duration"):
        Guardrails.from_data({"ENTRA_RBAC_MAX_WINDOW": "four hours"}, source="g")
