"""AuthenticationConfiguration documents refused at load, alike by kube-apiserver and the sandbox.

The real param starts the pinned kube-apiserver binary with the document (`--authentication-config`;
it validates the file before it reaches etcd, so it exits within seconds) and reads the error it
exits with; the sandbox param loads the same document into `ApiServerThread`. Each case asserts the
text captured from kube-apiserver v1.36.3, so the real param keeps the literal honest. What the
sandbox words differently is a strict xfail on its param (docs/sandbox.md).
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_rbac_sandbox.kube.oidc import InvalidAuthenticationConfig, JwtAuthenticator, authentication_config
from entra_rbac_sandbox.kube.server import ApiServerThread
from tests.controlplane.binaries import BinariesNotFoundError, find_binaries
from tests.controlplane.harness import free_port

ISSUER = "https://127.0.0.1:1/tenant/v2.0"
GROUPS = {"expression": "has(claims.groups) ? claims.groups : []"}
NOT_A_RANGE = "expression of type 'any' cannot be range of a comprehension (must be list, map, or dynamic)"
PREFIX_REQUIRED = (
    "prefix is required when claim is set. It can be set to an empty string to disable prefixing"
)


def _document(
    username: Any, groups: Any = GROUPS, url: str = ISSUER, audiences: tuple[str, ...] = ("app",)
) -> str:
    entry = {
        "issuer": {"url": url, "audiences": list(audiences)},
        "claimMappings": {"username": username, "groups": groups},
    }
    return json.dumps(
        {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AuthenticationConfiguration", "jwt": [entry]}
    )


def _range_error(path: str, expression: str) -> str:
    return (
        f"invalid authentication configuration: {path}: Invalid value: {json.dumps(expression)}: "
        f"compilation failed: ERROR: <input>:1:7: {NOT_A_RANGE}\n | {expression}\n | ......^"
    )


UPN = {"expression": "claims.upn"}
MAP = "claims.groups.map(g, 'oidc:' + g)"
FILTER = "claims.groups.filter(g, g != 'x')"
EXISTS = "claims.groups.exists(g, g == 'x') ? claims.upn : claims.oid"
INDEX = "claims['groups'].map(g, g)"
M = "jwt[0].claimMappings"
REFUSED = "invalid authentication configuration: "
SYNTAX = (
    "ERROR: <input>:1:13: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
    "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n"
    " | claims.upn +\n | ............^"
)
CASES: dict[str, tuple[str, str]] = {
    "a groups prefix by map() over the claim": (
        _document(UPN, {"expression": MAP}),
        _range_error(f"{M}.groups.expression", MAP),
    ),
    "filter() over a claim": (
        _document(UPN, {"expression": FILTER}),
        _range_error(f"{M}.groups.expression", FILTER),
    ),
    "exists() over a claim, in the username": (
        _document({"expression": EXISTS}),
        _range_error(f"{M}.username.expression", EXISTS),
    ),
    "map() over claims['groups']": (
        _document(UPN, {"expression": INDEX}),
        _range_error(f"{M}.groups.expression", INDEX),
    ),
    "a username claim without prefix": (
        _document({"claim": "upn"}),
        f"{REFUSED}{M}.username.prefix: Required value: {PREFIX_REQUIRED}",
    ),
    "a groups claim without prefix": (
        _document(UPN, {"claim": "groups"}),
        f"{REFUSED}{M}.groups.prefix: Required value: {PREFIX_REQUIRED}",
    ),
    "claim and expression": (
        _document({"claim": "upn", "prefix": "", "expression": "claims.upn"}),
        f'{REFUSED}{M}.username: Invalid value: "": claim and expression can\'t both be set',
    ),
    "a prefix beside an expression": (
        _document({"expression": "claims.upn", "prefix": "oidc:"}),
        f'{REFUSED}{M}.username.prefix: Invalid value: "oidc:": may not be specified when expression is set',
    ),
    "an http issuer": (
        _document(UPN, url="http://127.0.0.1:1/tenant"),
        f'{REFUSED}jwt[0].issuer.url: Invalid value: "http://127.0.0.1:1/tenant": URL scheme must be https',
    ),
    "no audiences": (
        _document(UPN, audiences=()),
        f"{REFUSED}jwt[0].issuer.audiences: Required value: at least one jwt[0].issuer.audiences is required",
    ),
    "a CEL syntax error": (
        _document({"expression": "claims.upn +"}),
        f'{REFUSED}{M}.username.expression: Invalid value: "claims.upn +": compilation failed: {SYNTAX}',
    ),
}
SANDBOX_WORDS_IT_OTHERWISE = {
    "a CEL syntax error": "the sandbox parses CEL with celpy, whose syntax errors read otherwise"
}
KLOG_ERROR = re.compile(
    r'"command failed" err=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|<\n(?P<block>.*?)\n >)', re.DOTALL
)


def _real_refusal(binaries: Path, folder: Path, name: str, document: str) -> str:
    """The error kube-apiserver exits with when started with `document` (it never reaches etcd)."""
    config = folder / f"{abs(hash(name))}.json"
    config.write_text(document, encoding="utf-8")
    command = [
        str(binaries / "kube-apiserver"),
        "--etcd-servers=http://127.0.0.1:1",  # never reached: the file is refused first
        f"--authentication-config={config}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={folder / 'sa.pub'}",
        f"--service-account-signing-key-file={folder / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        f"--cert-dir={folder / 'pki'}",
        f"--secure-port={free_port()}",  # it listens before it reads the file
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    found = KLOG_ERROR.search(done.stderr)
    assert done.returncode != 0, f"{name}: kube-apiserver started: {done.stderr[-2000:]}"
    assert found, f"{name}: kube-apiserver did not refuse the document: {done.stderr[-2000:]}"
    if found["quoted"] is not None:
        return str(json.loads(f'"{found["quoted"]}"'))
    return "\n".join(line.removeprefix("\t") for line in found["block"].split("\n"))


@pytest.fixture(scope="module")
def real_refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every case's refusal by the real kube-apiserver, the binaries started a few at a time."""
    try:
        binaries = find_binaries()
    except BinariesNotFoundError as error:
        pytest.fail(str(error), pytrace=False)
    folder = tmp_path_factory.mktemp("authn-config")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "sa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (folder / "sa.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            name: pool.submit(_real_refusal, binaries, folder, name, document)
            for name, (document, _) in CASES.items()
        }
        return {name: future.result() for name, future in futures.items()}


def _sandbox_refusal(document: str) -> str:
    with pytest.raises(InvalidAuthenticationConfig) as refused:
        ApiServerThread(authentication_config=document)
    return str(refused.value)


def _params() -> list[Any]:
    params = []
    for name in CASES:
        params.append(pytest.param("real", name, id=f"real-{name}"))
        marks = []
        if name in SANDBOX_WORDS_IT_OTHERWISE:
            marks.append(
                pytest.mark.xfail(strict=True, reason=f"sandbox diverges: {SANDBOX_WORDS_IT_OTHERWISE[name]}")
            )
        params.append(pytest.param("sandbox", name, id=f"sandbox-{name}", marks=marks))
    return params


@pytest.mark.parametrize(("server", "case"), _params())
def test_a_bad_authentication_configuration_is_refused_at_load_alike(
    server: str, case: str, request: pytest.FixtureRequest
) -> None:
    document, expected = CASES[case]
    refusal = (
        request.getfixturevalue("real_refusals")[case] if server == "real" else _sandbox_refusal(document)
    )
    assert refusal == expected


def test_a_refused_syntax_error_still_names_the_field_on_the_sandbox() -> None:
    """What holds of the syntax-error divergence: the same field, value and 'compilation failed'."""
    document, expected = CASES["a CEL syntax error"]
    head = expected.split("compilation failed: ")[0]
    assert _sandbox_refusal(document).startswith(head + "compilation failed: ERROR: <input>:1:")


@pytest.mark.parametrize("prefixes", [("", ""), ("oidc:", "oidc:")], ids=["no prefixes", "oidc: prefixes"])
def test_the_documents_this_project_writes_load_in_the_sandbox(prefixes: tuple[str, str]) -> None:
    """Both the session's control plane and examples/05's start with these (tests/e2e)."""
    document = authentication_config(
        ISSUER, "app", "", username_prefix=prefixes[0], groups_prefix=prefixes[1]
    )
    JwtAuthenticator.from_document(document)
