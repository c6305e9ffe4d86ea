"""Credentials from settings, and secrets/tokens kept out of logs and error messages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from entra_rbac.adapters.directory import DirectoryConfig, EntraDirectory
from entra_rbac.core.entra import GroupLookup
from entra_rbac.core.models import GroupRef, GroupState
from entra_rbac.errors import DirectoryError
from tests.integration.directory.conftest import GraphSandbox, Tenant

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def group_id(graph: GraphSandbox) -> str:
    tenant = Tenant()
    group = tenant.group("Readers")
    graph.write(tenant)
    return group


async def resolve(config: DirectoryConfig, group_id: str) -> GroupState:
    async with EntraDirectory(config) as directory:
        [resolution] = await directory.lookup_groups([GroupLookup(GroupRef(id=group_id))])
    return resolution.state


async def test_workload_identity_reads_the_federated_token_file(
    graph: GraphSandbox, group_id: str, tmp_path: Any
) -> None:
    token_file = graph.server.write_federated_token(tmp_path / "azure-identity-token")
    config = graph.config(
        credential="workload-identity", client_secret=None, federated_token_file=str(token_file)
    )
    assert await resolve(config, group_id) is GroupState.RESOLVED


async def test_certificate_credential(graph: GraphSandbox, group_id: str) -> None:
    config = graph.config(
        credential="certificate",
        client_secret=None,
        certificate_path=str(graph.server.client_certificate_path),
    )
    assert await resolve(config, group_id) is GroupState.RESOLVED


async def test_client_secret_is_warned_once_and_never_logged(
    graph: GraphSandbox, group_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = graph.server.client_secret
    caplog.set_level(logging.DEBUG)
    async with EntraDirectory(graph.config()) as directory:
        for _ in range(3):
            directory.invalidate()
            await directory.lookup_groups([GroupLookup(GroupRef(id=group_id))])
        token = (await directory._credential.get_token(directory.config.graph_scope)).token
    warnings = [
        r for r in caplog.records if "client secret" in r.getMessage() and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert secret not in logged
    assert token not in logged


async def test_errors_never_carry_the_secret_or_token(graph: GraphSandbox, group_id: str) -> None:
    secret = graph.server.client_secret
    graph.fault(r"/directoryObjects/getByIds", method="POST", status=403, count=1)
    async with EntraDirectory(graph.config()) as directory:
        with pytest.raises(DirectoryError) as forbidden:
            await directory.lookup_groups([GroupLookup(GroupRef(id=group_id))])
        token = (await directory._credential.get_token(directory.config.graph_scope)).token
    async with EntraDirectory(graph.config(client_secret=secret + "-wrong")) as directory:
        with pytest.raises(DirectoryError) as token_failure:
            await directory.lookup_groups([GroupLookup(GroupRef(id=group_id))])
    for error in (forbidden.value, token_failure.value):
        assert secret not in str(error)
        assert token not in str(error)
