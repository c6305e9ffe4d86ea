"""The directory file: validation naming the field, reloads on change, the last good one kept."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from entra_rbac_sandbox.entra.directory import DirectoryFile, DirectoryFileError, parse_directory
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import group, guid, sample, user


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "the top level must be a mapping"),
        ({"groupz": []}, "groupz: Extra inputs are not permitted"),
        (
            {"users": [{"id": "nope", "userPrincipalName": "a@b"}]},
            r"users\[0\]\.id: Value error, must be a GUID",
        ),
        ({"users": [{"id": guid("a")}]}, r"users\[0\]\.userPrincipalName: Field required"),
        (
            {"users": [{"id": guid("a"), "userPrincipalName": "a@b", "userType": "Admin"}]},
            r"users\[0\]\.userType: Input should be 'Member' or 'Guest'",
        ),
        ({"groups": [{"id": guid("g")}]}, r"groups\[0\]\.displayName: Field required"),
        ({"groups": [group("g", ["bad"])]}, r"groups\[0\]\.members: Value error, must be a GUID"),
        (
            {"groups": [group("g", [guid("ghost")])]},
            r"groups\[0\]\.members\[0\]: no object in the file has id",
        ),
        (
            {"users": [user("a")], "groups": [{**group("g"), "id": guid("a")}]},
            r"groups\[0\]\.id: .* is used twice",
        ),
        (
            {"servicePrincipals": [{"id": guid("s"), "appId": guid("a"), "displayName": "s", "kind": "x"}]},
            r"servicePrincipals\[0\]\.kind: Extra inputs",
        ),
        (
            {"groups": [{**group("g"), "deleted": "maybe"}]},
            r"groups\[0\]\.deleted: Input should be a valid boolean",
        ),
    ],
)
def test_bad_directory_names_the_field(document: Any, message: str) -> None:
    with pytest.raises(DirectoryFileError, match=message):
        parse_directory(document, "dir.yaml")


def test_the_sample_tenant_parses() -> None:
    directory = parse_directory(sample())
    assert len(directory.groups()) == 4  # Retired is deleted
    assert directory.get(guid("Retired")) is None
    assert directory.get(guid("alice").upper()) is not None  # ids are case-insensitive


def test_missing_or_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DirectoryFileError, match="cannot be read"):
        DirectoryFile(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("groups: [", encoding="utf-8")
    with pytest.raises(DirectoryFileError, match="not valid YAML"):
        DirectoryFile(tmp_path / "bad.yaml")


def _display_name(http: httpx.Client, group_id: str) -> str:
    return str(http.get(f"/groups/{group_id}").json()["displayName"])


def test_quick_same_size_rewrites_are_seen(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client
) -> None:
    path = Path(entra_directory.directory_file)
    for name in ("Ops-1", "Ops-2", "Ops-3"):
        # Same length, written in place within one timestamp tick: size and mtime may not move.
        path.write_text(yaml.safe_dump({"groups": [{**group("x"), "displayName": name}]}), encoding="utf-8")
        assert _display_name(graph_http, guid("x")) == name


def test_malformed_rewrite_keeps_the_last_good_directory_and_says_why(
    entra_directory: EntraSandboxThread, graph_http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    entra_directory.write_directory({"groups": [group("Ops")]})
    assert _display_name(graph_http, guid("Ops")) == "Ops"
    caplog.set_level(logging.WARNING, logger="entra_rbac_sandbox.entra.directory")
    entra_directory.write_directory({"groups": [{"id": guid("Ops")}]})
    for _ in range(3):
        assert _display_name(graph_http, guid("Ops")) == "Ops"
    assert "groups[0].displayName: Field required" in (entra_directory.directory.last_error or "")
    warnings = [r for r in caplog.records if "Kept the last good directory" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not on every request
    entra_directory.write_directory({"groups": [group("Ops-renamed")]})
    answer = graph_http.get("/groups", params={"$filter": "displayName eq 'Ops-renamed'"})
    assert [g["displayName"] for g in answer.json()["value"]] == ["Ops-renamed"]
    assert entra_directory.directory.last_error is None


def test_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(sample()), encoding="utf-8")
    watched = DirectoryFile(path, settle_seconds=0.2)
    first = watched.current()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert watched.current() is first
        if watched.loads == 1 and time.time() - path.stat().st_mtime > 0.3:
            break
    assert watched.loads == 1
