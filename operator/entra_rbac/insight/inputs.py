"""The proposed EntraGroupBindings of `plan`: read from files (`-f FILE|DIR`) or a kustomization
(`-k DIR`, rendered by `kubectl kustomize`, not reimplemented), and validated by the same model
the operator uses.

Holds `Proposal` (the resources, the Namespaces the input also creates, the kinds it ignored)
and `read_files` / `read_kustomization`. Wrong input is one `InputError` naming the file, the
document and the field; nothing is guessed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from entra_rbac.constants import API_VERSION, GROUP, KIND, RBAC_API_VERSION
from entra_rbac.core.desired import NamespaceInfo
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.problems import invalid_spec_problems
from entra_rbac.errors import EntraRbacError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZE_TIMEOUT = 120.0


class InputError(EntraRbacError):
    """The proposed manifests cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ProposedResource:
    name: str
    spec: EntraGroupBindingSpec
    manifest: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class Proposal:
    resources: tuple[ProposedResource, ...]
    # Namespaces the input creates too (a GitOps change often adds one with its grants).
    namespaces: tuple[NamespaceInfo, ...] = ()
    # Roles and ClusterRoles the input creates too: a grant of one of them is no RoleNotFound.
    roles: tuple[Mapping[str, Any], ...] = ()
    ignored: tuple[str, ...] = field(default=())


def _documents(text: str, source: str) -> list[tuple[str, Any]]:
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise InputError(f"{source}: not valid YAML: {error}") from None
    found: list[tuple[str, Any]] = []
    for index, document in enumerate(loaded):
        where = f"{source} (document {index + 1})" if len(loaded) > 1 else source
        if isinstance(document, Mapping) and document.get("kind") == "List":
            found.extend(
                (f"{where} item {i + 1}", item) for i, item in enumerate(document.get("items") or [])
            )
        else:
            found.append((where, document))
    return found


def _resource(where: str, document: Mapping[str, Any]) -> ProposedResource:
    name = (document.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: {KIND} has no metadata.name")
    if document.get("apiVersion") != API_VERSION:
        raise InputError(f"{where}: {KIND} {name!r}: apiVersion must be {API_VERSION}")
    try:
        spec = EntraGroupBindingSpec.model_validate(document.get("spec") or {})
    except ValidationError as error:
        first = invalid_spec_problems(error)[0]
        raise InputError(f"{where}: {KIND} {name!r}: {first.text()}") from None
    return ProposedResource(name=name, spec=spec, manifest=document, source=where)


def parse_proposal(documents: Iterable[tuple[str, Any]], source: str) -> Proposal:
    resources: dict[str, ProposedResource] = {}
    namespaces: list[NamespaceInfo] = []
    roles: list[Mapping[str, Any]] = []
    ignored: list[str] = []
    others: list[str] = []  # every object that is not an EntraGroupBinding, for the error below
    for where, document in documents:
        if not isinstance(document, Mapping) or not isinstance(document.get("kind"), str):
            raise InputError(f"{where}: not a Kubernetes object (no kind)")
        kind, api_version = document["kind"], str(document.get("apiVersion", ""))
        name = str((document.get("metadata") or {}).get("name", ""))
        if kind != KIND:
            others.append(f"{kind} {name}")
        if kind == KIND:
            resource = _resource(where, document)
            if resource.name in resources:
                raise InputError(
                    f"{where}: {KIND} {resource.name!r} is also in {resources[resource.name].source}"
                )
            resources[resource.name] = resource
        elif api_version.startswith(f"{GROUP}/"):
            raise InputError(f"{where}: {kind} {name!r} is not an {KIND}")
        elif kind == "Namespace" and api_version == "v1":
            namespaces.append(NamespaceInfo.from_manifest({"metadata": {"name": name, **_labels(document)}}))
        elif kind in ("Role", "ClusterRole") and api_version == RBAC_API_VERSION:
            roles.append(document)
        else:
            ignored.append(f"{kind} {name}")
    if not resources:
        found = f" (found {', '.join(others[:5])})" if others else ""
        raise InputError(f"{source}: holds no {KIND}{found}")
    return Proposal(
        tuple(resources[n] for n in sorted(resources)), tuple(namespaces), tuple(roles), tuple(ignored)
    )


def _labels(document: Mapping[str, Any]) -> dict[str, Any]:
    labels = (document.get("metadata") or {}).get("labels")
    return {"labels": dict(labels)} if isinstance(labels, Mapping) else {}


def _manifest_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    return [path]


def read_files(paths: Sequence[Path]) -> Proposal:
    """`-f FILE|DIR` (repeatable): every manifest file of a folder (not its subfolders, as kubectl)."""
    documents: list[tuple[str, Any]] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        files = _manifest_files(path)
        if not files:
            raise InputError(f"{path}: holds no .yaml, .yml or .json file")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"{file}: cannot be read: {error}") from None
            documents.extend(_documents(text, str(file)))
    return parse_proposal(documents, ", ".join(map(str, paths)))


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise InputError("-k needs kubectl on PATH (it renders the kustomization: kubectl kustomize)")
    return found


def read_kustomization(folder: Path) -> Proposal:
    """`-k DIR`: what `kubectl kustomize DIR` renders (kustomize itself, not a reimplementation)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: -k needs a folder holding a kustomization.yaml")
    try:
        done = subprocess.run(  # noqa: S603 - kubectl from PATH, arguments are ours
            [kubectl(), "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InputError(f"{folder}: kubectl kustomize failed: {error}") from None
    if done.returncode != 0:
        raise InputError(f"{folder}: kubectl kustomize failed: {done.stderr.strip()}")
    return parse_proposal(_documents(done.stdout, f"{folder} (kustomize)"), str(folder))
