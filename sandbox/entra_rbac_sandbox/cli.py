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
@click.option(
    "--refresh-interval",
    metavar="DURATION",
    help="The operator's ENTRA_RBAC_REFRESH_INTERVAL (sandbox default 10s; the product's is 5m).",
)
@click.option(
    "-e",
    "--env",
    "settings",
    multiple=True,
    metavar="ENTRA_RBAC_NAME=VALUE",
    help="An operator setting (repeatable); ENTRA_RBAC_* variables of your shell pass through too.",
)
def sandbox(
    directory: Path,
    port: int,
    kubeconfig: Path | None,
    no_operator: bool,
    refresh_interval: str | None,
    settings: tuple[str, ...],
) -> None:
    """Start a local API server, a local Entra directory and the operator (no cluster, no tenant).

    The directory file is served from a copy beside the kubeconfig; the ready line names it."""
    from entra_rbac_sandbox import launcher

    chosen = dict(_setting(item) for item in settings)
    if refresh_interval is not None:
        chosen[launcher.REFRESH_SETTING] = refresh_interval
    code = launcher.run(
        directory, port=port, kubeconfig=kubeconfig, operator=not no_operator, settings=chosen
    )
    raise SystemExit(code)


def _setting(item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not equals or not name.startswith("ENTRA_RBAC_"):
        raise click.BadParameter(f"{item!r}: expected ENTRA_RBAC_NAME=VALUE", param_hint="--env")
    return name, value


@click.command()
def demo() -> None:
    """Show the product end to end on the sandbox: examples applied, access table, directory changes."""
    from entra_rbac_sandbox import demo as demo_script

    raise SystemExit(demo_script.main())
