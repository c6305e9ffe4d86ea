"""`ClusterReader.pages`, the read `kubectl entra report` streams through: every item once, in the
API server's order, a page at a time while the next page is already being asked for; a page that
fails fails the whole list (nothing is decided from part of it)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_rbac.adapters.kube import KubeTransport, build_api_client
from entra_rbac.adapters.kube.reader import ClusterReader
from entra_rbac.errors import KubeError

NAMESPACE = "reader-pages"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


@pytest.fixture
def configmaps(transport: KubeTransport) -> list[str]:
    transport.request(
        "POST", "/api/v1/namespaces", what="create namespace", body=_object("Namespace", NAMESPACE)
    )
    names = [f"cm-{i}" for i in range(5)]
    for name in reversed(names):
        transport.request("POST", PATH, what="create ConfigMap", body=_object("ConfigMap", name))
    return names


def _object(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}


def test_pages_yield_every_item_once_in_order_two_at_a_time(
    transport: KubeTransport, configmaps: list[str]
) -> None:
    pages = list(ClusterReader(transport, page_size=2).pages(PATH, what="list ConfigMaps"))
    assert [[item["metadata"]["name"] for item in page] for page in pages] == [
        configmaps[0:2],
        configmaps[2:4],
        configmaps[4:],
    ]


@pytest.mark.sandbox_only(reason="fault injection on the second page")
def test_a_failed_later_page_fails_the_whole_list(apiserver: Any, configmaps: list[str]) -> None:
    apiserver.faults.add_fault(f"^{PATH}$", method="GET", delay_ms=1, count=1)  # the first page passes
    apiserver.faults.add_fault(f"^{PATH}$", method="GET", status=500, count=-1)
    with build_api_client(str(apiserver.kubeconfig)) as api:
        pages = ClusterReader(KubeTransport(api, retries=0), page_size=2).pages(PATH, what="list ConfigMaps")
        assert [item["metadata"]["name"] for item in next(pages)] == configmaps[0:2]
        with pytest.raises(KubeError, match="list ConfigMaps"):
            next(pages)
