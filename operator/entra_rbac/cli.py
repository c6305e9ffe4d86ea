"""The `entra-rbac` command line: glue only, each command a short delegation.

Commands that need optional pieces (the sandbox) import them lazily so that the operator's
image never loads them.
"""

from __future__ import annotations

import click

from entra_rbac import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="entra-rbac")
def main() -> None:
    """Keep Kubernetes RBAC bindings following Microsoft Entra ID groups."""
