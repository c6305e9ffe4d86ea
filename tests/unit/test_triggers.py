"""The glue's routing: which resources a namespace or binding event concerns, and kopf's tuning."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from entra_rbac import handlers, triggers
from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL
from entra_rbac.reconciler import Outcome, Policy
from entra_rbac.reconciler.memory import ResourceMemory
from entra_rbac.settings import Freshness, Settings
from entra_rbac.triggers import NamespaceMemory, ResourceEntry, names_namespace
from entra_rbac.triggers.diffbase import canonical_json
from entra_rbac.triggers.peering import peers_in_charge

SETTINGS = Settings(
    tenant_id="contoso.onmicrosoft.com",
    client_id="6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f",
    credential="client-secret",
    client_secret="secret-value",
    refresh_interval="2m",
)


def entry(name: str, role_bindings: list[dict[str, Any]]) -> ResourceEntry:
    return ResourceEntry(name=name, uid=f"uid-{name}", spec={"roleBindings": role_bindings})


@dataclass
class FakeKube:
    own: set[tuple[str, str]] = field(default_factory=set)

    def is_own_write(self, uid: object, resource_version: object, *, deleted: bool = False) -> bool:
        return (str(uid), "deleted" if deleted else str(resource_version)) in self.own


@dataclass
class FakeMemo:
    kube: FakeKube = field(default_factory=FakeKube)
    namespaces: NamespaceMemory = field(default_factory=NamespaceMemory)
    ctx: Any = None
    clients: Any = None

    def __post_init__(self) -> None:
        self.ctx = type("Ctx", (), {"policy": Policy()})()
        self.clients = type("Clients", (), {"kube": self.kube})()


@pytest.fixture
def reconciled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, bool]]:
    """The reconciles the glue started: (name, deletion, fresh)."""
    calls: list[tuple[str, bool, bool]] = []

    async def fake(
        name: str, uid: str, ctx: Any, *, deletion: bool = False, fresh: bool = False, **_: Any
    ) -> Outcome:
        calls.append((name, deletion, fresh))
        if name == "broken":
            raise RuntimeError("boom")
        return Outcome("Reconciled")

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    return calls


@pytest.mark.parametrize(
    ("role_bindings", "namespace", "labels", "expected"),
    [
        ([{"clusterRole": "edit", "namespaces": ["payments"]}], "payments", {}, True),
        ([{"clusterRole": "edit", "namespaces": ["payments"]}], "billing", {}, False),
        (
            [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "a"}}}],
            "x",
            {"team": "a"},
            True,
        ),
        (
            [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "a"}}}],
            "x",
            {"team": "b"},
            False,
        ),
        (
            [
                {
                    "role": "r",
                    "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
                }
            ],
            "x",
            {"env": "prod"},
            True,
        ),
        ([{"clusterRole": "edit", "namespaceSelector": {"matchLabels": "not-a-map"}}], "x", {}, True),
        ([], "payments", {"team": "a"}, False),
    ],
)
def test_names_namespace_by_explicit_name_or_selector(
    role_bindings: list[dict[str, Any]], namespace: str, labels: dict[str, str], expected: bool
) -> None:
    assert names_namespace({"roleBindings": role_bindings}, namespace, [labels]) is expected


def index(*entries: ResourceEntry) -> dict[str, list[ResourceEntry]]:
    return {e.uid: [e] for e in entries}


def namespace(name: str, labels: dict[str, str] | None = None, *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T10:00:00Z"
    return {"metadata": meta, "status": {"phase": "Terminating" if deleting else "Active"}}


SELECTING = entry("selecting", [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"team": "a"}}}])
NAMING = entry("naming", [{"clusterRole": "edit", "namespaces": ["payments"]}])
UNRELATED = entry("unrelated", [{"clusterRole": "edit", "namespaces": ["other"]}])
RESOURCES = index(SELECTING, NAMING, UNRELATED)


async def test_initial_listing_of_namespaces_reconciles_nothing(reconciled: list[Any]) -> None:
    await triggers.namespace_changed(None, namespace("payments"), RESOURCES, {}, FakeMemo())
    assert reconciled == []


async def test_new_namespace_reconciles_the_resources_that_select_or_name_it(reconciled: list[Any]) -> None:
    await triggers.namespace_changed("ADDED", namespace("payments", {"team": "a"}), RESOURCES, {}, FakeMemo())
    assert sorted(name for name, _, _ in reconciled) == ["naming", "selecting"]


async def test_label_removed_reconciles_the_resource_that_selected_it_before(reconciled: list[Any]) -> None:
    memo = FakeMemo()
    await triggers.namespace_changed(None, namespace("x", {"team": "a"}), RESOURCES, {}, memo)
    await triggers.namespace_changed("MODIFIED", namespace("x", {}), RESOURCES, {}, memo)
    assert [name for name, _, _ in reconciled] == ["selecting"]


async def test_relisting_after_a_watch_reconnect_shows_changes_made_meanwhile(reconciled: list[Any]) -> None:
    memo = FakeMemo()
    await triggers.namespace_changed(None, namespace("x", {"team": "a"}), RESOURCES, {}, memo)
    await triggers.namespace_changed(None, namespace("x", {"team": "a"}), RESOURCES, {}, memo)
    assert reconciled == []
    await triggers.namespace_changed(None, namespace("x", {}), RESOURCES, {}, memo)
    assert [name for name, _, _ in reconciled] == ["selecting"]


async def test_unchanged_labels_reconcile_nothing(reconciled: list[Any]) -> None:
    memo = FakeMemo()
    await triggers.namespace_changed(None, namespace("x", {"team": "a"}), RESOURCES, {}, memo)
    await triggers.namespace_changed("MODIFIED", namespace("x", {"team": "a"}), RESOURCES, {}, memo)
    assert reconciled == []


async def test_terminating_namespace_reconciles_owners_of_bindings_in_it(reconciled: list[Any]) -> None:
    memo = FakeMemo()
    await triggers.namespace_changed(None, namespace("x"), RESOURCES, {}, memo)
    await triggers.namespace_changed(
        "MODIFIED", namespace("x", deleting=True), RESOURCES, {"x": ["uid-unrelated"]}, memo
    )
    assert [name for name, _, _ in reconciled] == ["unrelated"]


async def test_one_failing_reconcile_does_not_stop_the_others(reconciled: list[Any]) -> None:
    broken = entry("broken", [{"clusterRole": "edit", "namespaces": ["payments"]}])
    await triggers.namespace_changed("ADDED", namespace("payments"), index(broken, NAMING), {}, FakeMemo())
    assert sorted(name for name, _, _ in reconciled) == ["broken", "naming"]


def binding(event_uid: str = "b1", version: str = "7", owner: str = "uid-naming") -> dict[str, Any]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: owner}
    return {
        "kind": "RoleBinding",
        "metadata": {
            "name": "egb:naming:clusterrole:edit",
            "uid": event_uid,
            "resourceVersion": version,
            "labels": labels,
        },
    }


@pytest.mark.parametrize(
    ("event_type", "own", "expected"),
    [
        ("MODIFIED", set(), ["naming"]),  # someone edited it: heal
        ("DELETED", set(), ["naming"]),  # someone deleted it: heal
        (None, set(), []),  # initial listing: resume handles it
        ("MODIFIED", {("b1", "7")}, []),  # the echo of our own patch
        ("DELETED", {("b1", "deleted")}, []),  # the echo of our own delete
        ("MODIFIED", {("b1", "6")}, ["naming"]),  # changed again after our write
    ],
)
async def test_binding_events_reconcile_the_owner_unless_they_echo_our_own_write(
    reconciled: list[Any], event_type: str | None, own: set[tuple[str, str]], expected: list[str]
) -> None:
    memo = FakeMemo(kube=FakeKube(own=own))
    await triggers.binding_changed(event_type, binding(), RESOURCES, memo)
    assert [name for name, _, _ in reconciled] == expected


async def test_binding_of_an_unknown_owner_reconciles_nothing(reconciled: list[Any]) -> None:
    await triggers.binding_changed("DELETED", binding(owner="uid-gone"), RESOURCES, FakeMemo())
    assert reconciled == []


async def test_reconcile_body_passes_deletion_and_fresh(reconciled: list[Any]) -> None:
    body = {"metadata": {"name": "team", "uid": "u", "generation": 3}, "spec": {}}
    await triggers.reconcile_body(body, FakeMemo(), fresh=True)
    await triggers.reconcile_body(body, FakeMemo(), deletion=True)
    assert reconciled == [("team", False, True), ("team", True, False)]


def test_first_refresh_is_spread_over_the_second_half_of_the_interval() -> None:
    delays = {triggers.first_refresh_delay(f"uid-{i}", 300) for i in range(200)}
    assert all(150 <= d < 300 for d in delays)
    assert len(delays) > 100
    assert triggers.first_refresh_delay("same", 300) == triggers.first_refresh_delay("same", 300)


@pytest.mark.parametrize("standalone", [False, True])
def test_kopf_is_tuned_under_our_api_group(standalone: bool) -> None:
    operator = kopf.OperatorSettings()
    triggers.tune_kopf(
        operator,
        SETTINGS.model_copy(
            update={
                "peering_name": "entra-rbac",
                "peering_priority": 100,
                "peering_lifetime": 7,
                "standalone": standalone,
            }
        ),
    )
    assert operator.persistence.finalizer == "entra-rbac.io/finalizer"
    assert isinstance(operator.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert operator.persistence.progress_storage.prefix == "operator.entra-rbac.io"
    assert operator.persistence.diffbase_storage.prefix == "operator.entra-rbac.io"
    # Peering unless standalone is asked for; mandatory, so a missing peering object pauses.
    assert (operator.peering.standalone, operator.peering.mandatory) == (standalone, not standalone)
    assert operator.peering.clusterwide is True
    assert (operator.peering.name, operator.peering.priority, operator.peering.lifetime) == (
        "entra-rbac",
        100,
        7,
    )
    assert operator.posting.level >= 30
    assert operator.watching.server_timeout is not None
    # kopf watches no binding: the operator's cache does (triggers.watching).
    assert not list(operator.watching.label_selectors)


def test_kopf_waits_for_its_own_patch_longer_than_a_first_resume_takes_to_echo_it() -> None:
    """kopf's default 5 s ran out for nearly every resource of a first resume over 1,000: each was
    reconciled twice and kopf patched its annotations twice (docs/performance.md, Memory)."""
    operator = kopf.OperatorSettings()
    assert operator.persistence.consistency_timeout == 5.0  # kopf's default, to know it changed
    triggers.tune_kopf(operator, SETTINGS)
    assert operator.persistence.consistency_timeout >= 30.0


def test_every_trigger_of_design_section_6_is_registered_with_a_readable_id() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, SETTINGS)
    ids = {handler.id for handler in registry._changing.get_all_handlers()}
    ids |= {handler.id for handler in registry._watching.get_all_handlers()}
    ids |= {handler.id for handler in registry._spawning.get_all_handlers()}
    ids |= {handler.id for handler in registry._indexing.get_all_handlers()}
    ids |= {handler.id for handler in registry._activities.get_all_handlers()}
    assert {
        "reconcile",
        "reconcile/spec",
        "sync_requested/metadata.annotations.entra-rbac.io/sync-requested",
        "delete",
        "resource_gone",
        "startup",
        "cleanup",
        "login",
        "seconds_since_verified_directory_read",
    } <= ids, ids
    assert not any("<locals>" in handler_id for handler_id in ids)
    # No handler may make kopf put a finalizer on resources: deletion must never wait for us.
    resource_handlers = [
        *registry._changing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    assert not [h.id for h in resource_handlers if getattr(h, "requires_finalizer", False)]


def test_the_deleted_event_handler_runs_for_deletions_only() -> None:
    """Unfiltered, kopf ran it (and logged "Handler 'deleted' succeeded") on every event."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, SETTINGS)
    gone = [h for h in registry._watching.get_all_handlers() if h.id == "resource_gone"]
    assert len(gone) == 1
    assert gone[0].when is triggers.is_deletion
    assert [t for t in ("ADDED", "MODIFIED", "DELETED", None) if triggers.is_deletion(type=t)] == ["DELETED"]


def test_our_own_annotations_stay_visible_to_kopfs_change_detection() -> None:
    """kopf drops annotations under its storage prefix from the essence it diffs; ours must stay."""
    operator = kopf.OperatorSettings()
    triggers.tune_kopf(operator, SETTINGS)
    body = kopf.Body(
        {
            "metadata": {
                "name": "team",
                "annotations": {
                    "entra-rbac.io/sync-requested": "1",
                    "entra-rbac.io/confirm-revocation": "abc",
                    "operator.entra-rbac.io/kopf-managed": "yes",
                    "operator.entra-rbac.io/reconcile": "{}",
                },
            },
            "spec": {},
        }
    )
    essence = operator.persistence.diffbase_storage.build(body=body)
    assert essence["metadata"]["annotations"] == {
        "entra-rbac.io/sync-requested": "1",
        "entra-rbac.io/confirm-revocation": "abc",
    }


def test_a_selector_never_routes_a_reserved_namespace() -> None:
    selecting = {"roleBindings": [{"clusterRole": "edit", "namespaceSelector": {"matchLabels": {"t": "a"}}}]}
    assert names_namespace(selecting, "kube-system", [{"t": "a"}]) is True
    assert names_namespace(selecting, "kube-system", [{"t": "a"}], ("kube-system",)) is False


@pytest.mark.parametrize(
    ("outcome", "delay"),
    [
        (Outcome("Reconciled"), None),
        (Outcome("Gone"), None),
        (Outcome("RevocationHeld", requeue_after=10.0, message="held until the next read"), 10.0),
        (Outcome("error", requeue_after=3.0, message="Kubernetes API: 503"), 3.0),
    ],
)
async def test_kopf_handlers_turn_a_requeue_into_a_temporary_error(
    monkeypatch: pytest.MonkeyPatch, outcome: Outcome, delay: float | None
) -> None:
    async def fake(*_: Any, **__: Any) -> Outcome:
        return outcome

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    body = {"metadata": {"name": "team", "uid": "u", "generation": 1}, "spec": {}}
    if delay is None:
        await triggers.reconcile_body(body, FakeMemo())
        return
    with pytest.raises(kopf.TemporaryError) as raised:
        await triggers.reconcile_body(body, FakeMemo())
    assert (raised.value.delay, str(raised.value)) == (delay, outcome.message)


async def test_the_refresher_reconciles_a_resource_once_per_period_from_its_first_due_time(
    reconciled: list[Any],
) -> None:
    freshness = Freshness.of(100)
    refresher = triggers.Refresher(kube=None, ctx=None, freshness=freshness)  # type: ignore[arg-type]
    bodies = [{"metadata": {"name": "a", "uid": "uid-a"}}]
    period = freshness.period
    first = triggers.first_refresh_delay("uid-a", period)
    steps = [(0.0, 0), (first - 0.01, 0), (first, 1), (first + period - 0.01, 1), (first + period, 2)]
    for now, expected in steps:
        refresher._schedule(bodies, now)
        await asyncio.gather(*refresher._running.values())
        assert len(reconciled) == expected, now
    refresher._schedule([], first + 500)  # deleted: its schedule is dropped
    assert refresher._records == {}


async def test_a_resource_kopf_just_reconciled_is_refreshed_a_period_later_not_sooner(
    reconciled: list[Any],
) -> None:
    freshness = Freshness.of(100)
    refresher = triggers.Refresher(kube=None, ctx=None, freshness=freshness)  # type: ignore[arg-type]
    bodies = [{"metadata": {"name": "a", "uid": "uid-a"}}]
    entry = triggers.resource_entry(bodies[0])
    now = asyncio.get_running_loop().time()
    refresher.refreshed(entry)  # its create reconcile settled just now
    period = freshness.period
    for at, expected in [(now + period / 2, 0), (now + period - 0.5, 0), (now + period + 0.5, 1)]:
        refresher._schedule(bodies, at)
        await asyncio.gather(*refresher._running.values())
        assert len(reconciled) == expected, at - now


async def test_a_settled_reconcile_from_kopf_pushes_the_refresh_and_a_requeued_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = iter([Outcome("Reconciled"), Outcome("error", requeue_after=3.0, message="503")])

    async def fake(*_: Any, **__: Any) -> Outcome:
        return next(outcomes)

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    memo = FakeMemo()
    memo.refresher = triggers.Refresher(kube=None, ctx=None, freshness=Freshness.of(100))  # type: ignore[attr-defined,arg-type]
    body = {"metadata": {"name": "team", "uid": "u", "generation": 1}, "spec": {}}
    await triggers.reconcile_body(body, memo)
    pushed = memo.refresher._records["u"].due  # type: ignore[attr-defined]
    assert pushed > asyncio.get_running_loop().time() + Freshness.of(100).period - 5
    with pytest.raises(kopf.TemporaryError):
        await triggers.reconcile_body(body, memo)
    assert memo.refresher._records["u"].due == pushed  # type: ignore[attr-defined]


async def test_a_resource_whose_reconcile_is_running_or_waiting_is_not_refreshed_beside_it(
    reconciled: list[Any],
) -> None:
    freshness = Freshness.of(100)
    memory = ResourceMemory()
    ctx = type(
        "Ctx",
        (),
        {"directory": PrefetchingDirectory(), "memory": memory, "clock": staticmethod(lambda: NOW)},
    )()
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=freshness)  # type: ignore[arg-type]
    bodies = [{"metadata": {"name": "a", "uid": "uid-a"}, "spec": {}}]
    due = triggers.first_refresh_delay("uid-a", freshness.period)
    refresher._schedule(bodies, 0.0)
    async with memory.of("uid-a").lock:  # its create reconcile, waiting for a write turn
        refresher._schedule(bodies, due + 1)
        assert refresher._running == {}
    refresher._schedule(bodies, due + 2)  # finished (without settling through kopf): due still
    await asyncio.gather(*refresher._running.values())
    assert [name for name, *_ in reconciled] == ["a"]


def _egb_body(
    spec: dict[str, Any], annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "big", "uid": "u1", "annotations": annotations or {}},
        "spec": spec,
        "status": status or {},
    }


def test_kopfs_last_handled_configuration_keeps_a_digest_not_an_864_kb_copy() -> None:
    """Issue 18, point 7: the CRD admits specs of ~864 KB; the record of one stays small."""
    settings = kopf.OperatorSettings()
    triggers.tune_kopf(settings, SETTINGS)
    storage = settings.persistence.diffbase_storage
    spec = {"groups": [{"displayName": "x" * 256, "note": str(i)} for i in range(3300)]}
    raw = _egb_body(spec)
    assert len(json.dumps(spec)) > 860_000
    patch = kopf.Patch()
    storage.store(body=kopf.Body(raw), patch=patch, essence=storage.build(body=kopf.Body(raw)))
    stored = dict(patch["status"])
    assert sum(len(k) + len(v) for k, v in stored.items()) < 1024
    # The same spec again: kopf sees no change. Another spec: kopf sees `spec` changed.
    same = kopf.Body(_egb_body(spec, status=stored))
    assert storage.fetch(body=same) == storage.build(body=same)
    changed = kopf.Body(_egb_body({**spec, "groups": spec["groups"][:-1]}, status=stored))
    before, now = storage.fetch(body=changed), storage.build(body=changed)
    assert before is not None
    assert before["spec"] != now["spec"]
    assert {**before, "spec": None} == {**now, "spec": None}


# What a spec the CRD admits can hold (no `number` field in its schema), integers to 64 bits and
# beyond, any text but lone surrogates (which JSON cannot carry as UTF-8).
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_SPEC_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(_SPEC_VALUES)
def test_the_spec_digests_bytes_are_the_ones_json_wrote(value: Any) -> None:
    """Digests stored by earlier versions (`json.dumps`, sorted, compact, UTF-8) still match."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_json(value) == expected


@given(st.dictionaries(_TEXT, _SPEC_VALUES, max_size=4))
def test_an_unchanged_spec_reads_back_equal_from_its_digest(spec: dict[str, Any]) -> None:
    settings = kopf.OperatorSettings()
    triggers.tune_kopf(settings, SETTINGS)
    storage = settings.persistence.diffbase_storage
    patch = kopf.Patch()
    raw = _egb_body(spec)
    storage.store(body=kopf.Body(raw), patch=patch, essence=storage.build(body=kopf.Body(raw)))
    body = kopf.Body(_egb_body(spec, status=dict(patch["status"])))
    fetched = storage.fetch(body=body)
    assert fetched is not None
    assert fetched == storage.build(body=body)
    assert fetched["spec"] is not spec


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def heartbeat(priority: int, seconds_ago: float, lifetime: int = 60) -> dict[str, object]:
    """A peer's entry in ClusterKopfPeering status, as kopf's keepalive writes it."""
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=seconds_ago)).isoformat(),
    }


@pytest.mark.parametrize(
    ("status", "in_charge"),
    [
        ({}, []),
        ({"me": heartbeat(50, 0)}, []),  # only our own heartbeat
        ({"me": heartbeat(50, 0), "a": heartbeat(100, 5)}, ["a"]),  # a higher priority is live
        ({"me": heartbeat(50, 0), "a": heartbeat(50, 5)}, ["a"]),  # equal priorities all pause
        ({"me": heartbeat(50, 0), "a": heartbeat(10, 5)}, []),  # a lower one gives way to us
        ({"me": heartbeat(50, 0), "a": heartbeat(100, 61)}, []),  # its heartbeat expired
        ({"a": heartbeat(100, 9, lifetime=10), "b": {"priority": "x"}}, ["a"]),  # junk is ignored
    ],
    ids=["empty", "alone", "higher", "equal", "lower", "expired", "short-lifetime-and-junk"],
)
def test_the_refresher_gives_way_by_kopfs_peering_rule(
    status: dict[str, object], in_charge: list[str]
) -> None:
    assert peers_in_charge(status, identity="me", priority=50, now=NOW) == in_charge


@dataclass
class PrefetchingDirectory:
    """Records each bulk lookup the refresher's prefetch makes (one list of lookups per call)."""

    calls: list[list[Any]] = field(default_factory=list)

    async def lookup_groups(self, lookups: Any) -> list[Any]:
        self.calls.append(list(lookups))
        return []

    async def transitive_members(self, group_id: str) -> list[Any]:
        return []


async def test_a_refresh_is_one_batch_with_one_bulk_directory_read(reconciled: list[Any]) -> None:
    """Resources whose first refresh falls anywhere in [period/2, period) are refreshed together
    from the first due one on (early, never late), after one prefetch of all their groups; from then
    on the whole refresh stays one batch (docs/design.md, Directory semantics, Sharing)."""
    freshness = Freshness.of(100)
    directory = PrefetchingDirectory()
    ctx = type("Ctx", (), {"directory": directory, "clock": staticmethod(lambda: datetime.now(UTC))})()
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=freshness)  # type: ignore[arg-type]
    bodies = [
        {"metadata": {"name": f"r{i}", "uid": f"uid-{i}"}, "spec": {"groups": [{"displayName": f"g{i}"}]}}
        for i in range(20)
    ]
    period = freshness.period
    first = min(triggers.first_refresh_delay(f"uid-{i}", period) for i in range(20))
    for now in (0.0, first - 0.01, first, first + 1, first + period - 0.01, first + period):
        refresher._schedule(bodies, now)
        await asyncio.gather(*refresher._running.values())
    assert len(reconciled) == 40  # every resource twice: at `first` and one period later
    assert [sorted(lookup.ref.display_name for lookup in call) for call in directory.calls] == [
        sorted(f"g{i}" for i in range(20))
    ] * 2


async def test_resources_reconciled_or_first_seen_between_refreshes_join_the_next_batch(
    reconciled: list[Any],
) -> None:
    """Issue 17 point 4: a resource kopf reconciled more than half a period after a batch, and one
    first listed just before it but due later, are refreshed with the next batch (early, never
    late), so every later refresh is still one batch with one bulk directory read."""
    freshness = Freshness.of(100)
    period = freshness.period
    directory = PrefetchingDirectory()
    ctx = type("Ctx", (), {"directory": directory, "clock": staticmethod(lambda: datetime.now(UTC))})()
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=freshness)  # type: ignore[arg-type]

    def body(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": {"groups": [{"displayName": name}]}}

    bodies = [body(f"r{i}") for i in range(10)]
    # One first listed a second before the first batch whose own first refresh is later than half
    # a period after that batch (so the batch leaves it out).
    early = body(
        next(f"e{i}" for i in range(100) if triggers.first_refresh_delay(f"uid-e{i}", period) > 0.6 * period)
    )
    first = min(triggers.first_refresh_delay(f"uid-r{i}", period) for i in range(10))
    base = asyncio.get_running_loop().time() - first - 0.6 * period  # the first batch ran 0.6 p ago
    refresher._schedule(bodies, base)
    refresher._schedule([*bodies, early], base + first - 1)
    refresher._schedule([*bodies, early], base + first)
    await asyncio.gather(*refresher._running.values())
    assert len(reconciled) == 10
    late = body("late")
    refresher.refreshed(triggers.resource_entry(late))  # kopf's create reconcile settled just now
    everyone = [*bodies, early, late]
    next_batch = base + first + period
    for now in (next_batch - 0.01, next_batch, next_batch + period - 0.01, next_batch + period):
        refresher._schedule(everyone, now)
        await asyncio.gather(*refresher._running.values())
    assert len(reconciled) == 10 + 2 * 12
    assert [len(call) for call in directory.calls] == [10, 12, 12]


async def test_the_refresher_rereads_windows_only_on_a_new_generation_or_once_their_change_has_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import entra_rbac.triggers.refresher as refresher_module

    clock = [datetime(2026, 12, 1, 12, tzinfo=UTC)]
    ctx = type("Ctx", (), {"clock": staticmethod(lambda: clock[0])})()
    reads: list[str] = []
    original = refresher_module._next_change

    def counting(spec: Any, now: datetime) -> datetime | None:
        reads.append(str(spec.get("validUntil")))
        return original(spec, now)

    monkeypatch.setattr(refresher_module, "_next_change", counting)
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=Freshness.of(600))  # type: ignore[arg-type]
    until = "2026-12-01T13:00:00Z"
    body: dict[str, Any] = {
        "metadata": {"name": "a", "uid": "uid-a", "generation": 1},
        "spec": {
            "validUntil": until,
            "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
        },
    }
    for _ in range(3):  # ticks over an unchanged resource: its spec is read once
        refresher._schedule([body], 0.0)
    assert reads == [until]
    assert refresher._records["uid-a"].wake == datetime(2026, 12, 1, 13, tzinfo=UTC)

    later = "2026-12-01T14:00:00Z"
    body = {
        **body,
        "metadata": {**body["metadata"], "generation": 2},
        "spec": {**body["spec"], "validUntil": later},
    }
    refresher._schedule([body], 0.0)  # a new generation: read again, the new end is the wake-up
    assert reads == [until, later]
    assert refresher._records["uid-a"].wake == datetime(2026, 12, 1, 14, tzinfo=UTC)

    clock[0] = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    refresher._schedule([body], 0.0)  # its change has come: read again (nothing left to wake for)
    assert reads == [until, later, later]
    assert refresher._records["uid-a"].wake is None

    refresher._schedule([], 0.0)  # deleted: forgotten
    assert refresher._records == {}


async def test_a_tick_reuses_what_it_read_from_an_object_listed_again_and_rereads_a_new_one(
    reconciled: list[Any],
) -> None:
    """Issue 17 point 5: the cache lists the same object until the resource changes, so a tick
    over unchanged resources reads no spec again; an object replaced (a changed spec, a new
    status pinning a group) is read again, and its refresh prefetches what the new one names,
    its windows read again at the new generation."""
    freshness = Freshness.of(100)
    directory = PrefetchingDirectory()
    clock = [datetime(2026, 12, 1, 12, tzinfo=UTC)]
    ctx = type("Ctx", (), {"directory": directory, "clock": staticmethod(lambda: clock[0])})()
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=freshness)  # type: ignore[arg-type]
    listed: dict[str, Any] = {
        "metadata": {"name": "a", "uid": "uid-a", "generation": 1},
        "spec": {"groups": [{"displayName": "old"}]},
    }
    refresher._schedule([listed], 0.0)
    entry = refresher._records["uid-a"].entry
    refresher._schedule([listed], 1.0)
    assert refresher._records["uid-a"].entry is entry  # the same object: nothing made again
    replaced = {
        "metadata": {**listed["metadata"], "generation": 2},
        "spec": {
            "groups": [{"displayName": "new"}],
            "clusterRoleBindings": [{"clusterRole": "view"}],
            "validUntil": "2026-12-01T13:00:00Z",
        },
    }
    due = triggers.first_refresh_delay("uid-a", freshness.period)
    refresher._schedule([replaced], due)
    assert refresher._records["uid-a"].entry.spec == replaced["spec"]
    assert refresher._records["uid-a"].wake == datetime(2026, 12, 1, 13, tzinfo=UTC)
    await asyncio.gather(*refresher._running.values())
    assert [[lookup.ref.display_name for lookup in call] for call in directory.calls] == [["new"]]
    assert [name for name, _, _ in reconciled] == ["a"]


async def test_a_batch_is_refreshed_after_its_prefetch_at_most_concurrency_at_a_time_each_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch's workers (one task for the whole refresh) start no reconcile before the bulk
    read has finished, run at most `concurrency` at once, reconcile each resource once, and each
    resource counts as running until its own reconcile ends."""
    reading, release, prefetched, full = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()
    running: list[int] = [0, 0]  # now, most at once
    done: list[str] = []

    class Directory(PrefetchingDirectory):
        async def lookup_groups(self, lookups: Any) -> list[Any]:
            reading.set()
            await release.wait()  # held until the test has seen no reconcile start meanwhile
            prefetched.set()
            return await super().lookup_groups(lookups)

    async def fake(name: str, uid: str, ctx: Any, **_: Any) -> Outcome:
        assert prefetched.is_set(), "a reconcile started before the batch's bulk read ended"
        running[0] += 1
        running[1] = max(running)
        if running[0] == 3:
            full.set()
        # Held until `concurrency` run at once (a bound lower than 3 times out here), then one
        # turn of the loop, in which any reconcile over the bound would start and be counted.
        await asyncio.wait_for(full.wait(), timeout=10)
        await asyncio.sleep(0)
        running[0] -= 1
        done.append(name)
        return Outcome("Reconciled")

    monkeypatch.setattr("entra_rbac.reconciler.reconcile", fake)
    ctx = type("Ctx", (), {"directory": Directory(), "clock": staticmethod(lambda: datetime.now(UTC))})()
    freshness = Freshness.of(100)
    refresher = triggers.Refresher(kube=None, ctx=ctx, freshness=freshness, concurrency=3)  # type: ignore[arg-type]
    bodies = [
        {"metadata": {"name": f"r{i}", "uid": f"uid-{i}"}, "spec": {"groups": [{"displayName": f"g{i}"}]}}
        for i in range(20)
    ]
    refresher._schedule(bodies, 0.0)
    refresher._schedule(bodies, freshness.period)  # every one due: one batch
    assert len(refresher._running) == 20
    await asyncio.wait_for(reading.wait(), timeout=10)
    for _ in range(5):  # turns of the loop in which a reconcile not waiting for the read would start
        await asyncio.sleep(0)
    assert done == []
    assert running == [0, 0]
    release.set()
    await asyncio.gather(*refresher._running.values())
    assert sorted(done) == sorted(f"r{i}" for i in range(20))
    assert running[1] == 3
    assert refresher._running == {}
    await refresher.stop()


@pytest.mark.parametrize(
    "extra_fields",
    [
        None,
        [("metadata", "annotations", "entra-rbac.io/sync-requested")],
        ["metadata.labels.team", ("spec", "groups")],
        [("status", "observedGeneration")],
        [("metadata", "generation")],
    ],
)
def test_the_slim_essence_is_kopfs_own(extra_fields: list[kopf.FieldSpec] | None) -> None:
    """The diff-base builds its essence without copying status and managedFields (issue 17
    point 2); what it builds is what kopf's own storage builds from the whole body."""
    settings = kopf.OperatorSettings()
    triggers.tune_kopf(settings, SETTINGS)
    storage = settings.persistence.diffbase_storage
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix="operator.entra-rbac.io", key="last-handled-configuration")
    raw = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": {
            "name": "team",
            "uid": "u1",
            "generation": 3,
            "labels": {"team": "a"},
            "ownerReferences": [{"kind": "Thing", "name": "x", "uid": "o1", "apiVersion": "v1"}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "entra-rbac.io/sync-requested": "1",
                "operator.entra-rbac.io/reconcile": "{}",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {"groups": [{"id": "g"}], "roleBindings": [{"clusterRole": "edit", "namespaces": ["a"]}]},
        "status": {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    body = kopf.Body(raw)
    assert storage.build(body=body, extra_fields=extra_fields) == kopfs.build(
        body=body, extra_fields=extra_fields
    )
    built = storage.build(body=body, extra_fields=extra_fields)
    built["spec"]["groups"].append({"id": "changed"})  # a copy: the body is untouched
    assert raw["spec"]["groups"] == [{"id": "g"}]
