"""The sandbox directory's device authorization grant, as Microsoft identity platform serves it.

Plain HTTPS against a fresh server: the discovery names the `devicecode` endpoint; the device
authorization answer has Entra's fields; the token endpoint answers `authorization_pending`,
`slow_down` (RFC 8628 section 3.5: the interval grows by 5 s), `authorization_declined`,
`expired_token` and `bad_verification_code`, and after the sandbox approval endpoint the person's
tokens. The server's clock for device codes is moved by the test (no sleeping).
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from entra_rbac_sandbox.entra.devicecode import DEVICE_CODE_GRANT
from entra_rbac_sandbox.entra.oidc import AKS_SERVER_APP_ID, PUBLIC_CLIENTS
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import guid, sample

pytestmark = pytest.mark.timeout(60)
CLIENT = PUBLIC_CLIENTS[0]
SCOPE = f"{AKS_SERVER_APP_ID}/.default openid profile offline_access"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(tmp_path: Path, clock: Clock) -> Iterator[EntraSandboxThread]:
    path = tmp_path / "directory.yaml"
    document = sample()
    document["users"].append(
        {"id": guid("off"), "userPrincipalName": "off@contoso.com", "accountEnabled": False}
    )
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with EntraSandboxThread(path, state_dir=tmp_path / "state") as server:
        server.device_codes.clock = clock
        yield server


@pytest.fixture
def http(issuer: EntraSandboxThread) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(issuer.ca_file)), timeout=10) as client:
        yield client


def _start(issuer: EntraSandboxThread, http: httpx.Client, **form: str) -> httpx.Response:
    body = {"client_id": CLIENT, "scope": SCOPE, **form}
    return http.post(f"{issuer.url}/{issuer.tenant_id}/oauth2/v2.0/devicecode", data=body)


def _poll(issuer: EntraSandboxThread, http: httpx.Client, device_code: str, **form: str) -> httpx.Response:
    body = {"grant_type": DEVICE_CODE_GRANT, "client_id": CLIENT, "device_code": device_code, **form}
    return http.post(issuer.token_url, data=body)


def _decide(issuer: EntraSandboxThread, http: httpx.Client, verb: str, body: Any) -> httpx.Response:
    return http.post(f"{issuer.url}/_sandbox/devicecode/{verb}", json=body)


def _error(answer: httpx.Response) -> tuple[int, str, int]:
    body = answer.json()
    return answer.status_code, body["error"], body["error_codes"][0]


def test_discovery_names_the_device_authorization_endpoint(
    issuer: EntraSandboxThread, http: httpx.Client
) -> None:
    discovery = http.get(f"{issuer.url}/{issuer.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert discovery["device_authorization_endpoint"] == (
        f"https://127.0.0.1:{issuer.port}/{issuer.tenant_id}/oauth2/v2.0/devicecode"
    )


def test_the_device_authorization_answer_has_entras_fields(
    issuer: EntraSandboxThread, http: httpx.Client
) -> None:
    answer = _start(issuer, http)
    assert answer.status_code == 200
    flow = answer.json()
    assert set(flow) == {"device_code", "user_code", "verification_uri", "expires_in", "interval", "message"}
    assert (flow["expires_in"], flow["interval"]) == (900, 5)
    assert len(flow["user_code"]) == 9
    assert flow["user_code"].isalnum()
    assert flow["user_code"].isupper()
    assert flow["verification_uri"] == f"{issuer.url}/_sandbox/devicecode"
    assert flow["message"] == (
        f"To sign in, use a web browser to open the page {flow['verification_uri']} and enter the code "
        f"{flow['user_code']} to authenticate."
    )
    assert "curl" in http.get(flow["verification_uri"]).text  # how a person approves without a browser


def test_pending_then_approved_gives_the_persons_tokens_once(
    issuer: EntraSandboxThread, http: httpx.Client, clock: Clock
) -> None:
    flow = _start(issuer, http).json()
    assert _error(_poll(issuer, http, flow["device_code"])) == (400, "authorization_pending", 70016)
    approved = _decide(
        issuer, http, "approve", {"user_code": flow["user_code"].lower(), "user": "alice@contoso.com"}
    )
    assert approved.json() == {"user_code": flow["user_code"], "user": "alice@contoso.com"}
    clock.now += 5
    answer = _poll(issuer, http, flow["device_code"], client_info="1")
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert (access["aud"], access["upn"], access["oid"]) == (
        AKS_SERVER_APP_ID,
        "alice@contoso.com",
        guid("alice"),
    )
    assert guid("Payments Developers") in access["groups"]
    identity = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (identity["aud"], identity["preferred_username"], identity["iss"]) == (
        CLIENT,
        "alice@contoso.com",
        issuer.issuer,
    )
    padded = tokens["client_info"] + "=" * (-len(tokens["client_info"]) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"uid": guid("alice"), "utid": issuer.tenant_id}
    clock.now += 5
    assert _error(_poll(issuer, http, flow["device_code"])) == (400, "bad_verification_code", 70018)


def test_polling_sooner_than_the_interval_is_slowed_down_by_5_seconds_each_time(
    issuer: EntraSandboxThread, http: httpx.Client, clock: Clock
) -> None:
    flow = _start(issuer, http).json()
    code = flow["device_code"]
    assert _error(_poll(issuer, http, code))[1] == "authorization_pending"  # the first poll: no previous one
    clock.now += 4.9
    assert _error(_poll(issuer, http, code)) == (400, "slow_down", 70016)  # interval 5 -> 10
    clock.now += 9.9
    assert _error(_poll(issuer, http, code))[1] == "slow_down"  # interval 10 -> 15
    clock.now += 15
    assert _error(_poll(issuer, http, code))[1] == "authorization_pending"


def test_a_declined_request_is_authorization_declined(issuer: EntraSandboxThread, http: httpx.Client) -> None:
    flow = _start(issuer, http).json()
    assert _decide(issuer, http, "decline", {"user_code": flow["user_code"]}).status_code == 200
    assert _error(_poll(issuer, http, flow["device_code"])) == (400, "authorization_declined", 65004)


def test_an_expired_code_is_expired_token_and_cannot_be_approved(
    issuer: EntraSandboxThread, http: httpx.Client, clock: Clock
) -> None:
    flow = _start(issuer, http).json()
    clock.now += 900
    assert _error(_poll(issuer, http, flow["device_code"])) == (400, "expired_token", 70019)
    refused = _decide(issuer, http, "approve", {"user_code": flow["user_code"], "user": "alice@contoso.com"})
    assert (refused.status_code, refused.json()["error"]) == (
        400,
        f"user_code: {flow['user_code']!r} has expired",
    )


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"device_code": "nope"}, (400, "bad_verification_code", 70018)),
        ({"device_code": ""}, (400, "invalid_request", 900144)),
        (
            {"client_id": AKS_SERVER_APP_ID},
            (400, "bad_verification_code", 70018),
        ),  # not the client it was issued to
    ],
)
def test_a_poll_for_a_code_not_issued_to_the_client_is_refused(
    issuer: EntraSandboxThread, http: httpx.Client, form: dict[str, str], expected: tuple[int, str, int]
) -> None:
    flow = _start(issuer, http).json()
    assert _error(_poll(issuer, http, **{"device_code": flow["device_code"], **form})) == expected


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"client_id": guid("stranger")}, (400, "unauthorized_client", 700016)),
        ({"scope": f"{guid('nope')}/.default"}, (400, "invalid_resource", 500011)),
        ({"client_id": ""}, (400, "invalid_request", 900144)),
    ],
)
def test_a_device_authorization_for_an_unknown_client_or_resource_is_refused(
    issuer: EntraSandboxThread, http: httpx.Client, form: dict[str, str], expected: tuple[int, str, int]
) -> None:
    assert _error(_start(issuer, http, **form)) == expected


ALICE = "alice@contoso.com"
NO_USER = "user: no user 'nobody@contoso.com' in the directory (a UPN or an object id)"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"user_code": "NOPE", "user": ALICE}, 404, "user_code: no pending sign-in has the code 'NOPE'"),
        ({"user_code": "{code}", "user": "nobody@contoso.com"}, 400, NO_USER),
        (
            {"user_code": "{code}", "user": "off@contoso.com"},
            400,
            "user: the account 'off@contoso.com' is disabled",
        ),
        ({"user": "alice@contoso.com"}, 400, "user_code: required, a string"),
        ({"user_code": "{code}"}, 400, "user: required, a user principal name or object id"),
        ([], 400, "user_code: required, a string"),
    ],
)
def test_the_approval_endpoint_names_the_field_it_refuses(
    issuer: EntraSandboxThread, http: httpx.Client, body: Any, status: int, message: str
) -> None:
    flow = _start(issuer, http).json()
    if isinstance(body, dict):
        body = {k: v.replace("{code}", flow["user_code"]) for k, v in body.items()}
    refused = _decide(issuer, http, "approve", body)
    assert (refused.status_code, refused.json()) == (status, {"error": message})


def test_a_code_is_answered_once(issuer: EntraSandboxThread, http: httpx.Client) -> None:
    flow = _start(issuer, http).json()
    assert (
        _decide(
            issuer, http, "approve", {"user_code": flow["user_code"], "user": "bob@contoso.com"}
        ).status_code
        == 200
    )
    again = _decide(issuer, http, "decline", {"user_code": flow["user_code"]})
    assert (again.status_code, again.json()) == (
        409,
        {"error": f"user_code: {flow['user_code']!r} was already answered"},
    )
