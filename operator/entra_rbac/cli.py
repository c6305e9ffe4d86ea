"""The `entra-rbac` command line: glue only, each command a short delegation.

Commands that need optional pieces (the sandbox) import them lazily so that the operator's
image never loads them.
"""

from __future__ import annotations

from pathlib import Path

import click

from entra_rbac import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="entra-rbac")
def main() -> None:
    """Keep Kubernetes RBAC bindings following Microsoft Entra ID groups."""


@main.command()
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig file (default: in-cluster, else KUBECONFIG).",
)
@click.option("--context", help="Kubeconfig context (default: its current context).")
def run(kubeconfig: str | None, context: str | None) -> None:
    """Run the operator cluster-wide (settings: ENTRA_RBAC_* variables, see docs/configuration.md)."""
    from entra_rbac import runner

    try:
        prepared = runner.prepare(kubeconfig=kubeconfig, context=context)
    except runner.SettingsError as error:
        click.echo(f"entra-rbac: invalid settings: {error}", err=True)
        raise SystemExit(runner.EXIT_INVALID_SETTINGS) from None
    runner.run_operator(prepared)


@main.command()
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
    from entra_rbac.sandbox import launcher

    raise SystemExit(launcher.run(directory, port=port, kubeconfig=kubeconfig, operator=not no_operator))


@main.command()
def demo() -> None:
    """Show the product end to end on the sandbox: examples applied, access table, directory changes."""
    from entra_rbac.sandbox import demo as demo_script

    raise SystemExit(demo_script.main())
