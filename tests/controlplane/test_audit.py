"""The audit log tells one user's requests apart, by HTTP method and path, in arrival order."""

from __future__ import annotations

import time
import uuid
from typing import cast

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.controlplane.audit import AuditLog, parse
from tests.controlplane.harness import ControlPlane, wait_for


def test_parse_maps_the_verb_to_the_method_and_drops_the_query() -> None:
    line = (
        '{"verb":"patch","requestURI":"/apis/x/v1/things/a/status?fieldManager=m",'
        '"user":{"username":"u"},"objectRef":{"resource":"things","subresource":"status"},'
        '"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z"}'
    )
    event = parse(line)
    assert event is not None
    assert (event.method, event.path, event.user, event.subresource) == (
        "PATCH",
        "/apis/x/v1/things/a/status",
        "u",
        "status",
    )
    assert parse('{"verb":"get"') is None  # a line still being written


def test_counts_only_the_named_users_requests_since_a_mark(control_plane: ControlPlane) -> None:
    user = f"audited-{uuid.uuid4().hex[:8]}"
    kubeconfig = control_plane.kubeconfig_for(user)
    audit = AuditLog(control_plane.audit_log)
    mark = time.time()
    with cast(client.ApiClient, config.new_client_from_config(config_file=str(kubeconfig))) as api:  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)
        for _ in range(2):
            with pytest.raises(ApiException) as refused:
                core.list_namespaced_config_map("default")
            assert refused.value.status == 403  # refused requests are audited too
        with pytest.raises(ApiException) as refused:
            core.delete_namespaced_config_map("nothing", "default")
        assert refused.value.status == 403
    path = r"^/api/v1/namespaces/default/configmaps"
    wait_for(lambda: audit.count(user, since=mark) >= 3, 10, "three audit events")
    assert audit.count(user, "GET", path + "$", since=mark) == 2
    assert audit.count(user, "DELETE", path, since=mark) == 1
    assert [e.method for e in audit.events(user, since=mark)] == ["GET", "GET", "DELETE"]
    assert audit.count(user, since=time.time()) == 0
    assert audit.count("someone-else", since=mark) == 0
