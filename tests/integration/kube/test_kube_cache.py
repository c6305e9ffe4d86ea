"""The kube adapter's cache (adapters.kube.cache / informer) against a real API server over HTTPS.

Each test runs on the sandbox and on the real kube-apiserver unless marked: the mirror follows
watch events, the adapter's reads see its own writes at once and their echoes are never told as
someone else's change, a 410 Gone lists again, and a resync reports what a lost event left wrong.
Conditions are waited for with a deadline, never slept on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.adapters.kube.cache import ClusterCache
from entra_rbac.adapters.kube.transport import MERGE_PATCH
from entra_rbac.constants import API_VERSION, KIND, MANAGED_BY_LABEL, MANAGED_BY_VALUE, PLURAL
from entra_rbac.core.desired import RoleRef
from entra_rbac.core.naming import owner_labels
from entra_rbac.core.plan import Action, Verb
from entra_rbac.core.subjects import Subject, rendered_subjects

NS = "cache-test"
OWNER = "7a1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f"
DEADLINE = 30.0

Heard = list[tuple[str, str]]


def binding(name: str, owner: str = OWNER, group: str = "g1") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": NS, "labels": owner_labels(owner)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}],
    }


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE:.0f}s: {what}")
        await asyncio.sleep(0.02)  # polling with a deadline


async def as_admin(adapter: KubeAdapter, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """Someone else's request (the admin's, outside the adapter, so the cache is not told)."""
    kind = MERGE_PATCH if method == "PATCH" else "application/json"
    return await asyncio.to_thread(
        adapter.transport.request, method, path, what="test", body=body, content_type=kind
    )


def names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


@pytest.fixture
async def cache(adapter: KubeAdapter, egb_crd: None) -> AsyncIterator[ClusterCache]:
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    await as_admin(
        adapter, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings", binding("b1")
    )
    started = adapter.start_cache(resync=3600)
    try:
        synced = await started.wait_synced(DEADLINE)
        assert synced, [i.what for i in started.informers if not i.synced.is_set()]
        yield started
    finally:
        await adapter.stop_cache()


def listen(cache: ClusterCache) -> Heard:
    heard: Heard = []
    cache.role_bindings.listeners.append(
        lambda kind, old, new: heard.append((kind, (new or old or {})["metadata"]["name"]))
    )
    return heard


RB = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings"
EGB = f"/apis/{API_VERSION}/{PLURAL}"


async def test_the_cache_follows_someone_elses_changes_and_tells_them(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    heard = listen(cache)
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1"]  # from the first list
    await as_admin(adapter, "POST", RB, binding("b2"))
    await as_admin(adapter, "PATCH", f"{RB}/b1", binding("b1", group="g2"))
    await until(lambda: ("MODIFIED", "b1") in heard, "the edit of b1 heard")
    await as_admin(adapter, "DELETE", f"{RB}/b1")
    await until(lambda: ("DELETED", "b1") in heard, "the deletion of b1 heard")
    assert heard == [("ADDED", "b2"), ("MODIFIED", "b1"), ("DELETED", "b1")]
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b2"]
    # Another owner's bindings are not this owner's, as the server's selector would say.
    assert await adapter.list_owned_bindings("0a1c2f0e-8e4b-4a8e-9d4c-1b2a3c4d5e6f") == []


async def test_reads_see_our_own_writes_at_once_and_their_echoes_are_not_told(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    heard = listen(cache)
    created = await adapter.create_binding(binding("mine"))
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1", "mine"]  # no wait
    patched = await adapter.patch_binding(
        "RoleBinding", NS, "mine", {"subjects": binding("x", group="g9")["subjects"]}
    )
    [seen] = [b for b in await adapter.list_owned_bindings(OWNER) if b["metadata"]["name"] == "mine"]
    assert seen["subjects"][0]["name"] == "g9"
    assert seen["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
    assert await adapter.delete_binding(
        "RoleBinding", NS, "mine", uid=created["metadata"]["uid"], resource_version=None
    )
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1"]
    # A marker written by someone else after ours: once it is heard, every echo has arrived.
    await as_admin(adapter, "POST", RB, binding("marker"))
    await until(lambda: ("ADDED", "marker") in heard, "the marker heard")
    assert heard == [("ADDED", "marker")]  # nothing of ours
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1", "marker"]


async def test_each_state_of_our_own_writes_is_prepared_once_not_again_for_its_echo(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    """The second sighting of a write of ours (its echo after its answer, or the answer after the
    echo) is the same state: it is not trimmed, interned and shared again only to be dropped, and
    a deletion is not prepared at all (issue 17 point 2: the echoes of a create burst)."""
    heard, prepared = listen(cache), []
    informer = cache.role_bindings
    prepare = informer.prepare

    def counting(obj: Any) -> Any:
        prepared.append(obj["metadata"]["name"])
        return prepare(obj)

    informer.prepare = counting
    created = await adapter.create_binding(binding("mine"))
    await adapter.patch_binding("RoleBinding", NS, "mine", {"subjects": binding("x", group="g9")["subjects"]})
    assert await adapter.delete_binding(
        "RoleBinding", NS, "mine", uid=created["metadata"]["uid"], resource_version=None
    )
    await as_admin(adapter, "POST", RB, binding("marker"))
    await until(lambda: ("ADDED", "marker") in heard, "the marker heard (every echo before it)")
    assert prepared == ["mine", "mine", "marker"]  # the created and the patched state, once each
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1", "marker"]


async def test_the_cache_answers_namespaces_roles_and_selected_cluster_roles(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    before = len(cache.namespaces.objects)
    assert NS in {n.name for n in await adapter.list_namespaces()}
    edit = await adapter.get_cluster_role("edit")
    assert edit is not None
    assert edit.get("aggregationRule")
    selector = edit["aggregationRule"]["clusterRoleSelectors"][0]
    cached = names(await adapter.list_cluster_roles(selector))
    cache_off, adapter.cache = adapter.cache, None
    try:
        assert cached == names(await adapter.list_cluster_roles(selector))  # as the server selects
    finally:
        adapter.cache = cache_off
    assert await adapter.get_role(NS, "nope") is None
    await as_admin(
        adapter,
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    )
    await until(lambda: cache.roles.get((NS, "reader")) is not None, "the Role in the cache")
    role = await adapter.get_role(NS, "reader")
    assert role is not None
    assert role["rules"][0]["verbs"] == ["get"]
    assert len(cache.namespaces.objects) == before


async def test_a_resync_reports_what_a_lost_event_left_wrong(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    heard = listen(cache)
    # As if the deletion of a binding and the creation of another had been missed.
    ghost = {
        **binding("ghost"),
        "metadata": {**binding("ghost")["metadata"], "uid": "gone", "resourceVersion": "1"},
    }
    cache.role_bindings.observe(ghost)
    cache.role_bindings._remove((NS, "b1"), notify=False)  # the missed event
    assert names(await adapter.list_owned_bindings(OWNER)) == ["ghost"]
    lists = cache.role_bindings.lists
    await cache.role_bindings.relist()
    assert cache.role_bindings.lists == lists + 1
    assert sorted(heard) == [("ADDED", "b1"), ("DELETED", "ghost")]
    assert names(await adapter.list_owned_bindings(OWNER)) == ["b1"]


@pytest.mark.sandbox_only(
    reason="compacts the history and drops watches (the real server's watch cache serves old versions)"
)
async def test_a_watch_resumed_from_a_compacted_version_lists_again(
    adapter: KubeAdapter, cache: ClusterCache, apiserver: Any
) -> None:
    heard = listen(cache)
    lists = cache.role_bindings.lists
    # Another kind moves the server's version on; compaction then forgets the bindings' version.
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": "cache-other"}})
    apiserver.compact()
    apiserver.drop_watches()
    await until(lambda: cache.role_bindings.lists == lists + 1, "a second list after 410 Gone")
    await as_admin(adapter, "POST", RB, binding("after"))
    await until(lambda: ("ADDED", "after") in heard, "the watch resumed after the list")
    assert names(await adapter.list_owned_bindings(OWNER)) == ["after", "b1"]
    assert {MANAGED_BY_LABEL: MANAGED_BY_VALUE}.items() <= cache.role_bindings.get((NS, "after"))["metadata"][
        "labels"
    ].items()  # type: ignore[index]


async def test_bindings_listed_in_pages_and_written_share_one_subject_list(
    adapter: KubeAdapter, egb_crd: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User mode's memory (issue 17 point 7): equal subject lists are held once, parsed, however
    they arrived (a list over several pages, a watch event, our write's answer); a list someone
    else changed is its own, and a list the operator would not write is kept as it came."""
    monkeypatch.setattr("entra_rbac.adapters.kube.cache.BINDING_PAGE_SIZE", 2)
    users = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"u{i}@x"} for i in range(30)]
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    for i in range(5):
        await as_admin(adapter, "POST", RB, {**binding(f"b{i}"), "subjects": users})
    started = adapter.start_cache(resync=3600)
    try:
        assert await started.wait_synced(DEADLINE)
        assert started.role_bindings.lists == 1
        await adapter.create_binding({**binding("mine"), "subjects": users})
        await as_admin(adapter, "POST", RB, {**binding("theirs"), "subjects": users})
        await as_admin(adapter, "POST", RB, {**binding("other"), "subjects": users[:-1]})
        odd = [{"kind": "ServiceAccount", "name": "ci", "namespace": NS}]
        await as_admin(adapter, "POST", RB, {**binding("odd"), "subjects": odd})
        await until(lambda: len(started.role_bindings.objects) == 9, "every binding in the cache")
        held = {b["metadata"]["name"]: b["subjects"] for b in await adapter.list_owned_bindings(OWNER)}
        shared = held["b0"]
        assert all(held[n] is shared for n in ("b1", "b2", "b3", "b4", "mine", "theirs"))
        assert shared == users
        assert shared.parsed == tuple((u["kind"], u["name"]) for u in users)  # type: ignore[attr-defined]
        assert held["other"] == users[:-1]
        assert held["other"] is not shared
        assert held["odd"] == odd
        assert not hasattr(held["odd"], "parsed")
    finally:
        await adapter.stop_cache()


async def test_bindings_listed_watched_and_written_share_their_labels_owner_reference_and_role_ref(
    adapter: KubeAdapter, cache: ClusterCache
) -> None:
    """Memory (issue 17 point 6): every binding of a resource carries the same labels, owner
    reference and roleRef; the cache holds each once, however the binding arrived, and a binding
    with another value holds its own."""
    # A real owner: an owner reference to a missing one is the garbage collector's to delete.
    resource = await as_admin(adapter, "POST", EGB, {"apiVersion": API_VERSION, "kind": KIND,
                              "metadata": {"name": "cache-owner"}, "spec": {"groups": []}})  # fmt: skip
    try:
        await _share(adapter, cache, resource["metadata"]["uid"])
    finally:
        await as_admin(adapter, "DELETE", f"{EGB}/cache-owner")


async def _share(adapter: KubeAdapter, cache: ClusterCache, owner_uid: str) -> None:
    ref = {"apiVersion": API_VERSION, "kind": KIND, "name": "cache-owner", "uid": owner_uid,
           "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    owned = {**binding("w1"), "metadata": {**binding("w1")["metadata"], "ownerReferences": [ref]}}
    await as_admin(adapter, "POST", RB, owned)
    await as_admin(adapter, "POST", RB, {**owned, "metadata": {**owned["metadata"], "name": "w2"}})
    await adapter.create_binding({**owned, "metadata": {**owned["metadata"], "name": "w3"}})
    other = {**binding("w4"), "roleRef": {**binding("w4")["roleRef"], "name": "edit"}}
    await as_admin(adapter, "POST", RB, other)
    await until(lambda: len(cache.role_bindings.objects) == 5, "every binding in the cache")
    held = {b["metadata"]["name"]: b for b in await adapter.list_owned_bindings(OWNER)}
    first = held["b1"]  # from the first list
    for name in ("w1", "w2", "w3", "w4"):
        assert held[name]["metadata"]["labels"] is first["metadata"]["labels"]
    assert held["w2"]["metadata"]["ownerReferences"] is held["w1"]["metadata"]["ownerReferences"]
    assert held["w3"]["metadata"]["ownerReferences"] is held["w1"]["metadata"]["ownerReferences"]
    assert held["w1"]["metadata"]["ownerReferences"] == [ref]
    assert all(held[n]["roleRef"] is first["roleRef"] for n in ("w1", "w2", "w3"))
    assert held["w4"]["roleRef"] is not first["roleRef"]
    assert held["w4"]["roleRef"]["name"] == "edit"


async def test_big_lists_are_read_from_bytes_once_known_and_a_hand_edit_is_seen(
    adapter: KubeAdapter, egb_crd: None
) -> None:
    """User mode's CPU (issue 17 point 7; core.subject_bytes): two bindings written with the same
    1,000 subjects share one list; after the first, answers and watch echoes carrying those
    exact bytes are not decoded into 1,000 dicts again; a subject added and one removed by hand
    is a list of its own, exactly as the server holds it (so the plan heals it)."""
    users = [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"u{i:04d}@x"} for i in range(1000)
    ]
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    started = adapter.start_cache(resync=3600)
    try:
        assert await started.wait_synced(DEADLINE)
        first = await adapter.create_binding({**binding("a"), "subjects": users})
        second = await adapter.create_binding({**binding("b"), "subjects": users})
        # A marker written after ours: once it is heard, both echoes have arrived.
        await as_admin(adapter, "POST", RB, binding("marker"))
        await until(lambda: len(started.role_bindings.objects) == 3, "both bindings and the marker")
        held = {b["metadata"]["name"]: b["subjects"] for b in await adapter.list_owned_bindings(OWNER)}
        assert held["a"] is held["b"] is second["subjects"]
        assert held["a"] == users == first["subjects"]
        recognised = started.subjects.encoded.recognised
        assert recognised >= 2  # the second answer, and each echo that came after the first answer

        edited = [*users[1:], {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@x"}]
        await as_admin(adapter, "PATCH", f"{RB}/b", {"subjects": edited})
        await until(
            lambda: started.role_bindings.objects[(NS, "b")]["subjects"] == edited,
            "the hand edit in the cache",
        )
        mine = started.role_bindings.objects[(NS, "b")]["subjects"]
        assert mine is not held["a"]
        names = {name for _, name in mine.parsed}
        assert "mallory@x" in names
        assert "u0000@x" not in names
        assert len(names) == 1000
        assert started.role_bindings.objects[(NS, "a")]["subjects"] is held["a"]
    finally:
        await adapter.stop_cache()


async def test_a_listed_page_holding_known_lists_is_read_around_their_bytes(
    adapter: KubeAdapter, egb_crd: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart (issue 17 point 7): the bindings are listed page by page, and once a page has
    been taken in, the lists it held are known; every later item carrying one of them byte for
    byte is given it without decoding its 1,000 subjects (a resync likewise, every item); a hand
    edit is decoded and held as the server has it."""
    monkeypatch.setattr("entra_rbac.adapters.kube.cache.BINDING_PAGE_SIZE", 2)
    users = [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"u{i:04d}@x"} for i in range(1000)
    ]
    edited = [*users[:-1], {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@x"}]
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    for i in range(7):  # pages b0 b1 | b2 b3 | b4 b5 | b6; b4 edited by hand
        await as_admin(adapter, "POST", RB, {**binding(f"b{i}"), "subjects": edited if i == 4 else users})
    started = adapter.start_cache(resync=3600)
    try:
        assert await started.wait_synced(DEADLINE)
        objects = started.role_bindings.objects
        assert started.subjects.encoded.recognised == 4  # b2 b3 b5 b6: after the first page
        shared = objects[(NS, "b0")]["subjects"]
        assert all(objects[(NS, f"b{i}")]["subjects"] is shared for i in (1, 2, 3, 5, 6))
        assert shared == users
        assert objects[(NS, "b4")]["subjects"] == edited
        assert objects[(NS, "b4")]["subjects"] is not shared
        await started.role_bindings.relist()
        assert started.subjects.encoded.recognised == 4 + 7
        assert objects[(NS, "b4")]["subjects"] == edited
    finally:
        await adapter.stop_cache()


async def test_the_answers_of_writes_carrying_a_planned_list_are_read_from_bytes_from_the_first(
    adapter: KubeAdapter, egb_crd: None
) -> None:
    """Issue 17 point 7: a plan's writes go out as one thread job and are taken into the cache
    after it, so the list they carry was not held yet when their answers came back and every one
    of them was decoded whole (1,000 dicts each; hundreds per group in the 100 x 20 benchmark).
    `write_bindings` holds the plan's list while the job is out: each answer is recognised by its
    bytes. Unlabelled bindings: no watch echo reaches the cache, so only the answers count."""
    await as_admin(adapter, "POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    started = adapter.start_cache(resync=3600)
    try:
        assert await started.wait_synced(DEADLINE)
        planned = rendered_subjects(tuple(Subject("User", f"u{i:04d}@x") for i in range(1000)))
        view = RoleRef("ClusterRole", "view")

        def create(name: str) -> Action:
            manifest = {**binding(name), "metadata": {"name": name, "namespace": NS}, "subjects": planned}
            return Action(Verb.CREATE, "RoleBinding", NS, name, view, manifest=manifest)

        assert await adapter.write_bindings([create(f"planned-{i}") for i in range(5)]) == [None] * 5
        assert started.subjects.encoded.recognised == 5
        written = await as_admin(adapter, "GET", f"{RB}/planned-4")
        assert written["subjects"] == planned
    finally:
        await adapter.stop_cache()
