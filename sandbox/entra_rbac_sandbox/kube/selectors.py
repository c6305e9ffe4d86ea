"""Label and field selectors: parsing the query-string forms and matching objects.

Holds the parsers for `labelSelector` (equality- and set-based, the grammar of
k8s.io/apimachinery/pkg/labels) and `fieldSelector` (k8s.io/apimachinery/pkg/fields), and the
matcher for a structured LabelSelector (matchLabels / matchExpressions). Raises ValueError with
a message naming the bad requirement; holds no HTTP handling.

Written here rather than taken from a library: no maintained Python package implements the
Kubernetes selector grammar, and it is small.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=()]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    operator: str  # in, notin, exists, !exists (= and == are `in`, != is `notin`)
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside a `(...)` value set."""
    terms, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return terms


def _check(key: str, values: list[str], term: str) -> None:
    if not _KEY.match(key):
        raise ValueError(f"unable to parse requirement: {term!r}: invalid label key {key!r}")
    for value in values:
        if not _VALUE.match(value):
            raise ValueError(f"unable to parse requirement: {term!r}: invalid label value {value!r}")


def _parse_term(term: str) -> Requirement:
    if match := _SET_TERM.match(term):
        values = [v.strip() for v in match["values"].split(",") if v.strip()]
        _check(match["key"], values, term)
        return Requirement(match["key"], match["op"], frozenset(values))
    if match := _EQ_TERM.match(term):
        _check(match["key"], [match["value"]], term)
        operator = "notin" if match["op"] == "!=" else "in"
        return Requirement(match["key"], operator, frozenset([match["value"]]))
    if match := _EXISTS_TERM.match(term):
        _check(match["key"], [], term)
        return Requirement(match["key"], "!exists" if match["neg"] else "exists", frozenset())
    raise ValueError(f"unable to parse requirement: {term.strip()!r}")


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `labelSelector=`; an empty selector matches everything."""
    if not text or not text.strip():
        return []
    return [_parse_term(term) for term in _split_terms(text)]


def matches_labels(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in requirements)


def structured_selector(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """A LabelSelector object (matchLabels, matchExpressions) as requirements."""
    selector = selector or {}
    reqs = [Requirement(k, "in", frozenset([v])) for k, v in (selector.get("matchLabels") or {}).items()]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator", ""))
        if operator is None:
            raise ValueError(f"{expression.get('operator')!r} is not a valid label selector operator")
        values = frozenset(expression.get("values") or [])
        reqs.append(Requirement(expression.get("key", ""), operator, values))
    return reqs


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: a dotted path compared for (in)equality."""

    path: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        actual = "" if current is None else str(current)
        return (actual == self.value) != self.negate


def parse_field_selector(text: str | None, allowed: Callable[[str], bool]) -> list[FieldRequirement]:
    """Parse `fieldSelector=`; `allowed` says which field paths this kind supports."""
    if not text or not text.strip():
        return []
    reqs = []
    for term in text.split(","):
        match = re.match(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not match:
            raise ValueError(f"invalid selector: {term!r}; can't understand {term!r}")
        path, operator, value = match.groups()
        if not allowed(path):
            raise ValueError(f"field label not supported: {path}")
        reqs.append(FieldRequirement(path, value, operator == "!="))
    return reqs
