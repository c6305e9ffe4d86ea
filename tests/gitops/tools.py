"""The tools GitOps controllers judge health with, run for real on a resource: kstatus and Argo CD's Lua.

- `kstatus(resource)`: what sigs.k8s.io/cli-utils/pkg/kstatus/status computes (Flux's health
  check), through the Go helper hack/tools/kstatus built by hack/tools/build.sh (`make tools`).
- `argocd_health(resource)`: deploy/argocd/health.lua run by Debian's `lua5.1` with the resource as
  the global `obj`, as Argo CD's gopher-lua (a Lua 5.1) runs it.

Both fail loudly, never skip, when their tool is missing: the message names the remedy.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "hack" / "tools" / "build.sh"
HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"
LUA = "lua5.1"
INSTALL_HINT = "run 'make tools' (it builds the Go helpers and installs lua5.1 and promtool with apt-get)"


@functools.cache
def kstatus_binary() -> Path:
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"the kstatus helper could not be built: {done.stderr.strip()}", pytrace=False)
    return Path(done.stdout.strip().splitlines()[-1])


def kstatus(resource: Mapping[str, Any]) -> dict[str, str]:
    """kstatus' verdict: {"status": "Current" | "InProgress" | "Failed" | "Terminating" | ..., "message"}."""
    done = subprocess.run(
        [str(kstatus_binary())], input=json.dumps(resource), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"kstatus failed: {done.stderr}"
    verdict: dict[str, str] = json.loads(done.stdout)
    return verdict


def lua_literal(value: Any) -> str:
    """A JSON value as a Lua 5.1 table constructor (arrays 1-based, null as nil), as Argo CD hands it."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for this ASCII/UTF-8 text
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"[{json.dumps(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def lua_binary() -> str:
    found = shutil.which(LUA)
    if found is None:
        pytest.fail(f"{LUA} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def argocd_health(resource: Mapping[str, Any], script: Path = HEALTH_LUA) -> dict[str, str]:
    """Argo CD's verdict from the shipped script: {"status": "Healthy" | ..., "message"}."""
    program = (
        f"obj = {lua_literal(dict(resource))}\n"
        f"local hs = dofile({json.dumps(str(script))})\n"
        'io.write(tostring(hs.status), "\\n", tostring(hs.message))\n'
    )
    done = subprocess.run([lua_binary(), "-"], input=program, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{LUA} failed: {done.stderr}"
    status, _, message = done.stdout.partition("\n")
    return {"status": status, "message": message}
