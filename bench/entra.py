"""The directory benchmarks' shared ground: a sandbox Entra directory serving a document, and the
operator's directory settings reaching it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from entra_rbac.adapters.directory import DirectoryConfig
from entra_rbac_sandbox.entra.server import EntraSandboxThread


@contextmanager
def directory_serving(tmp_path: Path, document: dict[str, Any]) -> Iterator[EntraSandboxThread]:
    """The sandbox directory, started empty and then given `document` (a large document is written
    once, after start-up, rather than parsed twice)."""
    directory_file = tmp_path / "directory.yaml"
    directory_file.write_text("{}\n", encoding="utf-8")
    with EntraSandboxThread(directory_file, state_dir=tmp_path / "entra") as server:
        server.write_directory(document)
        yield server


def directory_config(server: EntraSandboxThread) -> DirectoryConfig:
    """Client-secret settings for `server`, with a 60 s request timeout (a hang guard at size)."""
    return DirectoryConfig(
        tenant_id=server.tenant_id,
        client_id=server.client_id,
        cloud="custom",
        credential="client-secret",
        client_secret=server.client_secret,
        authority_host=server.authority_host,
        graph_url=server.graph_url,
        ca_file=str(server.ca_file),
        cache_ttl=60.0,
        request_timeout=60,
    )
