"""kopf's state as the operator keeps it (triggers.diffbase): the last-handled configuration in
status, recorded by the reconcile's status write, and progress without the marker's write."""

from __future__ import annotations

import json
from typing import Any, cast

import kopf
import pytest

from entra_rbac import triggers
from entra_rbac.constants import LAST_HANDLED_STATUS_KEY
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.reconciler import reconcile
from entra_rbac.settings import Settings
from entra_rbac.triggers.diffbase import QuietProgressStorage, SpecDigestDiffBaseStorage, spec_digest
from tests.unit.reconcile_fakes import NAME, UID, World, guid

SETTINGS = Settings(
    tenant_id="contoso.onmicrosoft.com",
    client_id="6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f",
    credential="client-secret",
    client_secret="secret-value",
)
SPEC = {
    "groups": [{"id": "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"}],
    "clusterRoleBindings": [{"clusterRole": "view"}],
}
SYNC = "entra-rbac.io/sync-requested"
CONFIRM = "entra-rbac.io/confirm-revocation"
LEGACY = "operator.entra-rbac.io/last-handled-configuration"


def _storages() -> tuple[SpecDigestDiffBaseStorage, kopf.ProgressStorage]:
    settings = kopf.OperatorSettings()
    triggers.tune_kopf(settings, SETTINGS)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, SpecDigestDiffBaseStorage)
    return storage, settings.persistence.progress_storage


def _body(
    spec: dict[str, Any] | None = None,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> kopf.Body:
    meta: dict[str, Any] = {"name": "team", "uid": "u1", "annotations": annotations or {}}
    if labels:
        meta["labels"] = labels
    raw = {
        "apiVersion": "entra-rbac.io/v1alpha1",
        "kind": "EntraGroupBinding",
        "metadata": meta,
        "spec": spec if spec is not None else SPEC,
        "status": status or {},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


def _handled(body: kopf.Body, storage: SpecDigestDiffBaseStorage) -> dict[str, Any]:
    """The status of `body` once kopf stored its diff-base (nothing recorded by a reconcile)."""
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    return {**dict(body.get("status") or {}), **dict(patch.get("status") or {})}


def test_the_last_handled_configuration_is_stored_in_status_not_in_annotations() -> None:
    storage, _ = _storages()
    body = _body(labels={"team": "a"})
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert set(patch) == {"status"}  # one request (to /status), nothing for the main endpoint
    stored = json.loads(patch["status"][LAST_HANDLED_STATUS_KEY])
    assert stored == {"spec": {"sha256": spec_digest(SPEC)}, "metadata": {"labels": {"team": "a"}}}


def test_a_new_resource_gets_the_stamp_kopf_will_store() -> None:
    storage, progress = _storages()
    body = _body(annotations={"note": "x"})
    stamp = storage.stamp_for(body)
    # What kopf stores after the handling: the essence it built (with the handlers' fields),
    # without our progress annotations.
    fields = [("spec",), ("metadata", "annotations", SYNC), ("metadata", "annotations", CONFIRM)]
    essence = progress.clear(essence=storage.build(body=body, extra_fields=fields))
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=essence)
    assert stamp == patch["status"][LAST_HANDLED_STATUS_KEY]


@pytest.mark.parametrize(
    ("change", "stamped"),
    [
        ({}, False),  # nothing changed: kopf stores nothing, so there is nothing to record
        ({"spec": {**SPEC, "suspend": True}}, True),
        ({"labels": {"team": "b"}}, True),
        ({"annotations": {"note": "y"}}, True),
        # Another handler reacts to these: kopf must store the stamp itself (no premature record).
        ({"annotations": {SYNC: "1"}}, False),
        ({"annotations": {CONFIRM: "abc"}}, False),
    ],
)
def test_a_changed_resource_gets_a_stamp_only_when_the_reconcile_alone_handles_it(
    change: dict[str, Any], stamped: bool
) -> None:
    storage, _ = _storages()
    before = _body()
    status = _handled(before, storage)
    after = _body(
        change.get("spec"), annotations=change.get("annotations"), labels=change.get("labels"), status=status
    )
    assert (storage.stamp_for(after) is not None) is stamped


def test_a_resource_created_with_the_sync_annotation_gets_no_stamp() -> None:
    storage, _ = _storages()
    assert storage.stamp_for(_body(annotations={SYNC: "1"})) is None
    assert storage.stamp_for(_body(annotations={"other": "1"})) is not None


def test_kopf_sends_nothing_once_the_reconcile_recorded_the_stamp() -> None:
    storage, _ = _storages()
    body = _body()
    stamp = storage.stamp_for(body)
    assert stamp is not None
    storage.recorded("u1", stamp)
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch  # an empty patch: kopf sends no request
    # Recorded once, used once: the next store writes again.
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert patch["status"][LAST_HANDLED_STATUS_KEY] == stamp


def test_a_recorded_stamp_for_another_essence_does_not_stop_kopfs_write() -> None:
    storage, _ = _storages()
    storage.recorded("u1", "something else")
    patch = kopf.Patch()
    body = _body()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert patch["status"][LAST_HANDLED_STATUS_KEY] == storage.stamp_for(body)


def test_an_annotation_written_by_an_earlier_version_still_reads_after_an_upgrade() -> None:
    """Before, kopf's annotation storage kept the same record in `<prefix>/last-handled-configuration`
    (with kopf's marker): an upgraded operator sees no change, so it neither re-handles every
    resource nor writes its stamp on resume."""
    storage, _ = _storages()
    earlier = kopf.AnnotationsDiffBaseStorage(
        prefix="operator.entra-rbac.io", key="last-handled-configuration"
    )
    body = _body(labels={"team": "a"})
    patch = kopf.Patch()
    digested = {**storage.build(body=body), "spec": {"sha256": spec_digest(SPEC)}}
    earlier.store(body=body, patch=patch, essence=digested)  # type: ignore[arg-type]
    annotations = dict(patch["metadata"]["annotations"])
    assert LEGACY in annotations
    upgraded = _body(labels={"team": "a"}, annotations=annotations)
    assert storage.fetch(body=upgraded) == storage.build(body=upgraded)
    assert storage.stamp_for(upgraded) is None


@pytest.mark.parametrize("stored", ["not json", '"a string"', "[1, 2]"])
def test_an_unreadable_record_in_status_reads_as_none(stored: str) -> None:
    storage, _ = _storages()
    body = _body(status={LAST_HANDLED_STATUS_KEY: stored})
    assert storage.fetch(body=body) is None  # kopf handles it as new: a full reconcile
    assert storage.stamp_for(body) is not None


def test_progress_stored_and_purged_in_one_handling_leaves_nothing_to_send() -> None:
    """kopf's progress storage adds its `kopf-managed` marker to the patch; ours does not, so a
    handling that succeeded at once sends no request for the main endpoint."""
    progress = QuietProgressStorage(prefix="operator.entra-rbac.io")
    body = _body()
    patch = kopf.Patch()
    record: kopf.ProgressRecord = {"started": "2026-12-04T00:00:00", "success": True}
    progress.store(key=kopf.HandlerId("reconcile"), record=record, body=body, patch=patch)
    assert "operator.entra-rbac.io/kopf-managed" not in patch.get("metadata", {}).get("annotations", {})
    progress.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert not patch
    # kopf's own storage would have left the marker: one write of its own.
    kopfs = kopf.AnnotationsProgressStorage(prefix="operator.entra-rbac.io")
    theirs = kopf.Patch()
    kopfs.store(key=kopf.HandlerId("reconcile"), record=record, body=body, patch=theirs)
    kopfs.purge(key=kopf.HandlerId("reconcile"), body=body, patch=theirs)
    assert theirs == {"metadata": {"annotations": {"operator.entra-rbac.io/kopf-managed": "yes"}}}


def test_progress_of_a_retry_is_still_stored() -> None:
    progress = QuietProgressStorage(prefix="operator.entra-rbac.io")
    patch = kopf.Patch()
    record: kopf.ProgressRecord = {
        "started": "2026-12-04T00:00:00",
        "retries": 1,
        "delayed": "2026-12-04T00:01:00",
    }
    progress.store(key=kopf.HandlerId("reconcile"), record=record, body=_body(), patch=patch)
    assert json.loads(patch["metadata"]["annotations"]["operator.entra-rbac.io/reconcile"])["retries"] == 1


# --- the reconcile's side: the stamp goes with a final status write only -----------------


async def _world() -> World:
    world = World()
    world.directory.add_group(guid(1))
    world.apply({"groups": [{"id": guid(1)}], "clusterRoleBindings": [{"clusterRole": "view"}]})
    return world


async def test_a_final_reconcile_writes_the_stamp_with_its_status_in_one_write() -> None:
    world = await _world()
    outcome = await reconcile(NAME, UID, world.ctx, stamp='{"spec":{"sha256":"a"}}')
    assert outcome.settled
    assert outcome.stamped
    assert not outcome.stamp_dropped
    assert world.status[LAST_HANDLED_STATUS_KEY] == '{"spec":{"sha256":"a"}}'
    assert world.kube.status_writes == 1
    # Without a stamp (the refresher) the record is neither written nor removed; with the one
    # status holds, nothing is written either.
    assert (await reconcile(NAME, UID, world.ctx)).stamped is False
    await reconcile(NAME, UID, world.ctx, stamp='{"spec":{"sha256":"a"}}')
    assert world.kube.status_writes == 1
    assert world.status[LAST_HANDLED_STATUS_KEY] == '{"spec":{"sha256":"a"}}'
    # A new stamp with an unchanged status, after a restart (no replay from memory): one write,
    # the stamp alone.
    world.ctx = world.new_context()
    assert (await reconcile(NAME, UID, world.ctx, stamp='{"spec":{"sha256":"b"}}')).stamped
    assert world.kube.status_writes == 2
    assert world.status[LAST_HANDLED_STATUS_KEY] == '{"spec":{"sha256":"b"}}'


async def test_a_reconcile_that_asks_for_a_retry_writes_no_stamp() -> None:
    """kopf must find the handling unfinished, or it would never retry it."""
    world = await _world()
    world.directory.failure = DirectoryUnavailableError("Graph answered 503")
    outcome = await reconcile(NAME, UID, world.ctx, stamp='{"spec":{"sha256":"a"}}')
    assert outcome.requeue_after is not None
    assert not outcome.stamped
    assert world.kube.status_writes == 1  # the failure's status, without the stamp
    assert LAST_HANDLED_STATUS_KEY not in world.status


async def test_a_stamp_the_api_server_dropped_is_reported_and_the_storage_falls_back() -> None:
    """A CRD older than the field prunes it from every write: the operator notices from the write's
    answer and keeps the record in the annotation instead (no write on every event)."""
    world = await _world()
    patch_status = world.kube.patch_status

    async def pruning(name: str, status: Any) -> dict[str, Any]:
        return await patch_status(name, {k: v for k, v in status.items() if k != LAST_HANDLED_STATUS_KEY})

    world.kube.patch_status = pruning  # type: ignore[method-assign]
    outcome = await reconcile(NAME, UID, world.ctx, stamp='{"spec":{"sha256":"a"}}')
    assert outcome.stamp_dropped
    assert not outcome.stamped

    storage, _ = _storages()
    storage.status_unavailable()
    body = _body()
    assert storage.stamp_for(body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert "status" not in patch
    assert json.loads(patch["metadata"]["annotations"][LEGACY])["spec"] == {"sha256": spec_digest(SPEC)}
    annotated = _body(annotations=dict(patch["metadata"]["annotations"]))
    assert storage.fetch(body=annotated) == storage.build(body=annotated)
