"""Maps the operator's `Settings` onto the adapters' own configuration values.

Holds pure mapping functions only (no clients built, no I/O). It lives in the adapters layer
because settings (layer 5) must not know the adapters, and the reconciler's `build_context`
and the CLI both need the same mapping.
"""

from __future__ import annotations

from entra_rbac.adapters.directory import Cloud, CredentialKind, DirectoryConfig
from entra_rbac.errors import SettingsError
from entra_rbac.settings import Settings, env_name


def directory_config(settings: Settings) -> DirectoryConfig:
    """The directory adapter's config; its own checks name the `ENTRA_RBAC_*` variable too."""
    try:
        return DirectoryConfig(
            tenant_id=settings.tenant_id or "",
            client_id=settings.client_id or "",
            cloud=Cloud(settings.cloud),
            credential=CredentialKind(settings.credential),
            client_secret=settings.client_secret,
            certificate_path=settings.certificate_path,
            federated_token_file=settings.federated_token_file,
            authority_host=settings.authority_host,
            graph_url=settings.graph_url,
            ca_file=settings.ca_file,
            cache_lifetime=settings.directory_cache_ttl,
        )
    except SettingsError as error:
        # "directory setting graph_url: ..." -> "ENTRA_RBAC_GRAPH_URL: ..."
        text = str(error).removeprefix("directory setting ")
        field, _, problem = text.partition(": ")
        raise SettingsError(f"{env_name(field)}: {problem}" if problem else str(error)) from None
