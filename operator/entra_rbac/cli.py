"""The `entra-rbac` command line: glue only, each command a short delegation.

`sandbox` and `demo` come from the sandbox distribution through an entry point; the product
never imports it, and without it the two commands say what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
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
@click.option("--authority", default="https://login.microsoftonline.com", show_default=True)
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--client-id", required=True, help="The public client that signs you in.")
@click.option("--server-app-id", required=True, help="The cluster's application id (the audience).")
@click.option("--username", required=True, help="Your user principal name (also the cache key).")
@click.option("--password-stdin", is_flag=True, help="Read a password from stdin (password grant).")
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True), help="The authority's CA.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Token cache folder.")
def token(
    authority: str,
    tenant: str,
    client_id: str,
    server_app_id: str,
    username: str,
    password_stdin: bool,
    ca_file: str | None,
    cache_dir: str | None,
) -> None:
    """kubectl exec credential plugin: print an ExecCredential with an Entra token for the cluster.

    A password from ENTRA_RBAC_PASSWORD or stdin uses the password grant (the sandbox); without
    one, the device code flow of azure-identity (a real tenant).
    """
    import json
    import os
    import sys
    from pathlib import Path

    from entra_rbac.adapters import signin

    password = sys.stdin.readline().rstrip("\n") if password_stdin else os.environ.get("ENTRA_RBAC_PASSWORD")
    request = signin.SignInRequest(
        authority,
        tenant,
        client_id,
        server_app_id,
        username,
        password or None,
        Path(ca_file) if ca_file else None,
    )
    try:
        answer = signin.credential(request, Path(cache_dir) if cache_dir else None)
    except signin.SignInError as error:
        click.echo(f"entra-rbac token: {error}", err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(answer))


# --- plan, explain, report (docs/cli.md): also the `kubectl entra` plugin (`kubectl_entra`) ---
_KUBE_OPTIONS = (
    click.option(
        "--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file (default: KUBECONFIG)."
    ),
    click.option("--context", help="Kubeconfig context (default: its current context)."),
)


def _kube_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_KUBE_OPTIONS):
        command = option(command)
    return command


_DIRECTORY_OPTION = click.option(
    "--directory",
    "directory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A directory file in the sandbox's format, read offline instead of Entra.",
)


@click.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A file or folder of manifests.",
)
@click.option(
    "-k",
    "--kustomize",
    "kustomization",
    type=click.Path(path_type=Path),
    help="A kustomization folder (kubectl kustomize).",
)
@click.option(
    "-o", "--output", type=click.Choice(("text", "json", "markdown")), default="text", show_default=True
)
@click.option("--prune", is_flag=True, help="Plan the deletion of every EntraGroupBinding the input lacks.")
@_DIRECTORY_OPTION
@_kube_options
def plan(
    files: tuple[Path, ...],
    kustomization: Path | None,
    output: str,
    prune: bool,
    directory_file: Path | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Who would gain or lose access: the bindings the operator would write.

    Exit code 0: nothing would change; 2: something would; 1: an error.
    """
    from entra_rbac.insight import commands

    connection = commands.Connection(kubeconfig, context, directory_file)
    raise SystemExit(commands.run_plan(files, kustomization, connection, output=output, prune=prune))


@click.command()
@click.option("--user", help="A Kubernetes user name (UPN, or object ID for guests and applications).")
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="A group the subject is in (repeatable), or the group to explain.",
)
@click.option("-n", "--namespace", help="Only access in this namespace (alone: everyone with access there).")
@click.option("--verb", help="With --resource: the bindings that allow this verb.")
@click.option("--resource", help="pods, deployments.apps, pods/log, or a non-resource URL such as /healthz.")
@click.option("--name", "resource_name", default="", help="The object's name, for rules with resourceNames.")
@click.option(
    "-o", "--output", type=click.Choice(("text", "json", "markdown")), default="text", show_default=True
)
@_DIRECTORY_OPTION
@_kube_options
def explain(
    user: str | None,
    groups: tuple[str, ...],
    namespace: str | None,
    verb: str | None,
    resource: str | None,
    resource_name: str,
    output: str,
    directory_file: Path | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Every path by which a user, a group or anyone in a namespace gets access, and why."""
    from entra_rbac.insight import commands
    from entra_rbac.insight import explain as explaining

    if user is None and not groups and namespace is None:
        raise click.UsageError("give --user, --group or --namespace")
    if (verb is None) != (resource is None):
        raise click.UsageError("--verb and --resource go together")
    query = explaining.Query(user, groups, namespace, verb, resource, resource_name)
    raise SystemExit(
        commands.run_explain(query, commands.Connection(kubeconfig, context, directory_file), output=output)
    )


@click.command()
@click.option(
    "--format", "output", type=click.Choice(("csv", "json", "markdown")), default="csv", show_default=True
)
@_kube_options
def report(output: str, kubeconfig: str | None, context: str | None) -> None:
    """The access review: every managed grant, named, and the unmanaged bindings of the same roles."""
    from entra_rbac.insight import commands

    raise SystemExit(commands.run_report(commands.Connection(kubeconfig, context), output=output))


@click.command("import")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Only RoleBindings in NS (repeatable).")
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Only bindings granting this Entra group (repeatable); user mode: the group of their users.",
)
@click.option("--group-prefix", default="", help="The API server's --oidc-groups-prefix (AKS: none).")
@click.option("--user-prefix", default="", help="The API server's --oidc-username-prefix (AKS: none).")
@click.option("--output", default="yaml", show_default=True, help="yaml or json.")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one file per EntraGroupBinding into this folder.",
)
@click.option("--annotate", "script", flag_value="annotate", help="Print the adoption script instead.")
@click.option("--cleanup", "script", flag_value="cleanup", help="Print the leftover-removal script instead.")
@_DIRECTORY_OPTION
@_kube_options
def import_bindings(
    namespaces: tuple[str, ...],
    groups: tuple[str, ...],
    group_prefix: str,
    user_prefix: str,
    output: str,
    output_dir: Path | None,
    script: str | None,
    directory_file: Path | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Write the EntraGroupBindings that grant what hand-made bindings grant (read-only).

    Exit code 0: every candidate imported; 2: some bindings not importable (listed); 1: an error.
    """
    from entra_rbac.insight import commands, import_command

    request = import_command.ImportRequest(
        namespaces, groups, group_prefix, user_prefix, output, output_dir, script
    )
    connection = commands.Connection(kubeconfig, context, directory_file)
    raise SystemExit(import_command.run_import(request, connection))


INSIGHT_COMMANDS = (plan, explain, report, import_bindings)
for _command in INSIGHT_COMMANDS:
    main.add_command(_command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl-entra")
def kubectl_entra() -> None:
    """kubectl plugin: `kubectl entra plan|explain|report|import` (the same commands as `entra-rbac`)."""


for _command in INSIGHT_COMMANDS:
    kubectl_entra.add_command(_command)


@main.command("release-bindings")
@_kube_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be released; the API server validates, nothing is stored.",
)
@click.argument("resources", nargs=-1)
def release_bindings(
    kubeconfig: str | None, context: str | None, dry_run: bool, resources: tuple[str, ...]
) -> None:
    """Turn the operator's bindings into hand-made ones, to uninstall and keep the access.

    Removes the ownerReference to the EntraGroupBinding and the operator's labels from every
    binding it manages (of RESOURCES only, when named), so deleting the resources or the CRD no
    longer revokes them. Stop the operator first (docs/install.md, "Uninstall").
    """
    from entra_rbac.adapters.kube import client as kube_client
    from entra_rbac.adapters.kube import release
    from entra_rbac.errors import KubeError, SettingsError

    try:
        api = kube_client.build_api_client(kubeconfig=kubeconfig, context=context)
    except SettingsError as error:
        click.echo(f"entra-rbac release-bindings: {error}", err=True)
        raise SystemExit(1) from None
    try:
        with api:
            done = release.release_bindings(api, frozenset(resources) or None, dry_run=dry_run)
    except KubeError as error:
        click.echo(f"entra-rbac release-bindings: {error}", err=True)
        raise SystemExit(1) from None
    verb = "Would release" if dry_run else "Released"
    for binding in done:
        click.echo(f"{verb} {binding.describe()}")
    click.echo(f"{verb} {len(done)} binding{'' if len(done) == 1 else 's'}.")


# Commands other distributions add to `entra-rbac` (the sandbox adds `sandbox` and `demo`).
PLUGIN_GROUP = "entra_rbac.commands"
# Commands scripts call that live in the sandbox distribution, and how to get it.
SANDBOX_COMMANDS = ("sandbox", "demo")
SANDBOX_HINT = (
    "needs the sandbox, which is not installed: from a checkout of entra-rbac-operator run "
    "`make sandbox` (or `pip install -e ./sandbox`)"
)


def _missing(name: str) -> click.Command:
    """A stand-in for a plugin command that is not installed: says what to install, exits 2."""

    def explain() -> None:
        click.echo(f"entra-rbac {name}: {SANDBOX_HINT}", err=True)
        raise SystemExit(2)

    return click.Command(
        name,
        callback=explain,
        help=f"(not installed) {SANDBOX_HINT}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _add_plugins(group: click.Group) -> None:
    """Add the commands that installed distributions register under PLUGIN_GROUP."""
    for entry in entry_points(group=PLUGIN_GROUP):
        group.add_command(entry.load(), entry.name)
    for name in SANDBOX_COMMANDS:
        if name not in group.commands:
            group.add_command(_missing(name))


_add_plugins(main)
