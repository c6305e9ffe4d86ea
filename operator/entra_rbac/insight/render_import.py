"""How `import` writes what it found (docs/migration.md): manifests as YAML (each with a comment
naming the bindings it replaces and the commands of the hand-over) or JSON, one file per resource
in a folder, or the two scripts: `--annotate` (hand the bindings at the operator's own names over
for adoption) and `--cleanup` (once each resource is Ready, delete the bindings it made
redundant). Pure text: the command decides where it goes.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

import yaml

from entra_rbac.constants import ADOPT_ANNOTATION, PLURAL
from entra_rbac.insight.importer import HandMade, Imported, ImportResult

# How long the cleanup script waits for each resource to be Ready before it deletes anything.
READY_TIMEOUT = "300s"


def kubectl(kube_args: Sequence[str], *args: str) -> str:
    return shlex.join(["kubectl", *kube_args, *args])


def _resource_args(binding: HandMade) -> list[str]:
    kind = binding.key.kind.lower()
    return (
        [kind, "-n", binding.key.namespace, binding.key.name]
        if binding.key.namespace
        else [kind, binding.key.name]
    )


def annotate_command(resource: Imported, binding: HandMade, kube_args: Sequence[str] = ()) -> str:
    return kubectl(
        kube_args, "annotate", *_resource_args(binding), "--overwrite", f"{ADOPT_ANNOTATION}={resource.name}"
    )


def wait_command(resource: Imported, kube_args: Sequence[str] = ()) -> str:
    return kubectl(
        kube_args, "wait", "--for=condition=Ready", f"{PLURAL}/{resource.name}", f"--timeout={READY_TIMEOUT}"
    )


def delete_command(binding: HandMade, kube_args: Sequence[str] = ()) -> str:
    return kubectl(kube_args, "delete", *_resource_args(binding))


def _comment(resource: Imported, kube_args: Sequence[str]) -> str:
    lines = [f"EntraGroupBinding {resource.name} replaces:"]
    lines += [f"  {b.describe()} ({b.role_ref})" for b in resource.replaces]
    if resource.adopts:
        lines.append("Hand over the bindings at its own names (adopted in place):")
        lines += [f"  {annotate_command(resource, b, kube_args)}" for b in resource.adopts]
    if resource.leftovers:
        lines.append("Once it is Ready, delete the bindings it made redundant:")
        lines.append(f"  {wait_command(resource, kube_args)}")
        lines += [f"  {delete_command(b, kube_args)}" for b in resource.leftovers]
    return "".join(f"# {line}\n" for line in lines)


def render_resource(resource: Imported, output: str, kube_args: Sequence[str] = ()) -> str:
    if output == "json":
        return json.dumps(resource.manifest(), indent=2) + "\n"
    return _comment(resource, kube_args) + yaml.safe_dump(resource.manifest(), sort_keys=False)


def render_all(result: ImportResult, output: str, kube_args: Sequence[str] = ()) -> str:
    """Every resource in one stream: YAML documents, or a JSON `List` (kubectl applies both)."""
    if output == "json":
        items = [r.manifest() for r in result.resources]
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2) + "\n"
    return "---\n".join(render_resource(r, output, kube_args) for r in result.resources)


def annotate_script(result: ImportResult, kube_args: Sequence[str] = ()) -> str:
    lines = [
        "#!/bin/sh",
        "# kubectl entra import --annotate: hand each binding standing at a name its EntraGroupBinding",
        "# targets over to it (docs/migration.md); the operator adopts it in place, never deleting it.",
        "set -eu",
    ]
    lines += [annotate_command(r, b, kube_args) for r in result.resources for b in r.adopts]
    if not any(r.adopts for r in result.resources):
        lines.append("# (none: no binding stands at a name an imported resource targets)")
    return "\n".join(lines) + "\n"


def cleanup_script(result: ImportResult, kube_args: Sequence[str] = ()) -> str:
    lines = [
        "#!/bin/sh",
        "# kubectl entra import --cleanup: once each EntraGroupBinding is Ready (its own bindings",
        "# grant the same access), delete the hand-made bindings it made redundant (docs/migration.md).",
        "set -eu",
    ]
    for resource in result.resources:
        if resource.leftovers:
            lines.append(wait_command(resource, kube_args))
            lines += [delete_command(b, kube_args) for b in resource.leftovers]
    if not any(r.leftovers for r in result.resources):
        lines.append("# (none: every replaced binding is adopted in place)")
    return "\n".join(lines) + "\n"


def summary(result: ImportResult) -> list[str]:
    """The lines for stderr: what was not imported and why, then the counts."""
    lines = [f"not imported: {refusal}" for refusal in result.refused]
    replaced = sum(len(r.replaces) for r in result.resources)
    skipped = ", ".join(f"{count} {why}" for why, count in result.skipped.items())
    lines.append(
        f"Import: {len(result.resources)} EntraGroupBinding{'' if len(result.resources) == 1 else 's'} "
        f"replacing {replaced} binding{'' if replaced == 1 else 's'} "
        f"({sum(len(r.adopts) for r in result.resources)} to adopt); "
        f"{len(result.refused)} not importable; skipped: {skipped or 'none'}."
    )
    return lines
