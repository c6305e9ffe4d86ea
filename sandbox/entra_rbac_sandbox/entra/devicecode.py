"""The device authorization grant (RFC 8628) as the Microsoft identity platform serves it.

Holds `DeviceCodes`, the pending device sign-ins of one tenant, checked against Microsoft's
"OAuth 2.0 device authorization grant" page and RFC 8628 (references in docs/sandbox.md):

- `start(form)` answers `POST /{tenant}/oauth2/v2.0/devicecode` (`client_id`, `scope`) with
  `device_code`, `user_code`, `verification_uri`, `expires_in` (900 s, Entra's default),
  `interval` (5 s) and `message`;
- `poll(form)` answers the token endpoint's `grant_type=urn:ietf:params:oauth:grant-type:device_code`
  (`client_id`, `device_code`): `authorization_pending` until the person decides, `slow_down` to a
  client polling sooner than `interval` after its last poll (the interval then grows by 5 s, for
  that and every later poll), `authorization_declined`, `expired_token` once `expires_in` has
  passed, `bad_verification_code` for a code this tenant never issued to that client, and once
  approved the token answer of the person's sign-in (`SignIn.person_answer`); a code is redeemed
  once;
- `approve(user_code, user)` and `decline(user_code)` stand for the person at the verification
  page: the sandbox endpoints `POST /_sandbox/devicecode/approve` (`{"user_code", "user"}`) and
  `POST /_sandbox/devicecode/decline` (`{"user_code"}`), which a test or a person calls instead of
  a browser.

Knows nothing of HTTP; the time comes from `clock` (monotonic seconds) so tests can move it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from entra_rbac_sandbox.entra.oidc import PUBLIC_CLIENTS, SignIn, SignInError
from entra_rbac_sandbox.entra.tokens import DEVICE_CODE_GRANT, NOT_INSTALLED

__all__ = ["DEVICE_CODE_GRANT", "ApprovalError", "DeviceCodes"]
# Entra's user codes are nine letters and digits; these leave out the ones people misread.
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
USER_CODE_LENGTH = 9
DEFAULT_LIFETIME = 900  # seconds: Entra's expires_in
DEFAULT_INTERVAL = 5  # seconds: Entra's interval, RFC 8628's default
SLOW_DOWN_STEP = 5  # seconds added to the interval by each slow_down (RFC 8628 section 3.5)
FORGET_AFTER = 3600  # seconds after expiry: an expired code answers expired_token until then


class ApprovalError(ValueError):
    """The sandbox approval endpoint's refusal; the message names the field and what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Pending:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    audience: str
    expires_at: float
    interval: int
    last_poll: float | None = None
    user_id: str | None = None
    declined: bool = False


class DeviceCodes:
    """The device sign-ins of one tenant; see the module docstring."""

    def __init__(
        self,
        sign_in: SignIn,
        verification_uri: Callable[[], str],
        *,
        lifetime: int = DEFAULT_LIFETIME,
        interval: int = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sign_in = sign_in
        self.verification_uri = verification_uri
        self.lifetime = lifetime
        self.interval = interval
        self.clock = clock
        self._by_device: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    # The device ---------------------------------------------------------------------------------

    def start(self, form: Mapping[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "").lower()
        if not client_id:
            raise _missing("client_id")
        if client_id not in (*PUBLIC_CLIENTS, *self.sign_in.cluster_applications()):
            raise SignInError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.sign_in.tenant_id}'.",
            )
        scope = form.get("scope", "")
        audience = self.sign_in.audience(scope, detail=NOT_INSTALLED)
        now = self.clock()
        pending = _Pending(
            device_code=secrets.token_urlsafe(96),
            user_code="".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH)),
            client_id=client_id,
            scope=scope,
            audience=audience,
            expires_at=now + self.lifetime,
            interval=self.interval,
        )
        with self._lock:
            self._forget_old(now)
            self._by_device[pending.device_code] = pending
        uri = self.verification_uri()
        return {
            "user_code": pending.user_code,
            "device_code": pending.device_code,
            "verification_uri": uri,
            "expires_in": self.lifetime,
            "interval": self.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{pending.user_code} to authenticate.",
        }

    def poll(self, form: Mapping[str, str]) -> dict[str, Any]:
        device_code = form.get("device_code", "")
        if not device_code:
            raise _missing("device_code")
        now = self.clock()
        with self._lock:
            pending = self._by_device.get(device_code)
            if pending is None or pending.client_id != form.get("client_id", "").lower():
                raise SignInError(
                    400,
                    "bad_verification_code",
                    70018,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            too_soon = pending.last_poll is not None and now - pending.last_poll < pending.interval
            pending.last_poll = now
            if now >= pending.expires_at:
                raise SignInError(400, "expired_token", 70019, "Verification code expired.")
            if pending.declined:
                del self._by_device[device_code]
                raise SignInError(
                    400, "authorization_declined", 65004, "User declined to consent to access the app."
                )
            if pending.user_id is None:
                if too_soon:
                    pending.interval += SLOW_DOWN_STEP
                    raise SignInError(
                        400,
                        "slow_down",
                        70016,
                        f"The client polled sooner than the interval; poll again after "
                        f"{pending.interval} seconds.",
                    )
                raise SignInError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del self._by_device[device_code]  # redeemed once
        user = self.sign_in.directory().get(pending.user_id)
        if user is None:  # removed from the directory since approving
            raise SignInError(
                400, "invalid_grant", 50034, "The user account does not exist in the directory."
            )
        return self.sign_in.person_answer(user, pending.audience, pending.client_id, pending.scope, form)

    # The person ---------------------------------------------------------------------------------

    def approve(self, user_code: str, user: str) -> dict[str, str]:
        """The person `user` (UPN or object id) signs in and approves `user_code`'s request."""
        found = self.sign_in.directory().find_user(user) if user else None
        if found is None:
            raise ApprovalError(400, f"user: no user {user!r} in the directory (a UPN or an object id)")
        if not found.properties.get("accountEnabled", True):
            raise ApprovalError(400, f"user: the account {user!r} is disabled")
        with self._lock:
            pending = self._pending_for(user_code)
            pending.user_id = found.id
        return {"user_code": pending.user_code, "user": str(found.properties["userPrincipalName"])}

    def decline(self, user_code: str) -> dict[str, str]:
        with self._lock:
            pending = self._pending_for(user_code)
            pending.declined = True
        return {"user_code": pending.user_code, "declined": "true"}

    def _pending_for(self, user_code: str) -> _Pending:
        wanted = user_code.strip().upper()
        now = self.clock()
        for pending in self._by_device.values():
            if pending.user_code == wanted:
                if now >= pending.expires_at:
                    raise ApprovalError(400, f"user_code: {user_code!r} has expired")
                if pending.user_id is not None or pending.declined:
                    raise ApprovalError(409, f"user_code: {user_code!r} was already answered")
                return pending
        raise ApprovalError(404, f"user_code: no pending sign-in has the code {user_code!r}")

    def _forget_old(self, now: float) -> None:
        for code in [c for c, p in self._by_device.items() if now >= p.expires_at + FORGET_AFTER]:
            del self._by_device[code]


def _missing(parameter: str) -> SignInError:
    return SignInError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )
