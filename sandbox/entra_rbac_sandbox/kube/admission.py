"""ValidatingAdmissionPolicies, evaluated on creates and updates as kube-apiserver evaluates them.

Holds `admit(cluster state, request)`: for every ValidatingAdmissionPolicyBinding (in name
order) whose policy matches the request (matchConstraints and the binding's matchResources:
resourceRules, operations, objectSelector), with its params (paramKind + paramRef by name;
parameterNotFoundAction), its matchConditions, its lazily evaluated variables and its
validations (expression, message / messageExpression, reason), the actions of the binding
(Deny: the first denial is the answer, a `Status` worded as the real one; Warn: a Warning
header; Audit: nothing, the sandbox keeps no audit log) and failurePolicy for errors.
The CEL runs in policy_cel.py, with the sandbox's RBAC behind `authorizer`.

Must not: evaluate DELETE or CONNECT requests (no shipped policy matches them), namespaceSelector
or paramRef selectors (refused as configuration errors rather than ignored), or audit annotations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError

from . import errors
from .policy_cel import Authorizer as CelAuthorizer
from .policy_cel import BudgetExceeded, Meter, Variables, run
from .rbac import Authorizer, UserInfo
from .resources import ResourceType
from .selectors import matches_labels, structured_selector
from .store import Store

GROUP = "admissionregistration.k8s.io"
POLICIES = (GROUP, "validatingadmissionpolicies")
BINDINGS = (GROUP, "validatingadmissionpolicybindings")
MAX_MESSAGE = 5 * 1024
_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}


@dataclass(frozen=True)
class Request:
    """One write as admission sees it (after defaulting and schema validation)."""

    rtype: ResourceType
    operation: str  # CREATE or UPDATE
    obj: dict[str, Any]
    old: dict[str, Any] | None
    user: UserInfo
    subresource: str = ""
    dry_run: bool = False

    @property
    def name(self) -> str:
        return str(self.obj["metadata"].get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", "")) if self.rtype.namespaced else ""


@dataclass(frozen=True)
class _Denial:
    policy: str
    binding: str
    message: str
    reason: str


def admit(store: Store, authorizer: Authorizer, request: Request) -> list[str]:
    """Warnings to send; raises the real server's error for the first denial."""
    warnings: list[str] = []
    denials: list[_Denial] = []
    for binding in store.list(BINDINGS):
        policy = store.get(POLICIES, "", (binding.get("spec") or {}).get("policyName", ""))
        if policy is None or not _matches(policy["spec"], request) or not _matches(binding["spec"], request):
            continue
        names = (policy["metadata"]["name"], binding["metadata"]["name"])
        fail_open = policy["spec"].get("failurePolicy") == "Ignore"
        actions = binding["spec"].get("validationActions") or []
        params, problem = _params(store, policy, binding, request)
        if problem is not None:
            if not fail_open:  # configuration errors deny whatever the binding's actions
                denials.append(_Denial(*names, f"failed to configure binding: {problem}", "Invalid"))
            continue
        if params is _SKIP:
            continue
        for message, reason in _evaluate(authorizer, policy, params, request):
            if reason == "" and fail_open:
                continue  # an error, and the policy fails open
            if "Deny" in actions:
                denials.append(_Denial(*names, message, reason or "Invalid"))
            if "Warn" in actions:
                warnings.append(
                    f"Validation failed for ValidatingAdmissionPolicy '{names[0]}' with binding "
                    f"'{names[1]}': {message}"
                )
    if denials:
        raise _error(request, denials[0])
    return warnings


def _error(request: Request, denial: _Denial) -> errors.ApiError:
    """admission.NewForbidden with the validation's reason and code, plus the one cause it adds."""
    inner = (
        f"ValidatingAdmissionPolicy '{denial.policy}' with binding '{denial.binding}' denied request: "
        f"{denial.message}"
    )
    rtype = request.rtype
    qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    details: dict[str, Any] = {"name": request.name, "kind": rtype.plural, "causes": [{"message": inner}]}
    if rtype.group:
        details["group"] = rtype.group
    code = _CODES.get(denial.reason, 422)
    return errors.ApiError(code, denial.reason, f"{subject} is forbidden: {inner}", details=details)


def _rule_matches(rule: dict[str, Any], request: Request) -> bool:
    rtype = request.rtype
    resource = f"{rtype.plural}/{request.subresource}" if request.subresource else rtype.plural
    resources = rule.get("resources") or []
    wanted = (
        resource in resources
        or "*" in resources
        or (request.subresource and f"*/{request.subresource}" in resources)
        or (not request.subresource and f"{rtype.plural}/*" in resources)
        or "*/*" in resources
    )

    def has(values: list[str] | None, value: str) -> bool:
        return bool(values) and (value in values or "*" in values)  # type: ignore[operator]

    return (
        bool(wanted)
        and has(rule.get("apiGroups"), rtype.group)
        and has(rule.get("apiVersions"), rtype.version)
        and has(rule.get("operations"), request.operation)
    )


def _matches(spec: dict[str, Any], request: Request) -> bool:
    """matchConstraints (policy) or matchResources (binding; absent: everything the policy matches)."""
    match = spec.get("matchConstraints") if "policyName" not in spec else spec.get("matchResources")
    if match is None:
        return "policyName" in spec
    rules = match.get("resourceRules")
    if rules is not None and not any(_rule_matches(rule, request) for rule in rules):
        return False
    if any(_rule_matches(rule, request) for rule in match.get("excludeResourceRules") or []):
        return False
    selector = match.get("objectSelector")
    if selector:
        labels = (request.obj.get("metadata") or {}).get("labels") or {}
        old_labels = ((request.old or {}).get("metadata") or {}).get("labels") or {}
        requirements = structured_selector(selector)
        return matches_labels(requirements, labels) or (
            request.old is not None and matches_labels(requirements, old_labels)
        )
    return True


_SKIP: dict[str, Any] = {}  # params not found, and parameterNotFoundAction Allow


def _params(
    store: Store, policy: dict[str, Any], binding: dict[str, Any], request: Request
) -> tuple[Any, str | None]:
    """The params object (None without paramKind; _SKIP: none found, allowed), or a config error."""
    kind = policy["spec"].get("paramKind")
    if not kind:
        return None, None
    ref = binding["spec"].get("paramRef") or {}
    if ref.get("selector") is not None or not ref.get("name"):
        return None, "the sandbox supports paramRef by name only"
    group, _, version = str(kind.get("apiVersion", "")).rpartition("/")
    found = None
    for key in store.keys_list():
        if key[0] == group:
            candidate = store.get(key, ref.get("namespace") or request.namespace, ref["name"])
            if candidate is not None and candidate.get("kind") == kind.get("kind"):
                found = candidate
    if found is None and ref.get("parameterNotFoundAction") == "Deny":
        return None, "no params found for policy binding with `Deny` parameterNotFoundAction"
    if found is None:
        return _SKIP, None
    return {**found, "apiVersion": f"{group}/{version}" if group else version}, None


def _request_variable(request: Request) -> dict[str, Any]:
    rtype = request.rtype
    return {
        "kind": {"group": rtype.group, "version": rtype.version, "kind": rtype.kind},
        "resource": {"group": rtype.group, "version": rtype.version, "resource": rtype.plural},
        "subResource": request.subresource,
        "name": request.name,
        "namespace": request.namespace,
        "operation": request.operation,
        "userInfo": {"username": request.user.name, "groups": list(request.user.groups)},
        "dryRun": request.dry_run,
    }


def _evaluate(
    authorizer: Authorizer, policy: dict[str, Any], params: Any, request: Request
) -> list[tuple[str, str]]:
    """(message, reason) per failed validation; reason "" marks an evaluation error."""
    spec = policy["spec"]
    plain = {
        "object": request.obj,
        "oldObject": request.old,
        "request": _request_variable(request),
        "params": params,
        "namespaceObject": None,
    }
    base = {name: json_to_cel(json.loads(json.dumps(value))) for name, value in plain.items()}
    meter = Meter()
    expressions = {v["name"]: v["expression"] for v in spec.get("variables") or []}
    with_authorizer = {**base, "authorizer": CelAuthorizer(authorizer, request.user, meter)}
    activation = {**with_authorizer, "variables": Variables(expressions, with_authorizer, meter)}
    try:
        for condition in spec.get("matchConditions") or []:
            outcome = run(condition["expression"], activation, meter)
            if isinstance(outcome, CELEvalError):
                return [(f"matchCondition '{condition['name']}': {outcome.args[0]}", "")]
            if outcome != BoolType(True):
                return []
        failures: list[tuple[int, str, str]] = []
        for index, validation in enumerate(spec.get("validations") or []):
            outcome = run(validation["expression"], activation, meter)
            if isinstance(outcome, CELEvalError):
                message = f"expression '{validation['expression']}' resulted in error: {outcome.args[0]}"
                failures.append((index, message, ""))
            elif outcome != BoolType(True):
                failures.append((index, "", validation.get("reason") or "Invalid"))
    except BudgetExceeded as exceeded:
        return [(str(exceeded), "")]
    # Message expressions see params but no authorizer, in a context of their own.
    message_meter = Meter()
    messages = {**base, "variables": Variables(expressions, base, message_meter)}
    validations = spec.get("validations") or []
    return [
        (message or _message(validations[index], messages, message_meter), reason)
        for index, message, reason in failures
    ]


def _message(validation: dict[str, Any], activation: dict[str, Any], meter: Meter) -> str:
    if validation.get("messageExpression"):
        try:
            produced = run(validation["messageExpression"], activation, meter)
        except BudgetExceeded:
            produced = None
        if isinstance(produced, str):
            text = produced.strip()
            if text and len(text) <= MAX_MESSAGE and "\n" not in text:
                return text
    if str(validation.get("message") or "").strip():
        return str(validation["message"]).strip()
    return f"failed expression: {str(validation['expression']).strip()}"
