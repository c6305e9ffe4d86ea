"""The sandbox conformance tests are differential: each test that asks for `apiserver` runs on
the sandbox and on the real kube-apiserver (param ids `sandbox` and `real`,
tests/fixtures/servers.py). The real server is the referee; a test that needs a sandbox-only
capability says so with `@pytest.mark.sandbox_only(reason=...)`."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def apiserver(differential_apiserver: Any) -> Any:
    return differential_apiserver
