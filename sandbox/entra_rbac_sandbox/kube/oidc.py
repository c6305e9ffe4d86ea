"""JWT (OIDC) bearer tokens, authenticated as kube-apiserver's structured authentication does.

Holds `authentication_config(...)`, the `apiserver.config.k8s.io/v1` AuthenticationConfiguration
document that both servers are configured from (the real kube-apiserver reads it with
`--authentication-config`, the sandbox with `JwtAuthenticator.from_document`), and
`JwtAuthenticator`, which reads the subset of that document this project uses: per `jwt` entry the
issuer `url`, `audiences` and `certificateAuthority`, and `claimMappings.username` / `groups` as a
`claim` with a `prefix` or as a CEL `expression` over `claims`. `from_document` first refuses, as
`InvalidAuthenticationConfig` with kube-apiserver's start-up message, what the real server will
not load (`validate`): a non-https issuer, no audiences, the claim / prefix / expression rules of
a mapping, and CEL that does not compile there (a comprehension over a claim, whose type is `any`;
a syntax error, worded by celpy).

What a token must be to be accepted (k8s.io/apiserver's oidc authenticator on coreos/go-oidc,
checked against their source): a JWS whose `iss` is a configured issuer (else the authenticator
does not handle it), signed by a key of the issuer's JWKS (fetched from its discovery document
over HTTPS trusting `certificateAuthority` and cached; go-oidc v2.5.0's `remoteKeySet.verify`:
every cached key whose `kid` is the token's, or every cached key when the token names none, is
tried, and when none verifies the JWKS is fetched again and tried the same way), an `aud` among
`audiences`, `exp` not passed (no leeway) and `nbf` at most a
minute ahead (go-oidc v2's fixed clock-skew leeway, measured on the real server). The user name
is the claim (with its prefix) or the expression's string; groups the claim (a string or a
list; missing means no groups) or the expression's list. Every failure is the same 401
`Unauthorized`, as on the real server; nothing here logs or raises the token.
"""

from __future__ import annotations

import functools
import json
import re
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import celpy
import jwt
import yaml
from celpy.celparser import CELParseError

from .rbac import UserInfo

# Seconds: the leeway kube-apiserver v1.36 grants `nbf` (go-oidc v2's fixed minute; v3 has five,
# but the real server refuses a token dated two minutes ahead: tests/e2e/test_token_conformance.py).
# `exp` has none.
NBF_LEEWAY = 60
FETCH_TIMEOUT = 5.0
# AKS's naming: UPN for members, object id otherwise. CEL, evaluated per token.
USERNAME_CLAIMS = "has(claims.upn) ? claims.upn : claims.oid"


class TokenRejected(Exception):
    """A JWT for a configured issuer that does not authenticate (the caller answers 401)."""


def _cel_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid CEL string literal


def authentication_config(
    url: str, audience: str, ca_pem: str, *, username_prefix: str = "", groups_prefix: str = ""
) -> str:
    """The AuthenticationConfiguration document (YAML is a superset of JSON: written as JSON)."""
    username = USERNAME_CLAIMS
    if username_prefix:
        username = f"{_cel_string(username_prefix)} + ({USERNAME_CLAIMS})"
    # A groups prefix is the claim form, `--oidc-groups-prefix`'s equivalent: kube-apiserver refuses
    # `claims.groups.map(...)` at start-up (a claim is of type any, no comprehension range).
    groups: dict[str, str] = {"expression": "has(claims.groups) ? claims.groups : []"}
    if groups_prefix:
        groups = {"claim": "groups", "prefix": groups_prefix}
    document = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": url, "audiences": [audience], "certificateAuthority": ca_pem},
                "claimMappings": {
                    "username": {"expression": username},
                    "groups": groups,
                    "uid": {"claim": "oid"},
                },
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


@dataclass(frozen=True)
class _Mapping:
    claim: str = ""
    prefix: str = ""
    expression: str = ""

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> _Mapping:
        value = value or {}
        return cls(
            str(value.get("claim", "")), str(value.get("prefix") or ""), str(value.get("expression", ""))
        )


@functools.lru_cache(maxsize=64)
def _program(expression: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def _evaluate(expression: str, claims: Mapping[str, Any]) -> Any:
    program = _program(expression)  # compiled when the document was loaded
    try:
        activation = {"claims": celpy.json_to_cel(dict(claims))}  # type: ignore[attr-defined]
        return program.evaluate(activation)
    except Exception as error:  # a CEL evaluation error: the real server answers 401
        raise TokenRejected(f"claim mapping expression failed: {type(error).__name__}") from None


@dataclass
class _Issuer:
    url: str
    audiences: tuple[str, ...]
    ca_pem: str
    username: _Mapping
    groups: _Mapping
    _keys: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, url: str) -> Any:
        context = ssl.create_default_context(cadata=self.ca_pem or None)
        with urllib.request.urlopen(url, context=context, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - https
            return json.loads(response.read())

    def _refresh(self) -> None:
        discovery = self._get(self.url.rstrip("/") + "/.well-known/openid-configuration")
        if discovery.get("issuer") != self.url:
            raise TokenRejected("the discovery document names another issuer")
        keys: list[tuple[str, Any]] = []  # (kid, key), in the JWKS's order; a kid may be missing
        for jwk in self._get(discovery["jwks_uri"]).get("keys", []):
            try:
                keys.append((str(jwk.get("kid", "")), jwt.PyJWK(jwk)))
            except jwt.PyJWTError:
                continue  # a key kind this client cannot use is skipped, as go-jose does
        self._keys = keys

    def _verified_by(self, token: str, kid: str) -> Any:
        """The cached key that verifies `token`'s signature: the one named `kid`, or any when the
        token names none (kube-apiserver tries every key then); None when no key does."""
        for key_id, jwk in list(self._keys):
            if kid and key_id != kid:
                continue
            try:
                jwt.PyJWS().decode(token, jwk.key, algorithms=[jwk.algorithm_name])  # the signature only
            except jwt.PyJWTError:
                continue
            return jwk
        return None

    def key(self, token: str, kid: str) -> Any:
        with self._lock:
            found = self._verified_by(token, kid)
            if found is None:  # a key not yet seen, or a bad signature: fetch the keys again
                try:
                    self._refresh()
                except (OSError, ValueError, KeyError) as error:
                    raise TokenRejected(f"the issuer's keys could not be fetched: {error}") from None
                found = self._verified_by(token, kid)
        if found is None:
            raise TokenRejected("no key of the issuer's JWKS verifies the token's signature")
        return found

    def authenticate(self, token: str, kid: str) -> UserInfo:
        jwk = self.key(token, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwk.key,
                algorithms=[jwk.algorithm_name],
                audience=list(self.audiences),
                issuer=self.url,
                options={"require": ["exp", "iss", "aud"], "verify_nbf": False},
            )
        except jwt.PyJWTError as error:
            raise TokenRejected(type(error).__name__) from None
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and time.time() + NBF_LEEWAY < nbf:
            raise TokenRejected("the token is not valid yet")
        return UserInfo(self._username(claims), tuple(self._groups(claims)))

    def _username(self, claims: Mapping[str, Any]) -> str:
        if self.username.expression:
            value = _evaluate(self.username.expression, claims)
        else:
            value = claims.get(self.username.claim)
            value = None if value is None else self.username.prefix + str(value)
        if not isinstance(value, str) or not value:
            raise TokenRejected("the user name claim is missing or empty")
        return str(value)

    def _groups(self, claims: Mapping[str, Any]) -> list[str]:
        if self.groups.expression:
            value = _evaluate(self.groups.expression, claims)
        elif self.groups.claim:
            value = claims.get(self.groups.claim, [])
        else:
            return []
        values = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(v, str) for v in values):
            raise TokenRejected("the groups claim is not a string or a list of strings")
        prefix = "" if self.groups.expression else self.groups.prefix
        return [prefix + str(v) for v in values]


# -- Load-time validation: what kube-apiserver refuses before it starts -----------------------------

# CEL's comprehension macros. kube-apiserver declares `claims` as map(string, any), so a claim's
# type is `any`, which its type checker will not range over (measured on v1.36.3).
_COMPREHENSION_ON_CLAIM = re.compile(
    r"\bclaims(?P<op>\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:'[^']*'|\"[^\"]*\")\s*\])"
    r"\s*\.\s*(?:all|exists_one|exists|map|filter)\s*\("
)
_NOT_A_RANGE = "expression of type 'any' cannot be range of a comprehension (must be list, map, or dynamic)"
PREFIX_REQUIRED = (
    "prefix is required when claim is set. It can be set to an empty string to disable prefixing"
)


class InvalidAuthenticationConfig(ValueError):
    """The document as kube-apiserver refuses it at start-up: `invalid authentication configuration:
    <field errors>` (one error alone, several as `[e1, e2]`, as Kubernetes aggregates them)."""


def _quoted(value: str) -> str:
    return json.dumps(value)  # Go's %q for the values met here


def _compile_error(expression: str) -> str | None:
    """What cel-go's compile says of `expression` in the claims environment, or None when it compiles."""
    found = _COMPREHENSION_ON_CLAIM.search(expression)
    if found:
        offset = found.start("op")
        line = expression.count("\n", 0, offset) + 1
        start = expression.rfind("\n", 0, offset) + 1
        column = offset - start + 1
        text = expression[start:].split("\n", 1)[0]
        return f"ERROR: <input>:{line}:{column}: {_NOT_A_RANGE}\n | {text}\n | {'.' * (column - 1)}^"
    try:
        _program(expression)
    except CELParseError as error:  # worded by celpy, not cel-go (docs/sandbox.md)
        return f"ERROR: <input>:{error.line}:{error.column}: Syntax error\n{error.args[0].rstrip()}"
    return None


def _mapping_errors(path: str, mapping: Mapping[str, Any] | None, *, prefixed: bool = True) -> list[str]:
    """`prefixed`: the mapping has a `prefix` (username, groups; uid has none)."""
    if not mapping:
        return []
    claim, expression, prefix = (
        mapping.get("claim") or "",
        mapping.get("expression") or "",
        mapping.get("prefix"),
    )
    if claim and expression:
        return [f'{path}: Invalid value: "": claim and expression can\'t both be set']
    if expression:
        errors = []
        if prefix is not None:
            value = _quoted(str(prefix))
            errors.append(
                f"{path}.prefix: Invalid value: {value}: may not be specified when expression is set"
            )
        failed = _compile_error(expression)
        if failed is not None:
            errors.append(
                f"{path}.expression: Invalid value: {_quoted(expression)}: compilation failed: {failed}"
            )
        return errors
    if claim and prefixed and prefix is None:
        return [f"{path}.prefix: Required value: {PREFIX_REQUIRED}"]
    return []


def validate(document: Mapping[str, Any]) -> None:
    """Raise InvalidAuthenticationConfig with kube-apiserver's words for what this project's subset
    of the document can get wrong: issuer URL scheme, audiences, the claim mappings' claim / prefix /
    expression rules, and CEL that does not compile (comprehensions over a claim, syntax)."""
    errors: list[str] = []
    for index, entry in enumerate(document.get("jwt") or []):
        issuer = entry.get("issuer") or {}
        url = str(issuer.get("url", ""))
        if urllib.parse.urlparse(url).scheme != "https":
            errors.append(f"jwt[{index}].issuer.url: Invalid value: {_quoted(url)}: URL scheme must be https")
        if not issuer.get("audiences"):
            field = f"jwt[{index}].issuer.audiences"
            errors.append(f"{field}: Required value: at least one {field} is required")
        mappings = entry.get("claimMappings") or {}
        for name in ("username", "groups", "uid"):
            path = f"jwt[{index}].claimMappings.{name}"
            errors += _mapping_errors(path, mappings.get(name), prefixed=name != "uid")
    if errors:
        detail = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise InvalidAuthenticationConfig(f"invalid authentication configuration: {detail}")


class JwtAuthenticator:
    """The `jwt` issuers of an AuthenticationConfiguration."""

    def __init__(self, issuers: Sequence[_Issuer]) -> None:
        self._issuers = {i.url: i for i in issuers}

    @classmethod
    def from_document(cls, document: str | Mapping[str, Any]) -> JwtAuthenticator:
        parsed = yaml.safe_load(document) if isinstance(document, str) else document
        if parsed.get("kind") != "AuthenticationConfiguration":
            raise ValueError("not an AuthenticationConfiguration document")
        validate(parsed)
        issuers = []
        for entry in parsed.get("jwt") or []:
            issuer = entry["issuer"]
            mappings = entry.get("claimMappings") or {}
            issuers.append(
                _Issuer(
                    url=issuer["url"],
                    audiences=tuple(issuer.get("audiences") or ()),
                    ca_pem=issuer.get("certificateAuthority", ""),
                    username=_Mapping.parse(mappings.get("username")),
                    groups=_Mapping.parse(mappings.get("groups")),
                )
            )
        return cls(issuers)

    def authenticate(self, token: str) -> UserInfo | None:
        """The token's user; None when it is no JWT of a configured issuer; TokenRejected else."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        issuer = self._issuers.get(str(unverified.get("iss", "")))
        if issuer is None:
            return None
        return issuer.authenticate(token, str(header.get("kid", "")))
