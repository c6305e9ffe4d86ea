"""The `entra-rbac sandbox` and `entra-rbac demo` commands, plugged into the product's CLI.

The product finds them through the `entra_rbac.commands` entry point group, so scripts keep
calling `entra-rbac sandbox ...` while the product itself never imports this package.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--directory",
    "directory",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sandbox Entra directory (YAML; re-read whenever it changes on disk).",
)
@click.option("--port", default=0, show_default=True, help="API server port (0: a free one).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the admin kubeconfig (default: .sandbox/kubeconfig); sandbox.env goes beside it.",
)
@click.option("--no-operator", is_flag=True, help="Start the servers only; run `entra-rbac run` yourself.")
def sandbox(directory: Path, port: int, kubeconfig: Path | None, no_operator: bool) -> None:
    """Start a local API server, a local Entra directory and the operator (no cluster, no tenant)."""
    from entra_rbac_sandbox import launcher

    raise SystemExit(launcher.run(directory, port=port, kubeconfig=kubeconfig, operator=not no_operator))


@click.command()
def demo() -> None:
    """Show the product end to end on the sandbox: examples applied, access table, directory changes."""
    from entra_rbac_sandbox import demo as demo_script

    raise SystemExit(demo_script.main())
