"""KubeAdapter against the sandbox API server: bindings by owner label, writes with preconditions."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter, errors
from entra_rbac.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_UID_LABEL
from entra_rbac.core.desired import RoleRef
from entra_rbac.core.plan import Action, Verb
from entra_rbac.errors import KubeError

OWNER = "0b6a3c1e-2f55-4c0e-9a55-6e3b1d2c4f70"
OTHER = "9d0e8f7a-1b2c-4d3e-8f90-a1b2c3d4e5f6"
GROUP_ID = "6f1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"


def binding(
    kind: str, name: str, *, namespace: str | None = None, owner: str = OWNER, role: str = "view"
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: owner},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": GROUP_ID}],
    }


async def create_namespace(adapter: KubeAdapter, name: str, labels: dict[str, str] | None = None) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    await adapter._call("POST", "/api/v1/namespaces", what="create namespace", body=body)


async def test_list_owned_bindings_finds_both_kinds_by_owner_label_only(adapter: KubeAdapter) -> None:
    await create_namespace(adapter, "payments")
    await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    await adapter.create_binding(binding("RoleBinding", "egb:team:clusterrole:edit", namespace="payments"))
    await adapter.create_binding(
        binding("RoleBinding", "egb:other:clusterrole:edit", namespace="payments", owner=OTHER)
    )
    found = await adapter.list_owned_bindings(OWNER)
    assert sorted((b["kind"], b["metadata"].get("namespace"), b["metadata"]["name"]) for b in found) == [
        ("ClusterRoleBinding", None, "egb:team:clusterrole:view"),
        ("RoleBinding", "payments", "egb:team:clusterrole:edit"),
    ]


async def test_list_owned_bindings_follows_continue_tokens_across_pages(
    adapter: KubeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("entra_rbac.adapters.kube.adapter.PAGE_SIZE", 2)
    for i in range(5):
        await adapter.create_binding(binding("ClusterRoleBinding", f"egb:team:clusterrole:r{i}"))
    assert len(await adapter.list_owned_bindings(OWNER)) == 5


async def test_create_at_a_taken_name_is_already_exists(adapter: KubeAdapter) -> None:
    await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    with pytest.raises(KubeError) as caught:
        await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    assert (caught.value.status, caught.value.reason) == (409, errors.ALREADY_EXISTS)


async def test_merge_patch_with_a_stale_resource_version_is_a_conflict(adapter: KubeAdapter) -> None:
    created = await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    version = created["metadata"]["resourceVersion"]
    subjects = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": OTHER}]
    patched = await adapter.patch_binding(
        "ClusterRoleBinding",
        None,
        "egb:team:clusterrole:view",
        {"metadata": {"resourceVersion": version}, "subjects": subjects},
    )
    assert patched["subjects"] == subjects
    with pytest.raises(KubeError) as caught:
        await adapter.patch_binding(
            "ClusterRoleBinding",
            None,
            "egb:team:clusterrole:view",
            {"metadata": {"resourceVersion": version}, "subjects": []},
        )
    assert (caught.value.status, caught.value.reason) == (409, errors.CONFLICT)


async def test_changing_role_ref_is_invalid(adapter: KubeAdapter) -> None:
    created = await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    changed = {"roleRef": {**created["roleRef"], "name": "edit"}}
    with pytest.raises(KubeError) as caught:
        await adapter.patch_binding("ClusterRoleBinding", None, "egb:team:clusterrole:view", changed)
    assert (caught.value.status, caught.value.reason) == (422, errors.INVALID)


async def test_delete_never_removes_an_object_recreated_at_the_same_name(adapter: KubeAdapter) -> None:
    first = await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    assert await adapter.delete_binding(
        "ClusterRoleBinding",
        None,
        "egb:team:clusterrole:view",
        uid=first["metadata"]["uid"],
        resource_version=None,
    )
    await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view", owner=OTHER))
    with pytest.raises(KubeError) as caught:
        await adapter.delete_binding(
            "ClusterRoleBinding",
            None,
            "egb:team:clusterrole:view",
            uid=first["metadata"]["uid"],
            resource_version=first["metadata"]["resourceVersion"],
        )
    assert caught.value.status == 409
    assert await adapter.get_binding("ClusterRoleBinding", None, "egb:team:clusterrole:view") is not None


async def test_delete_with_a_stale_resource_version_is_refused(adapter: KubeAdapter) -> None:
    created = await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    meta = created["metadata"]
    await adapter.patch_binding("ClusterRoleBinding", None, meta["name"], {"subjects": []})
    with pytest.raises(KubeError) as caught:
        await adapter.delete_binding(
            "ClusterRoleBinding",
            None,
            meta["name"],
            uid=meta["uid"],
            resource_version=meta["resourceVersion"],
        )
    assert (caught.value.status, caught.value.reason) == (409, errors.CONFLICT)


async def test_delete_of_a_missing_binding_reports_already_gone(adapter: KubeAdapter) -> None:
    assert not await adapter.delete_binding(
        "ClusterRoleBinding", None, "egb:none:clusterrole:view", uid=OWNER, resource_version=None
    )


async def test_get_binding_returns_none_when_absent_and_the_object_with_kind_when_present(
    adapter: KubeAdapter,
) -> None:
    await create_namespace(adapter, "payments")
    assert await adapter.get_binding("RoleBinding", "payments", "egb:team:clusterrole:edit") is None
    await adapter.create_binding(binding("RoleBinding", "egb:team:clusterrole:edit", namespace="payments"))
    found = await adapter.get_binding("RoleBinding", "payments", "egb:team:clusterrole:edit")
    assert found is not None
    assert found["kind"] == "RoleBinding"


async def test_create_in_a_missing_namespace_is_not_found(adapter: KubeAdapter) -> None:
    with pytest.raises(KubeError) as caught:
        await adapter.create_binding(binding("RoleBinding", "egb:team:clusterrole:edit", namespace="nowhere"))
    assert (caught.value.status, caught.value.reason) == (404, errors.NOT_FOUND)


async def test_create_in_a_terminating_namespace_is_namespace_terminating(adapter: KubeAdapter) -> None:
    await create_namespace(adapter, "leaving")
    # A finalizer keeps the namespace in Terminating while we write into it.
    await adapter._call(
        "PATCH",
        "/api/v1/namespaces/leaving",
        what="add finalizer",
        body={"metadata": {"finalizers": ["example.com/hold"]}},
        content_type="application/merge-patch+json",
    )
    await adapter._call("DELETE", "/api/v1/namespaces/leaving", what="delete namespace")
    namespaces = {ns.name: ns for ns in await adapter.list_namespaces()}
    assert namespaces["leaving"].terminating
    with pytest.raises(KubeError) as caught:
        await adapter.create_binding(binding("RoleBinding", "egb:team:clusterrole:edit", namespace="leaving"))
    assert (caught.value.status, caught.value.reason) == (403, errors.NAMESPACE_TERMINATING)


async def test_list_namespaces_reports_labels_sorted_by_name(adapter: KubeAdapter) -> None:
    await create_namespace(adapter, "payments", {"team": "payments"})
    namespaces = await adapter.list_namespaces()
    names = [ns.name for ns in namespaces]
    assert names == sorted(names)
    assert {"default", "kube-system", "payments"} <= set(names)
    assert next(ns for ns in namespaces if ns.name == "payments").labels["team"] == "payments"


async def test_roles_are_read_with_their_rules_and_aggregation(adapter: KubeAdapter) -> None:
    await create_namespace(adapter, "payments")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "deployer", "namespace": "payments"},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}],
    }
    await adapter._call(
        "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/roles", what="create Role", body=role
    )
    found = await adapter.get_role("payments", "deployer")
    assert found is not None
    assert found["rules"] == role["rules"]
    assert await adapter.get_role("payments", "missing") is None
    assert await adapter.get_role("default", "deployer") is None
    edit = await adapter.get_cluster_role("edit")
    assert edit is not None
    assert edit["aggregationRule"]["clusterRoleSelectors"]
    assert await adapter.get_cluster_role("nope") is None
    # The aggregation selector of `edit`, evaluated by the server: the roles aggregated into it.
    aggregated = await adapter.list_cluster_roles(edit["aggregationRule"]["clusterRoleSelectors"][0])
    assert aggregated
    assert all(
        r["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true" for r in aggregated
    )


async def test_own_writes_are_recognised_and_others_edits_are_not(adapter: KubeAdapter) -> None:
    created = await adapter.create_binding(binding("ClusterRoleBinding", "egb:team:clusterrole:view"))
    meta = created["metadata"]
    assert adapter.is_own_write(meta["uid"], meta["resourceVersion"])
    # Someone else's edit (a raw call, not through the adapter's write methods) has a new version.
    edited = await adapter._call(
        "PATCH",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/egb:team:clusterrole:view",
        what="edit by hand",
        body={"subjects": []},
        content_type="application/merge-patch+json",
    )
    assert not adapter.is_own_write(meta["uid"], edited["metadata"]["resourceVersion"])
    assert not adapter.is_own_write(meta["uid"], None, deleted=True)
    await adapter.delete_binding(
        "ClusterRoleBinding", None, meta["name"], uid=meta["uid"], resource_version=None
    )
    assert adapter.is_own_write(meta["uid"], None, deleted=True)


async def test_a_batch_of_writes_is_one_thread_job_with_an_outcome_per_write(
    adapter: KubeAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_bindings sends each write as its own request, in order, from one worker-thread job
    (issue 17 point 2: one hand-off per plan, not per write); a failed write is its own outcome
    and the writes after it still go out; each write made is the adapter's own (its watch echo)."""
    await create_namespace(adapter, "batch")
    view = RoleRef("ClusterRole", "view")
    taken = await adapter.create_binding(
        binding("RoleBinding", "egb:team:clusterrole:taken", namespace="batch")
    )
    stale = await adapter.create_binding(
        binding("RoleBinding", "egb:team:clusterrole:stale", namespace="batch")
    )

    def create(name: str) -> Action:
        manifest = binding("RoleBinding", name, namespace="batch")
        return Action(Verb.CREATE, "RoleBinding", "batch", name, view, manifest=manifest)

    actions = [
        create("egb:team:clusterrole:a"),
        create("egb:team:clusterrole:taken"),
        create("egb:team:clusterrole:b"),
        Action(
            Verb.DELETE,
            "RoleBinding",
            "batch",
            "egb:team:clusterrole:stale",
            view,
            uid=stale["metadata"]["uid"],
            resource_version="1",
        ),
        Action(Verb.DELETE, "RoleBinding", "batch", "egb:team:clusterrole:gone", view, uid="no-such-uid"),
    ]
    jobs: list[object] = []
    submit = adapter._executor.submit
    monkeypatch.setattr(adapter._executor, "submit", lambda *a, **k: jobs.append(a) or submit(*a, **k))
    outcomes = await adapter.write_bindings(actions)
    assert len(jobs) == 1
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "NoneType",
        "AlreadyExistsError",
        "NoneType",
        "ConflictError",
        "NoneType",  # already gone: nothing to delete
    ]
    names = {b["metadata"]["name"] for b in await adapter.list_owned_bindings(OWNER)}
    assert names == {f"egb:team:clusterrole:{n}" for n in ("a", "b", "taken", "stale")}
    for name in ("egb:team:clusterrole:a", "egb:team:clusterrole:b"):
        made = await adapter.get_binding("RoleBinding", "batch", name)
        assert made is not None
        assert adapter.is_own_write(made["metadata"]["uid"], made["metadata"]["resourceVersion"])
    assert not adapter.is_own_write(taken["metadata"]["uid"], "other")
