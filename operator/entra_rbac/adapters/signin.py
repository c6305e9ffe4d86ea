"""Signing a person in to Entra for kubectl: the token of `entra-rbac token`, an exec credential plugin.

`credential(request, cache_dir)` returns the `client.authentication.k8s.io/v1` ExecCredential
kubectl reads from the plugin's stdout (`status.token`, `status.expirationTimestamp`). The token
comes from the per-user cache file when it is valid for more than `REFRESH_MARGIN` seconds yet,
else from a sign-in, and is then cached (the file is 0600, its folder 0700):

- with a password (the sandbox directory, or a test tenant): the resource owner password grant,
  `POST {authority}/{tenant}/oauth2/v2.0/token` with `scope={server app id}/.default`;
- without one: the device authorization grant through azure-identity's DeviceCodeCredential
  (MSAL underneath: the authority's discovery names the `devicecode` endpoint, the token endpoint
  is polled until the person approves on another device), its prompt on stderr so that stdout
  stays the ExecCredential. Against an authority that is not one of Microsoft's login hosts (the
  sandbox directory, whose `/_sandbox/devicecode/approve` stands in for the browser) instance
  discovery is off, since it would ask login.microsoftonline.com about a host it cannot know,
  and `ca_file` is the CA trusted for it.

Never logs or prints the token; a failure raises `SignInError` with Entra's error text.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1"
# Microsoft's login hosts (public and sovereign clouds), which MSAL's instance discovery knows.
MICROSOFT_LOGIN_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
)
REFRESH_MARGIN = 120  # seconds: a cached token expiring sooner than this is replaced
TIMEOUT = 30.0


class SignInError(Exception):
    """The sign-in was refused or failed; the message is safe to show (it holds no token)."""


@dataclass(frozen=True)
class SignInRequest:
    authority: str  # e.g. https://login.microsoftonline.com
    tenant: str
    client_id: str  # the public client signing in (kubelogin's, the Azure CLI's, or your own)
    server_app_id: str  # the cluster's application: the token's audience
    username: str
    password: str | None = None
    ca_file: Path | None = None  # the authority's CA (the sandbox's), else the system's

    def cache_key(self) -> str:
        parts = (self.authority.rstrip("/"), self.tenant, self.client_id, self.server_app_id, self.username)
        return hashlib.sha256("\n".join(parts).lower().encode()).hexdigest()[:32]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "entra-rbac" / "tokens"


def exec_credential(token: str, expires_on: int) -> dict[str, Any]:
    expiry = datetime.datetime.fromtimestamp(expires_on, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expiry},
    }


def credential(
    request: SignInRequest, cache_dir: Path | None = None, now: float | None = None
) -> dict[str, Any]:
    """The ExecCredential for `request`, from the cache or a new sign-in."""
    folder = cache_dir or default_cache_dir()
    moment = time.time() if now is None else now
    path = folder / f"{request.cache_key()}.json"
    cached = _read_cache(path)
    if cached is not None and cached[1] - moment > REFRESH_MARGIN:
        return exec_credential(*cached)
    token, expires_on = password_grant(request) if request.password else device_code(request)
    _write_cache(path, token, expires_on)
    return exec_credential(token, expires_on)


def _read_cache(path: Path) -> tuple[str, int] | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        return str(entry["access_token"]), int(entry["expires_on"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, token: str, expires_on: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"access_token": token, "expires_on": expires_on}, file)
    temporary.replace(path)


def password_grant(request: SignInRequest) -> tuple[str, int]:
    """The resource owner password grant; (access token, expiry as epoch seconds)."""
    url = f"{request.authority.rstrip('/')}/{request.tenant}/oauth2/v2.0/token"
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "client_id": request.client_id,
            "username": request.username,
            "password": request.password or "",
            "scope": f"{request.server_app_id}/.default",
        }
    ).encode()
    context = ssl.create_default_context(cafile=str(request.ca_file) if request.ca_file else None)
    began = time.time()
    try:
        with urllib.request.urlopen(url, data=form, context=context, timeout=TIMEOUT) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            description = json.loads(error.read()).get("error_description", "")
        except ValueError:
            description = ""
        raise SignInError(f"sign-in refused ({error.code}): {description or error.reason}") from None
    except (OSError, ValueError) as error:
        raise SignInError(f"sign-in failed: {error}") from None
    return str(answer["access_token"]), int(began + int(answer["expires_in"]))


def device_prompt(verification_uri: str, user_code: str, expires_on: datetime.datetime) -> None:
    """What the person reads on stderr: where to go and the code to enter (Entra's own wording)."""
    until = expires_on.astimezone(datetime.UTC).strftime("%H:%M:%S UTC")
    print(
        f"To sign in, use a web browser to open the page {verification_uri} and enter the code "
        f"{user_code} to authenticate (before {until}).",
        file=sys.stderr,
        flush=True,
    )


def device_code(request: SignInRequest) -> tuple[str, int]:
    """The device code flow of azure-identity (the prompt goes to stderr)."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import DeviceCodeCredential

    parsed = urllib.parse.urlparse(request.authority)
    authority = parsed.netloc or request.authority
    options: dict[str, Any] = {}
    if (parsed.hostname or authority).lower() not in MICROSOFT_LOGIN_HOSTS:
        options["disable_instance_discovery"] = True
    if request.ca_file is not None:
        options["connection_verify"] = str(request.ca_file)
    device = DeviceCodeCredential(
        client_id=request.client_id,
        tenant_id=request.tenant,
        authority=authority,
        prompt_callback=device_prompt,
        **options,
    )
    try:
        access = device.get_token(f"{request.server_app_id}/.default")
    except ClientAuthenticationError as error:
        raise SignInError(f"sign-in failed: {error.message}") from None
    finally:
        device.close()
    return access.token, int(access.expires_on)
