"""The product and the sandbox are two distributions: the product's wheel holds the product alone,
its CLI finds `sandbox` and `demo` through an entry point, and says what to install without them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from entra_rbac import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def product_wheel(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file names inside the product's wheel, built from this checkout with its real backend."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("entra_rbac_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_product_wheel_holds_the_package_and_no_sandbox(product_wheel: list[str]) -> None:
    packages = {
        name.split("/", 1)[0] for name in product_wheel if not name.startswith("entra_rbac_operator-")
    }
    assert packages == {"entra_rbac"}
    assert "entra_rbac/reconciler/reconcile.py" in product_wheel
    assert not [name for name in product_wheel if "sandbox" in name.lower()]


def test_product_wheel_has_no_tests_docs_or_tools(product_wheel: list[str]) -> None:
    stray = [
        name
        for name in product_wheel
        if not name.startswith(("entra_rbac/", "entra_rbac_operator-")) or name.startswith("entra_rbac/tests")
    ]
    assert stray == []
    assert all(name.endswith((".py", ".typed")) for name in product_wheel if name.startswith("entra_rbac/"))


def test_the_installed_sandbox_adds_its_commands_through_the_entry_point() -> None:
    result = CliRunner().invoke(cli.main, ["sandbox", "--help"])
    assert result.exit_code == 0, result.output
    assert "--directory" in result.output
    assert cli.main.commands["demo"].callback.__module__ == "entra_rbac_sandbox.cli"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["sandbox", "demo"])
def test_without_the_sandbox_its_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    bare = click.Group("entra-rbac")
    cli._add_plugins(bare)
    result = CliRunner().invoke(bare, [name, "--directory", "x.yaml"])
    assert result.exit_code == 2
    assert "make sandbox" in result.output
    assert "pip install -e ./sandbox" in result.output


def test_the_licence_file_is_the_one_both_distributions_declare(product_wheel: list[str]) -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    for pyproject in (ROOT / "pyproject.toml", ROOT / "sandbox" / "pyproject.toml"):
        assert 'license = "Apache-2.0"' in pyproject.read_text(encoding="utf-8")
    assert any(name.endswith("licenses/LICENSE") for name in product_wheel)
