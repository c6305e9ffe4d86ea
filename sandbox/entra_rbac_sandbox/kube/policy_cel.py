"""CEL for ValidatingAdmissionPolicies: Kubernetes' extra functions, the `authorizer`, the check budget.

Holds `run(expression, activation, meter)` (celpy plus the functions admission policies use
beyond standard CEL: strings `split`, `trim`, `indexOf`, `join`, `lowerAscii`; lists `sum`,
`indexOf`; the authorizer library `authorizer.group(g).resource(r)
.subresource(s).namespace(n).name(n).check(verb)` with `.allowed()`, `.reason()`,
`.errored()`, and `authorizer.serviceAccount(ns, name)`), `Authorizer` (the `authorizer`
variable, answering through the sandbox's RBAC) and `Meter`, which charges the costs the real
API server charges for authorizer checks (350,000 each; 1,000,000 per expression, 10,000,000
per policy binding: k8s.io/apiserver/pkg/cel/library/cost.go and pkg/apis/cel/config.go).

Must not: estimate any other CEL cost (the real server also charges for list and string work;
docs/deployment.md records what the shipped policy measured there), or read the store itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from .rbac import Attributes, UserInfo
from .rbac import Authorizer as RbacAuthorizer

CHECK_COST = 350_000
PER_CALL_LIMIT = 1_000_000
RUNTIME_BUDGET = 10_000_000
OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
CALL_LIMIT_EXCEEDED = "operation cancelled: actual cost limit exceeded"


class BudgetExceeded(Exception):
    """The policy binding's whole evaluation ran out of its cost budget."""


@dataclass
class Meter:
    """Costs charged so far: in the policy binding's evaluation, and in the expression running now."""

    spent: int = 0
    expression: list[int] = field(default_factory=list)

    def charge(self, cost: int) -> None:
        self.spent += cost
        if self.expression:
            self.expression[-1] += cost
            if self.expression[-1] > PER_CALL_LIMIT:
                raise CELEvalError(CALL_LIMIT_EXCEEDED)
        if self.spent > RUNTIME_BUDGET:
            raise BudgetExceeded(OUT_OF_BUDGET)


class Authorizer(celtypes.MapType):
    """The `authorizer` variable: checks as the requesting user, through the sandbox's RBAC."""

    def __init__(self, rbac: RbacAuthorizer, user: UserInfo, meter: Meter) -> None:
        super().__init__()
        self.rbac, self.user, self.meter = rbac, user, meter


class _Check(celtypes.MapType):
    """A resource or path check being built; `attrs` holds what is set so far."""

    def __init__(self, authorizer: Authorizer, **attrs: str) -> None:
        super().__init__()
        self.authorizer, self.attrs = authorizer, attrs

    def with_(self, **more: str) -> _Check:
        return _Check(self.authorizer, **{**self.attrs, **more})


class _Decision(celtypes.MapType):
    def __init__(self, allowed: bool, reason: str) -> None:
        super().__init__()
        self.allowed, self.reason = allowed, reason


def _group(target: Authorizer | _Check, group: Any) -> _Check:
    if isinstance(target, Authorizer):
        return _Check(target, group=str(group))
    return target.with_(group=str(group))


def _path(target: Authorizer, path: Any) -> _Check:
    return _Check(target, path=str(path))


def _service_account(target: Authorizer, namespace: Any, name: Any) -> Authorizer:
    user = UserInfo(f"system:serviceaccount:{namespace}:{name}", ("system:serviceaccounts",))
    return Authorizer(target.rbac, user, target.meter)


def _setter(key: str) -> Any:
    def set_(target: _Check, value: Any) -> _Check:
        return target.with_(**{key: str(value)})

    return set_


def _check(target: _Check, verb: Any) -> _Decision:
    authorizer, attrs = target.authorizer, target.attrs
    authorizer.meter.charge(CHECK_COST)
    if "path" in attrs:
        wanted = Attributes(verb=str(verb), path=attrs["path"])
    else:
        wanted = Attributes(
            str(verb),
            attrs.get("group", ""),
            attrs.get("resource", ""),
            attrs.get("subresource", ""),
            attrs.get("namespace", ""),
            attrs.get("name", ""),
        )
    allowed = authorizer.rbac.allowed(authorizer.user, wanted)
    return _Decision(allowed, "" if not allowed else "allowed by RBAC")


def _strings(values: Any) -> list[str]:
    return [str(v) for v in values]


def _index_of(target: Any, wanted: Any) -> celtypes.IntType:
    if isinstance(target, celtypes.StringType):
        return celtypes.IntType(str(target).find(str(wanted)))
    items = list(target)
    return celtypes.IntType(items.index(wanted) if wanted in items else -1)


def _join(target: Any, separator: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(_strings(target)))


def _split(target: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(s) for s in str(target).split(str(separator))])


_FUNCTIONS: dict[str, Any] = {
    # The authorizer library (k8s.io/apiserver/pkg/cel/library/authz.go).
    "group": _group,
    "path": _path,
    "serviceAccount": _service_account,
    "resource": _setter("resource"),
    "subresource": _setter("subresource"),
    "namespace": _setter("namespace"),
    "name": _setter("name"),
    "check": _check,
    "allowed": lambda decision: celtypes.BoolType(decision.allowed),
    "reason": lambda decision: celtypes.StringType(decision.reason),
    "errored": lambda decision: celtypes.BoolType(False),
    "error": lambda decision: celtypes.StringType(""),
    # Strings (cel-go ext.Strings) and lists (k8s.io/apiserver/pkg/cel/library/lists.go).
    "split": _split,
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "join": _join,
    "indexOf": _index_of,
    # celpy's own `contains` fails on strings built by `+` (plain Python strings).
    "contains": lambda container, item: celtypes.BoolType(item in container),
    "sum": lambda items: celtypes.IntType(sum(int(i) for i in items)),
}

_ENVIRONMENT = celpy.Environment()


@lru_cache(maxsize=4096)
def _program(expression: str) -> celpy.Runner:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(expression), functions=_FUNCTIONS)


def run(expression: str, activation: dict[str, Any], meter: Meter) -> Any:
    """The value of `expression`, or the CELEvalError it failed with (BudgetExceeded propagates)."""
    meter.expression.append(0)
    try:
        return _program(expression).evaluate(activation)
    except (CELEvalError, CELParseError) as error:
        return CELEvalError(str(error.args[0]) if error.args else str(error))
    except BudgetExceeded:
        raise
    except Exception as error:  # celpy raises plain TypeErrors etc. on bad operands
        return CELEvalError(str(error))
    finally:
        meter.expression.pop()


class Variables(celtypes.MapType):
    """`variables`: each one evaluated when first read, once per context (as the API server does)."""

    def __init__(self, expressions: dict[str, str], activation: dict[str, Any], meter: Meter) -> None:
        super().__init__()
        self._expressions = expressions
        self._activation = {**activation, "variables": self}
        self._meter = meter
        self._values: dict[str, Any] = {}
        for name in expressions:
            super().__setitem__(celtypes.StringType(name), None)

    def __getitem__(self, key: Any) -> Any:
        name = str(key)
        if name not in self._expressions:
            raise KeyError(key)
        if name not in self._values:
            value = run(self._expressions[name], self._activation, self._meter)
            if isinstance(value, CELEvalError):
                value = CELEvalError(f'composited variable "{name}" fails to evaluate: {value.args[0]}')
            self._values[name] = value
        return self._values[name]
