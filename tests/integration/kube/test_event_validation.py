"""How the API server validates the Events the operator posts (docs/design.md, Events), on both
servers: why names are generated, and what core/v1 and events.k8s.io each require."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.adapters.kube.errors import InvalidError
from entra_rbac.core.events import EventDraft, event_manifest, name_head

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LONGEST = "a" * 241 + "-audit-trail"  # 253 characters: the longest legal resource name
DRAFT = EventDraft("Warning", "Conflict", "Reconcile", "RoleBinding a/b already exists", "Conflict")
CORE = "/api/v1/namespaces/default/events"


async def post(adapter: KubeAdapter, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return await adapter._call("POST", path, what="create Event", body=body)


async def test_a_generated_name_fits_the_longest_resource_name(adapter: KubeAdapter) -> None:
    manifest = event_manifest(DRAFT, owner_name=LONGEST, owner_uid="u-1", instance="test", now=NOW)
    created = await post(adapter, CORE, manifest)
    name = created["metadata"]["name"]
    # The head the operator asks for is kept whole (kube-apiserver keeps 58 characters of a
    # generateName), the hash of the long name included, and 5 characters are added.
    head = name_head(LONGEST)
    assert name.startswith(head)
    assert len(name) == len(head) + 5


@pytest.mark.sandbox_diverges(reason="the sandbox validates a core/v1 Event's name as a DNS subdomain")
async def test_only_events_k8s_io_checks_an_event_name(adapter: KubeAdapter) -> None:
    """The name the operator used to concatenate, `<resource>.<16 hex>`, is past 253 characters:
    kube-apiserver validates no metadata of a core/v1 Event (legacy validation), but does through
    events.k8s.io; the sandbox refused it on both (the 422 of issue 14)."""
    too_long = f"{LONGEST}.0123456789abcdef"
    manifest = event_manifest(DRAFT, owner_name=LONGEST, owner_uid="u-1", instance="test", now=NOW)
    created = await post(adapter, CORE, {**manifest, "metadata": {"name": too_long, "namespace": "default"}})
    assert created["metadata"]["name"] == too_long
    with pytest.raises(InvalidError, match=r"metadata\.name"):
        await post(
            adapter,
            "/apis/events.k8s.io/v1/namespaces/default/events",
            {**V1, "metadata": {"name": too_long}},
        )


@pytest.mark.sandbox_diverges(reason="the sandbox does not apply events.k8s.io's strict validation")
async def test_events_k8s_io_requires_event_time(adapter: KubeAdapter) -> None:
    with pytest.raises(InvalidError, match="eventTime"):
        await post(adapter, "/apis/events.k8s.io/v1/namespaces/default/events", V1)


V1 = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"generateName": "team.", "namespace": "default"},
    "regarding": {"apiVersion": "entra-rbac.io/v1alpha1", "kind": "EntraGroupBinding", "name": "team"},
    "reason": "Conflict",
    "note": "x",
    "type": "Warning",
    "action": "Reconcile",
    "reportingController": "entra-rbac-operator",
    "reportingInstance": "test",
}
