"""The sandbox's identity-platform endpoints over HTTP: token, OpenID metadata, keys, discovery.

Holds the aiohttp handlers for `POST /{tenant}/oauth2/v2.0/token`,
`POST /{tenant}/oauth2/v2.0/devicecode`, `GET /{tenant}/v2.0/.well-known/openid-configuration`
(and the v1 form), `GET /{tenant}/discovery/v2.0/keys`, `GET /common/discovery/instance`, and
the device-code verification stand-ins `GET /_sandbox/devicecode` (how to approve, as text),
`POST /_sandbox/devicecode/approve` (`{"user_code", "user"}`) and
`POST /_sandbox/devicecode/decline` (`{"user_code"}`). What a request gets is decided by
`tokens.TokenService` and `devicecode.DeviceCodes`; this module only reads forms and writes answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from entra_rbac_sandbox.entra.devicecode import ApprovalError, DeviceCodes
from entra_rbac_sandbox.entra.tokens import TokenRequestError, TokenService

log = logging.getLogger(__name__)
APPROVAL_HELP = """This is the sandbox directory's device-code verification page. Instead of signing in here
with a browser, approve the code your device shows with:

  curl --cacert <the sandbox CA file> -X POST {url}/approve \\
       -H 'Content-Type: application/json' -d '{{"user_code": "<code>", "user": "<user principal name>"}}'

or decline it with POST {url}/decline and {{"user_code": "<code>"}}.
"""


class IdentityEndpoints:
    """Routes for one tenant's token service; `token_url()` is the server's canonical token URL."""

    def __init__(self, tokens: TokenService, token_url: Callable[[], str], device_codes: DeviceCodes) -> None:
        self.tokens = tokens
        self.token_url = token_url
        self.device_codes = device_codes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        router.add_post("/{tenant}/oauth2/v2.0/devicecode", self._devicecode)
        router.add_get("/_sandbox/devicecode", self._approval_help)
        router.add_post("/_sandbox/devicecode/approve", self._approve)
        router.add_post("/_sandbox/devicecode/decline", self._decline)
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

    async def _devicecode(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        try:
            if tenant.lower() not in (self.tokens.tenant_id, "organizations"):
                raise TokenRequestError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
            answer = self.device_codes.start(form)
        except TokenRequestError as refused:
            log.info("Refused a device code: %s", refused)
            return web.json_response(refused.body(), status=refused.status)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    async def _approval_help(self, request: web.Request) -> web.Response:
        return web.Response(text=APPROVAL_HELP.format(url=f"https://{request.host}/_sandbox/devicecode"))

    async def _approve(self, request: web.Request) -> web.Response:
        return await self._decide(request, approve=True)

    async def _decline(self, request: web.Request) -> web.Response:
        return await self._decide(request, approve=False)

    async def _decide(self, request: web.Request, *, approve: bool) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("user_code"), str):
            return web.json_response({"error": "user_code: required, a string"}, status=400)
        if approve and not isinstance(body.get("user"), str):
            return web.json_response(
                {"error": "user: required, a user principal name or object id"}, status=400
            )
        try:
            if approve:
                answer = self.device_codes.approve(body["user_code"], body["user"])
            else:
                answer = self.device_codes.decline(body["user_code"])
        except ApprovalError as refused:
            return web.json_response({"error": str(refused)}, status=refused.status)
        return web.json_response(answer)

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
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
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
