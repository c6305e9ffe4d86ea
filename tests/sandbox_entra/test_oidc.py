"""The sandbox directory as an OIDC issuer: discovery, RS256 JWKS with rotation, sign-in grants, claims."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from entra_rbac_sandbox.entra.directory import DirectoryFileError, parse_directory
from entra_rbac_sandbox.entra.oidc import AKS_SERVER_APP_ID, PUBLIC_CLIENTS
from entra_rbac_sandbox.entra.server import EntraSandboxThread
from tests.sandbox_entra.tenant import group, guid, sample

pytestmark = pytest.mark.timeout(60)
OTHER_CLUSTER = "11111111-2222-3333-4444-555555555555"
TEST_SECRET = "sandbox-test-secret"


def _directory() -> dict[str, Any]:
    document = sample()
    document["users"][0]["password"] = "alice-password"
    document["servicePrincipals"][0]["clientSecret"] = "ci-secret"
    document["servicePrincipals"][1]["clientSecret"] = "mi-secret"
    document["signIn"] = {"testSecret": TEST_SECRET, "applications": [OTHER_CLUSTER]}
    return document


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[EntraSandboxThread]:
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(_directory()), encoding="utf-8")
    server = EntraSandboxThread(path, state_dir=tmp_path / "state")
    with server:
        yield server


def _http(server: EntraSandboxThread) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(server.ca_file)), timeout=10)


def _password(
    server: EntraSandboxThread, username: str, password: str, scope: str | None = None
) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENTS[0],
        "username": username,
        "password": password,
        "scope": scope or f"{AKS_SERVER_APP_ID}/.default",
    }
    with _http(server) as http:
        return http.post(server.token_url, data=form)


def _verify(server: EntraSandboxThread, token: str, audience: str = AKS_SERVER_APP_ID) -> dict[str, Any]:
    """Validate as a relying party does: discovery, then the JWKS it names, then the signature."""
    with _http(server) as http:
        discovery = http.get(f"{server.url}/{server.tenant_id}/v2.0/.well-known/openid-configuration").json()
        keys = http.get(discovery["jwks_uri"]).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys if k["kid"] == kid)
    public = jwt.PyJWK(key).key
    claims: dict[str, Any] = jwt.decode(
        token, public, algorithms=["RS256"], audience=audience, issuer=discovery["issuer"]
    )
    return claims


def test_discovery_names_the_issuer_the_tokens_carry(issuer: EntraSandboxThread) -> None:
    with _http(issuer) as http:
        found = http.get(f"{issuer.url}/{issuer.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert found["issuer"] == f"{issuer.url}/{issuer.tenant_id}/v2.0" == issuer.issuer
    assert found["id_token_signing_alg_values_supported"] == ["RS256"]
    assert found["jwks_uri"] == f"{issuer.url}/{issuer.tenant_id}/discovery/v2.0/keys"


def test_password_grant_issues_a_v2_token_with_entra_claims(issuer: EntraSandboxThread) -> None:
    answer = _password(issuer, "alice@contoso.com", "alice-password")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    token = body["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = _verify(issuer, token)
    assert claims["aud"] == AKS_SERVER_APP_ID
    assert claims["iss"] == issuer.issuer
    assert claims["oid"] == guid("alice")
    assert claims["upn"] == claims["preferred_username"] == "alice@contoso.com"
    assert claims["tid"] == issuer.tenant_id
    assert claims["ver"] == "2.0"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    # Transitive security groups: Payments Developers, Platform (nested, through a cycle), O'Brien's
    # Team; not the deleted Retired group.
    assert set(claims["groups"]) == {guid("Payments Developers"), guid("Platform"), guid("O'Brien's Team")}
    assert claims["sub"] != claims["oid"]  # pairwise


def test_the_test_secret_signs_in_any_user_and_a_guest_has_no_upn(issuer: EntraSandboxThread) -> None:
    answer = _password(issuer, "guest_fabrikam.com#EXT#@contoso.com", TEST_SECRET)
    claims = _verify(issuer, answer.json()["access_token"])
    assert "upn" not in claims
    assert claims["oid"] == guid("guest")
    assert claims["preferred_username"] == "guest@contoso.com"


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("alice@contoso.com", "wrong", "AADSTS50126"),
        ("nobody@contoso.com", TEST_SECRET, "AADSTS50034"),
        ("alice@contoso.com", "", "AADSTS50126"),
    ],
)
def test_bad_credentials_are_refused_as_entra_does(
    issuer: EntraSandboxThread, username: str, password: str, code: str
) -> None:
    answer = _password(issuer, username, password)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_description"].startswith(code)


def test_an_unknown_audience_is_refused_and_another_cluster_is_served(issuer: EntraSandboxThread) -> None:
    refused = _password(issuer, "alice@contoso.com", TEST_SECRET, scope=f"{guid('nope')}/.default")
    assert refused.status_code == 400
    assert refused.json()["error_description"].startswith("AADSTS500011")
    other = _password(issuer, "alice@contoso.com", TEST_SECRET, scope=f"api://{OTHER_CLUSTER}/.default")
    assert _verify(issuer, other.json()["access_token"], audience=OTHER_CLUSTER)["aud"] == OTHER_CLUSTER


@pytest.mark.parametrize(
    ("grant", "explained"),
    [("password", True), ("client_credentials", False)],
)
def test_an_unknown_resource_is_refused_with_entras_text_for_each_grant(
    issuer: EntraSandboxThread, grant: str, explained: bool
) -> None:
    """AADSTS500011 as Entra words it: a person's sign-in gets the sentence about installation."""
    scope = f"{guid('nope')}/.default"
    if grant == "password":
        refused = _password(issuer, "alice@contoso.com", TEST_SECRET, scope=scope)
    else:
        form = {
            "grant_type": grant,
            "client_id": guid("ci/app"),
            "client_secret": "ci-secret",
            "scope": scope,
        }
        with _http(issuer) as http:
            refused = http.post(issuer.token_url, data=form)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_resource")
    description = refused.json()["error_description"].split(" Trace ID: ")[0]
    expected = (
        f"AADSTS500011: The resource principal named {scope} was not found in the tenant {issuer.tenant_id}."
    )
    if explained:
        expected += (
            " This can happen if the application has not been installed by the administrator of the tenant."
        )
    assert description == expected


@pytest.mark.parametrize(("name", "secret"), [("ci", "ci-secret"), ("mi", "mi-secret")])
def test_service_principals_and_managed_identities_sign_in_with_client_credentials(
    issuer: EntraSandboxThread, name: str, secret: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": guid(f"{name}/app"),
        "client_secret": secret,
        "scope": f"{AKS_SERVER_APP_ID}/.default",
    }
    with _http(issuer) as http:
        answer = http.post(issuer.token_url, data=form)
        wrong = http.post(issuer.token_url, data={**form, "client_secret": "nope"})
    claims = _verify(issuer, answer.json()["access_token"])
    assert claims["oid"] == guid(name)
    assert claims["idtyp"] == "app"
    assert "upn" not in claims
    assert guid("Payments Developers") in claims["groups"] or guid("Platform") in claims["groups"]
    assert wrong.status_code == 401
    assert wrong.json()["error_description"].startswith("AADSTS7000215")


def test_more_than_200_groups_give_the_overage_claim(issuer: EntraSandboxThread) -> None:
    document = _directory()
    base = document["groups"]
    # bob is in 3 of the sample's groups (Platform, Platform Admins, Payments Developers by nesting).
    document["groups"] = base + [group(f"Many {n}", [guid("bob")]) for n in range(197)]
    issuer.write_directory(document)
    claims = _verify(issuer, issuer.token_for("bob@contoso.com"))
    assert len(claims["groups"]) == 200
    assert "_claim_names" not in claims
    document["groups"] = base + [group(f"Many {n}", [guid("bob")]) for n in range(198)]
    issuer.write_directory(document)
    claims = _verify(issuer, _password(issuer, "bob@contoso.com", TEST_SECRET).json()["access_token"])
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}
    endpoint = claims["_claim_sources"]["src1"]["endpoint"]
    assert endpoint == f"https://graph.windows.net/{issuer.tenant_id}/users/{guid('bob')}/getMemberObjects"


def test_keys_rotate_and_a_retired_key_no_longer_validates(issuer: EntraSandboxThread) -> None:
    old = issuer.token_for("alice@contoso.com")
    old_kid = jwt.get_unverified_header(old)["kid"]
    new_kid = issuer.sign_in.keys.rotate()
    new = issuer.token_for("alice@contoso.com")
    assert jwt.get_unverified_header(new)["kid"] == new_kid != old_kid
    assert _verify(issuer, old)["oid"] == _verify(issuer, new)["oid"]  # both published
    issuer.sign_in.keys.retire(old_kid)
    with pytest.raises(StopIteration):  # the kid is gone from the JWKS
        _verify(issuer, old)
    assert _verify(issuer, new)["oid"] == guid("alice")


def test_secrets_never_reach_graph(issuer: EntraSandboxThread) -> None:
    directory = issuer.directory.current()
    user = directory.get(guid("alice"))
    assert user is not None
    assert "password" not in user.properties
    principal = directory.get(guid("ci"))
    assert principal is not None
    assert "clientSecret" not in principal.properties


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"signIn": {"testSecret": "short"}}, "signIn.testSecret: String should have at least 8 characters"),
        (
            {"signIn": {"applications": ["cluster"]}},
            "signIn.applications: Value error, must be a GUID, got 'cluster'",
        ),
        ({"signIn": {"secret": "x"}}, "signIn.secret: Extra inputs are not permitted"),
        ({"users": [{"id": guid("a"), "userPrincipalName": "a@b", "password": ""}]}, "users[0].password"),
    ],
)
def test_sign_in_settings_are_validated_with_the_field_named(document: dict[str, Any], message: str) -> None:
    with pytest.raises(
        DirectoryFileError, match="^directory: " + message.replace("[", r"\[").replace("]", r"\]")
    ):
        parse_directory(document)
