"""The sandbox's identity-platform endpoints over HTTP: token, OpenID metadata, keys, discovery.

Holds the aiohttp handlers for `POST /{tenant}/oauth2/v2.0/token`,
`GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 form), `GET
/{tenant}/discovery/v2.0/keys` and `GET /common/discovery/instance`. What a token request gets is
decided by `tokens.TokenService`; this module only reads forms and writes answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from entra_rbac_sandbox.entra.tokens import TokenRequestError, TokenService

log = logging.getLogger(__name__)


class IdentityEndpoints:
    """Routes for one tenant's token service; `token_url()` is the server's canonical token URL."""

    def __init__(self, tokens: TokenService, token_url: Callable[[], str]) -> None:
        self.tokens = tokens
        self.token_url = token_url

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        router.add_get("/{tenant}/.well-known/openid-configuration", self._openid)
        router.add_get("/{tenant}/discovery/v2.0/keys", self._keys)
        router.add_get("/common/discovery/instance", self._instance_discovery)

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        base = f"https://{request.host}"
        audiences = [f"{base}/{tenant}/oauth2/v2.0/token", f"{base}/{tenant}/oauth2/token", self.token_url()]
        try:
            answer = self.tokens.grant(tenant, form, audiences)
        except TokenRequestError as refused:
            log.info("Refused a token: %s", refused)
            return web.json_response(refused.body(), status=refused.status)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    async def _openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if tenant.lower() not in (self.tokens.tenant_id, "organizations", "common"):
            refused = TokenRequestError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            return web.json_response(refused.body(), status=400)
        base = f"https://{request.host}/{self.tokens.tenant_id}"
        # The issuer is the one the tokens carry, whatever name the caller used for the host.
        issuer = self.tokens.sign_in.issuer if self.tokens.sign_in is not None else f"{base}/v2.0"
        return web.json_response(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "sandbox.invalid",
            }
        )

    async def _keys(self, _: web.Request) -> web.Response:
        return web.json_response(self.tokens.jwks())

    async def _instance_discovery(self, request: web.Request) -> web.Response:
        host = request.host
        return web.json_response(
            {
                "tenant_discovery_endpoint": f"https://{host}/{self.tokens.tenant_id}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )
