"""kopf, unmodified, runs an operator against the sandbox: handlers fire on create, update and
delete of a custom resource, status gets patched, finalizers and events work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kubernetes import client

from entra_rbac_sandbox.kube.server import ApiServerThread

from .crd_fixture import GROUP, widget, widget_crd
from .helpers import core, custom, eventually, gone, served

V = "v1alpha1"


class _Operator:
    """A tiny kopf operator in a thread with its own event loop."""

    def __init__(self, server: ApiServerThread) -> None:
        self.seen: list[tuple[str, str]] = []
        self.registry = kopf.OperatorRegistry()
        self.stop_flag: asyncio.Event | None = None
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server = server
        self._register()

    def _register(self) -> None:
        registry = self.registry
        server = self._server

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            ca = str(server.ca_file) if server.ca_file else None
            return kopf.ConnectionInfo(
                server=server.url, token=server.admin_token, ca_path=ca, scheme="Bearer"
            )

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.watching.server_timeout = 10
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()

        @kopf.on.create(GROUP, V, "widgets", registry=registry)
        def created(name: str, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
            self.seen.append(("create", name))
            kopf.info(body, reason="Created", message=f"Saw {name}")
            patch.status["message"] = "created"

        @kopf.on.update(GROUP, V, "widgets", registry=registry)
        def updated(name: str, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
            self.seen.append(("update", name))
            patch.status["message"] = f"size {spec['size']}"

        @kopf.on.delete(GROUP, V, "widgets", registry=registry)
        def deleted(name: str, **_: Any) -> None:
            self.seen.append(("delete", name))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop_flag = asyncio.Event()
        ready_flag = asyncio.Event()

        async def announce() -> None:
            await ready_flag.wait()
            self.ready.set()

        announcer = asyncio.create_task(announce())
        await kopf.operator(
            registry=self.registry,
            standalone=True,
            clusterwide=True,
            stop_flag=self.stop_flag,
            ready_flag=ready_flag,
        )
        announcer.cancel()

    def start(self) -> None:
        self._thread.start()
        assert self.ready.wait(30), "kopf did not become ready"

    def stop(self) -> None:
        if self.stop_flag is not None:
            self._loop.call_soon_threadsafe(self.stop_flag.set)
        self._thread.join(30)


@pytest.fixture
def operator(apiserver: ApiServerThread, kube_api: client.ApiClient) -> Iterator[_Operator]:
    client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(widget_crd())
    served(kube_api, widget_crd())
    running = _Operator(apiserver)
    running.start()
    yield running
    running.stop()


def _status(api: client.ApiClient) -> str | None:
    obj = custom(api).get_cluster_custom_object(GROUP, V, "widgets", "w")
    return (obj.get("status") or {}).get("message")  # type: ignore[no-any-return]


@pytest.mark.sandbox_only(reason="kopf logs in with apiserver.admin_token (the sandbox's bearer token)")
@pytest.mark.timeout(90)
def test_kopf_handlers_fire_on_create_update_and_delete(
    operator: _Operator, kube_api: client.ApiClient, apiserver: ApiServerThread
) -> None:
    api = custom(kube_api)
    api.create_cluster_custom_object(GROUP, V, "widgets", widget("w"))
    eventually(lambda: _status(kube_api) == "created", timeout=30)
    finalizers = api.get_cluster_custom_object(GROUP, V, "widgets", "w")["metadata"]["finalizers"]
    assert finalizers == ["kopf.zalando.org/KopfFinalizerMarker"]

    # kopf must notice its watches ending (as when an API server restarts) and watch again.
    assert apiserver.drop_watches() >= 1
    api.patch_cluster_custom_object(GROUP, V, "widgets", "w", {"spec": {"size": 5}})
    eventually(lambda: _status(kube_api) == "size 5", timeout=30)

    api.delete_cluster_custom_object(GROUP, V, "widgets", "w")
    eventually(lambda: gone(lambda: api.get_cluster_custom_object(GROUP, V, "widgets", "w")), timeout=30)
    assert operator.seen == [("create", "w"), ("update", "w"), ("delete", "w")]
    events = lambda: core(kube_api).list_event_for_all_namespaces().items  # noqa: E731
    posted = eventually(lambda: [e for e in events() if e.involved_object.name == "w"], timeout=10)
    assert (posted[0].reason, posted[0].message, posted[0].metadata.namespace) == (
        "Created",
        "Saw w",
        "default",
    )
