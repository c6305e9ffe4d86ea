"""KubeAdapter: the resource's status subresource and the Events of the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.adapters.kube.errors import NotFoundError
from entra_rbac.constants import API_VERSION, KIND, OPERATOR_NAME, PLURAL
from entra_rbac.core.events import EventDraft, EventSeries, series_patch

pytestmark = pytest.mark.usefixtures("egb_crd")


async def create_resource(adapter: KubeAdapter, name: str) -> dict[str, Any]:
    body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": {"groups": []}}
    return await adapter._call("POST", f"/apis/{API_VERSION}/{PLURAL}", what="create resource", body=body)


async def test_patch_status_writes_status_only(adapter: KubeAdapter) -> None:
    created = await create_resource(adapter, "team")
    status = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
    }
    patched = await adapter.patch_status("team", status)
    assert patched["status"] == status
    current = await adapter.get_resource("team")
    assert current is not None
    assert current["status"] == status
    assert current["spec"] == created["spec"]
    assert current["metadata"]["generation"] == created["metadata"]["generation"]


async def test_get_resource_of_a_missing_name_is_none(adapter: KubeAdapter) -> None:
    assert await adapter.get_resource("absent") is None


async def test_events_are_named_by_the_server_and_counted_up_by_a_patch(adapter: KubeAdapter) -> None:
    created = await create_resource(adapter, "team")
    uid = created["metadata"]["uid"]
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    audit = EventDraft("Normal", "Granted", "WriteBindings", "Granted access: created 1 binding.", "")
    problem = EventDraft("Warning", "Conflict", "Reconcile", "x" * 5000, "Conflict")
    name = await adapter.create_event(audit, owner_name="team", owner_uid=uid, now=now)
    warning = await adapter.create_event(problem, owner_name="team", owner_uid=uid, now=now)
    assert name.startswith("team.")
    assert warning.startswith("team.")
    assert name != warning
    series = EventSeries(warning, "Conflict", 1, now, now, now).seen(now + timedelta(minutes=5))
    await adapter.patch_event(warning, series_patch(series))
    events = (await adapter._call("GET", "/api/v1/namespaces/default/events", what="list events"))["items"]
    ours = sorted((e for e in events if e["involvedObject"].get("uid") == uid), key=lambda e: e["reason"])
    assert [(e["reason"], e["type"], e["count"]) for e in ours] == [
        ("Conflict", "Warning", 2),
        ("Granted", "Normal", 1),
    ]
    assert ours[1]["message"] == audit.note
    assert ours[1]["involvedObject"] == {"apiVersion": API_VERSION, "kind": KIND, "name": "team", "uid": uid}
    assert ours[1]["reportingComponent"] == OPERATOR_NAME
    assert len(ours[0]["message"]) == 1024
    assert ours[0]["lastTimestamp"] == "2026-12-01T12:05:00Z"
    with pytest.raises(NotFoundError):
        await adapter.patch_event("team.gone0", {"count": 3})
