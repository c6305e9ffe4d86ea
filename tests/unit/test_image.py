"""The image and its release: what the Dockerfile's runtime stage holds, and the release workflow.

- The build context is an allowlist (.dockerignore) of the product alone; the build stage copies
  only the product; the runtime stage copies only the built virtual environment and runs as a
  numeric non-root user.
- .github/workflows/*.yml pass the real actionlint (built from Go modules by
  `hack/tools/build.sh actionlint`, `make tools`), which is shown to refuse a broken workflow.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "hack" / "tools" / "build.sh"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# Paths of the repository that are not the product and must never reach the image.
NOT_THE_PRODUCT = ("sandbox", "tests", "hack", "bench", "examples", "docs", "charts", "deploy", ".venv")


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_build_context_is_the_product_alone() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context is an allowlist: everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "operator"}


def test_build_stage_copies_only_the_product() -> None:
    build, _runtime = _stages()
    copied = [args for instruction, args in build if instruction in {"COPY", "ADD"}]
    sources = {source.rstrip("/") for args in copied for source in args.split()[:-1]}
    assert sources == {"pyproject.toml", "README.md", "operator"}
    assert not any(path in sources for path in NOT_THE_PRODUCT)


def test_runtime_stage_holds_the_virtual_environment_only_and_runs_as_non_root() -> None:
    _build, runtime = _stages()
    copies = [args for instruction, args in runtime if instruction in {"COPY", "ADD"}]
    assert copies == ["--from=build /opt/venv /opt/venv"], "the runtime stage copies the built venv alone"
    (user,) = [args for instruction, args in runtime if instruction == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "numeric, so runAsNonRoot can verify it without /etc/passwd"
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    assert runtime[-1] == ("ENTRYPOINT", '["entra-rbac", "run"]')


@pytest.fixture(scope="module")
def actionlint() -> str:
    done = subprocess.run(
        [str(BUILD), "actionlint"], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"actionlint could not be built ('make tools'): {done.stderr.strip()}", pytrace=False)
    return done.stdout.strip().splitlines()[-1]


def test_there_is_a_release_workflow() -> None:
    assert ROOT / ".github" / "workflows" / "release.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(actionlint: str, workflow: Path) -> None:
    done = subprocess.run(
        [actionlint, str(workflow)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_refuses_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    broken = (
        (ROOT / ".github" / "workflows" / "release.yml").read_text().replace("needs: image", "needs: imgae")
    )
    path = tmp_path / "broken.yml"
    path.write_text(broken)
    done = subprocess.run([actionlint, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "imgae" in done.stdout
