"""List and watch through the official client: selectors, paging, resume, 410, bookmarks."""

from __future__ import annotations

import pytest
from kubernetes import client, watch

from entra_rbac_sandbox.kube.server import ApiServerThread

from .helpers import api_error, configmap, core, raw


@pytest.fixture
def labelled(kube_api: client.ApiClient) -> client.CoreV1Api:
    api = core(kube_api)
    for name, labels in [
        ("a", {"team": "payments", "tier": "web"}),
        ("b", {"team": "payments", "tier": "db"}),
        ("c", {"team": "search"}),
        ("d", {}),
    ]:
        api.create_namespaced_config_map("default", configmap(name, labels))
    return api


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=payments", ["a", "b"]),
        ("team==payments,tier=db", ["b"]),
        ("team!=payments", ["c", "d"]),
        ("team in (payments,search)", ["a", "b", "c"]),
        ("team notin (payments)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_list_filters_by_label_selector(
    labelled: client.CoreV1Api, selector: str, expected: list[str]
) -> None:
    items = labelled.list_namespaced_config_map("default", label_selector=selector).items
    assert [i.metadata.name for i in items] == expected


def test_a_malformed_label_selector_is_a_bad_request(labelled: client.CoreV1Api) -> None:
    error = api_error(lambda: labelled.list_namespaced_config_map("default", label_selector="team in (a"))
    assert error.status == 400


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=c", ["c"]),
        ("metadata.name!=c", ["a", "b", "d"]),
        ("metadata.namespace=default", ["a", "b", "c", "d"]),
    ],
)
def test_list_filters_by_field_selector(
    labelled: client.CoreV1Api, selector: str, expected: list[str]
) -> None:
    items = labelled.list_namespaced_config_map("default", field_selector=selector).items
    assert [i.metadata.name for i in items] == expected


def test_unsupported_field_selector_is_refused(labelled: client.CoreV1Api) -> None:
    assert (
        api_error(lambda: labelled.list_namespaced_config_map("default", field_selector="data.k=v")).status
        == 400
    )


def test_limit_and_continue_page_through_everything(labelled: client.CoreV1Api) -> None:
    seen, token = [], None
    while True:
        page = labelled.list_namespaced_config_map("default", limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 4 - len(seen)
    assert seen == ["a", "b", "c", "d"]


def test_paging_with_a_label_selector_leaves_the_remaining_count_unset(labelled: client.CoreV1Api) -> None:
    """The real server cannot know how many further objects match a selector without reading them,
    so it leaves remainingItemCount unset; the sandbox pages the same way, reading only a page."""
    seen, token = [], None
    while True:
        page = labelled.list_namespaced_config_map("default", label_selector="team", limit=1, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        assert page.metadata.remaining_item_count is None
        if not token:
            break
    assert seen == ["a", "b", "c"]


def test_list_across_namespaces_and_in_one(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespace({"metadata": {"name": "other"}})
    api.create_namespaced_config_map("default", configmap("x"))
    api.create_namespaced_config_map("other", configmap("y"))
    everywhere = {
        (i.metadata.namespace, i.metadata.name)
        for i in api.list_config_map_for_all_namespaces().items
        if i.metadata.namespace != "kube-system"  # the real control plane keeps its own there
    }
    assert everywhere == {("default", "x"), ("other", "y")}
    assert [i.metadata.name for i in api.list_namespaced_config_map("other").items] == ["y"]


def _events(api: client.CoreV1Api, **kwargs: object) -> list[tuple[str, str]]:
    stream = watch.Watch().stream(api.list_namespaced_config_map, "default", timeout_seconds=1, **kwargs)
    return [(e["type"], e["object"].metadata.name) for e in stream]


def test_watch_from_a_resource_version_replays_only_newer_events(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("old"))
    rv = api.list_namespaced_config_map("default").metadata.resource_version
    api.create_namespaced_config_map("default", configmap("new"))
    api.delete_namespaced_config_map("old", "default")
    assert _events(api, resource_version=rv) == [("ADDED", "new"), ("DELETED", "old")]


def test_watch_without_resource_version_starts_with_the_current_objects(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("here"))
    assert _events(api) == [("ADDED", "here")]


def test_watch_with_a_selector_sees_objects_leave_and_enter_it(kube_api: client.ApiClient) -> None:
    api = core(kube_api)
    api.create_namespaced_config_map("default", configmap("m", {"team": "a"}))
    rv = api.list_namespaced_config_map("default").metadata.resource_version
    api.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"team": "b"}}})
    api.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"team": "a"}}})
    assert _events(api, resource_version=rv, label_selector="team=a") == [("DELETED", "m"), ("ADDED", "m")]


@pytest.mark.real_diverges(
    reason="real sends a bookmark about once a minute; the sandbox fixture every 0.5 s"
)
def test_watch_sends_bookmarks_when_asked(kube_api: client.ApiClient) -> None:
    rv = core(kube_api).list_namespaced_config_map("default").metadata.resource_version
    status, text = raw(
        kube_api,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        query=[
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", rv),
            ("timeoutSeconds", "1"),
        ],
    )
    assert status == 200
    assert '"type":"BOOKMARK"' in text


def test_watch_ends_after_timeout_seconds(kube_api: client.ApiClient) -> None:
    import time

    started = time.monotonic()
    assert _events(core(kube_api), resource_version="0") == []
    assert time.monotonic() - started < 5


@pytest.mark.sandbox_only(reason="apiserver.drop_watches")
def test_dropping_watches_ends_open_streams(kube_api: client.ApiClient, apiserver: ApiServerThread) -> None:
    import threading

    api = core(kube_api)
    ended = threading.Event()

    def follow() -> None:
        for _ in watch.Watch().stream(api.list_namespaced_config_map, "default", timeout_seconds=60):
            pass
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    from .helpers import eventually

    eventually(lambda: apiserver.call(lambda s: s.cluster.store.open_watch_count()) == 1)
    assert apiserver.drop_watches() == 1
    assert ended.wait(10)
