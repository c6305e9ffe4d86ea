"""The sandbox conformance tests are differential: each test that asks for `apiserver` runs on
the sandbox and on the real kube-apiserver (param ids `sandbox` and `real`,
tests/fixtures/servers.py). The real server is the referee; a test that needs a sandbox-only
capability says so with `@pytest.mark.sandbox_only(reason=...)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from .helpers import served

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "entragroupbindings.yaml"


@pytest.fixture
def apiserver(differential_apiserver: Any) -> Any:
    return differential_apiserver


@pytest.fixture
def egb(kube_api: client.ApiClient) -> dict[str, Any]:
    """The product's EntraGroupBinding CRD (crds/), installed and served."""
    crd = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(body=crd)
    served(kube_api, crd)
    return dict(crd)
