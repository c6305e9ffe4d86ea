"""The CRD corpus (tests/unit/test_crd_corpus.py) on the real kube-apiserver: the models, the CRD
as the sandbox validates it and the real server give the same verdict on every spec.

Each spec is created as an EntraGroupBinding with `dryRun=All` and `fieldValidation=Strict`
(kubectl's default) as cluster admin, against crds/entragroupbindings.yaml installed on the
session's control plane. A valid spec is accepted; an invalid one is refused (422 Invalid, or 400
for a strict-decoding unknown field), and the field the real server names is the one the corpus
records, which the sandbox and the models name too (tests/unit/test_crd_corpus.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from entra_rbac.constants import GROUP, PLURAL, VERSION
from tests.controlplane.harness import ControlPlane
from tests.fixtures.servers import RealServer
from tests.unit.test_crd_corpus import CASES, CRD, _names, crd_errors

CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}"


@pytest.fixture(scope="module")
def real(control_plane: ControlPlane) -> Iterator[RealServer]:
    server = RealServer(control_plane)
    status, _ = server.request("GET", CRD_PATH)
    created = status == 404
    if created:
        status, body = server.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=CRD
        )
        assert status == 201, body
    server.wait_established(f"{PLURAL}.{GROUP}")
    yield server
    if created:
        server.request("DELETE", CRD_PATH)
        server.wait_gone([CRD_PATH])
    server.close()


def real_causes(server: RealServer, spec: Any) -> tuple[int, list[tuple[str, str]]]:
    """The real server's answer to creating the spec: (status, [(field, message)])."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EntraGroupBinding",
        "metadata": {"name": "x"},
        "spec": spec,
    }
    status, answer = server.request(
        "POST",
        f"/apis/{GROUP}/{VERSION}/{PLURAL}",
        body=body,
        query=[("dryRun", "All"), ("fieldValidation", "Strict")],
    )
    if status == 201:
        return status, []
    causes = [
        (c.get("field", ""), f"{c.get('field', '')}: {c.get('message', '')}")
        for c in (answer.get("details") or {}).get("causes") or []
        if c.get("field") != "<nil>"  # "validation rules were not checked ...", as crd_errors drops it
    ]
    # Strict decoding: `strict decoding error: unknown field "spec.x", unknown field "spec.y"`.
    for field in re.findall(r'unknown field "([^"]+)"', answer.get("message", "")):
        causes.append((field, f'{field}: unknown field "{field}"'))
    return status, causes


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_real_server_agrees_with_the_corpus(real: RealServer, case: dict[str, Any]) -> None:
    status, causes = real_causes(real, case["spec"])
    if case.get("valid"):
        assert (status, causes) == (201, []), causes
        return
    assert status in (400, 422), (status, causes)
    assert causes, f"refused ({status}) without naming a field"
    # The field the corpus records (which the sandbox and the models name), or one inside it.
    assert _names(case["path"], causes) or any(f.startswith(case["path"] + ".") for f, _ in causes), causes
    # The sandbox refuses it too, naming at least one of the same fields.
    assert {f for f, _ in crd_errors(case["spec"])} & {f for f, _ in causes}, (
        crd_errors(case["spec"]),
        causes,
    )
