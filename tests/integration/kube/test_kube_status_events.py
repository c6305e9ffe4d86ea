"""KubeAdapter: the resource's status subresource and the Events of the audit trail."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.constants import API_VERSION, KIND, OPERATOR_NAME, PLURAL

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


async def test_events_name_the_resource_and_read_like_an_audit_trail(adapter: KubeAdapter) -> None:
    created = await create_resource(adapter, "team")
    uid = created["metadata"]["uid"]
    message = (
        "Created RoleBinding payments/egb:team:clusterrole:edit for groups 6f1c2f0e role ClusterRole/edit"
    )
    await adapter.emit_event(owner_name="team", owner_uid=uid, reason="Created", message=message)
    await adapter.emit_event(
        owner_name="team", owner_uid=uid, reason="Conflict", message="x" * 5000, type_="Warning"
    )
    events = (await adapter._call("GET", "/api/v1/namespaces/default/events", what="list events"))["items"]
    ours = sorted((e for e in events if e["involvedObject"].get("uid") == uid), key=lambda e: e["reason"])
    assert [(e["reason"], e["type"]) for e in ours] == [("Conflict", "Warning"), ("Created", "Normal")]
    assert ours[1]["message"] == message
    assert ours[1]["involvedObject"] == {"apiVersion": API_VERSION, "kind": KIND, "name": "team", "uid": uid}
    assert ours[1]["reportingComponent"] == OPERATOR_NAME
    assert len(ours[0]["message"]) == 1024
