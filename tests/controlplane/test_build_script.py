"""hack/controlplane/build.sh without building: KUBEBUILDER_ASSETS, the cache folder, no Go."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.controlplane.binaries import BINARIES, HACK, BinariesNotFoundError, cache_folder

BUILD = HACK / "build.sh"


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}  # /usr/bin, /bin: no Go
    return subprocess.run([str(BUILD)], env={**base, **env}, capture_output=True, text=True, check=False)


def _fake_binaries(folder: Path, names: tuple[str, ...] = BINARIES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    return folder


def test_kubebuilder_assets_is_used_and_nothing_is_built(tmp_path: Path) -> None:
    assets = _fake_binaries(tmp_path / "assets")
    done = _run({"KUBEBUILDER_ASSETS": str(assets), "ENTRA_RBAC_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(assets)
    assert not (tmp_path / "cache").exists()


def test_kubebuilder_assets_without_all_three_binaries_is_refused(tmp_path: Path) -> None:
    assets = _fake_binaries(tmp_path / "assets", ("etcd", "kube-apiserver"))
    done = _run({"KUBEBUILDER_ASSETS": str(assets)})
    assert done.returncode != 0
    assert "does not hold all of" in done.stderr


def test_binaries_in_the_cache_folder_are_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_RBAC_CACHE", str(tmp_path / "cache"))
    folder = _fake_binaries(cache_folder())  # the harness's rule and build.sh's agree on the folder
    done = _run({"ENTRA_RBAC_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(folder)


def test_without_go_and_without_kubebuilder_assets_one_message_names_both_remedies(tmp_path: Path) -> None:
    done = _run({"ENTRA_RBAC_CACHE": str(tmp_path / "cache")})
    assert done.returncode != 0
    assert done.stdout == ""
    assert "install Go 1.26" in done.stderr
    assert "KUBEBUILDER_ASSETS" in done.stderr


def test_an_older_minor_has_its_own_cache_folder_in_both_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRA_RBAC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ENTRA_RBAC_KUBERNETES", "1.30")
    folder = _fake_binaries(cache_folder())
    assert folder.name.startswith("k8s-v1.30."), folder
    done = _run({"ENTRA_RBAC_CACHE": str(tmp_path / "cache"), "ENTRA_RBAC_KUBERNETES": "1.30"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(folder)


def test_a_minor_without_a_wrapper_module_is_refused_naming_those_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _run({"ENTRA_RBAC_CACHE": str(tmp_path / "cache"), "ENTRA_RBAC_KUBERNETES": "1.29"})
    assert done.returncode != 0
    assert "ENTRA_RBAC_KUBERNETES=1.29: no wrapper module" in done.stderr
    assert "1.30" in done.stderr
    monkeypatch.setenv("ENTRA_RBAC_KUBERNETES", "1.29")
    with pytest.raises(BinariesNotFoundError, match=r"ENTRA_RBAC_KUBERNETES=1\.29: .*1\.30"):
        cache_folder()
