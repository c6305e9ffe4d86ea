"""Label selector matching, with the semantics of Kubernetes' `k8s.io/apimachinery/pkg/labels`.

Holds one pure function over the spec's `LabelSelector` model. Written here rather than taken
from a library because no maintained Python package evaluates a LabelSelector object (the
official client only passes selector strings to the API server), and the rules are few:
- every `matchLabels` entry and every expression must hold (AND);
- `In`: the key is present and its value is listed; `NotIn`: the key is ABSENT or its value is
  not listed; `Exists`: present; `DoesNotExist`: absent;
- an empty selector matches everything (the spec model forbids it; see `LabelSelector`).
"""

from __future__ import annotations

from collections.abc import Mapping

from entra_rbac.core.models import LabelSelector, LabelSelectorRequirement, SelectorOperator


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether an object with `labels` is selected by `selector`."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    return all(_requirement_matches(r, labels) for r in selector.match_expressions)


def _requirement_matches(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    match requirement.operator:
        case SelectorOperator.IN:
            return present and labels[requirement.key] in requirement.values
        case SelectorOperator.NOT_IN:
            return not present or labels[requirement.key] not in requirement.values
        case SelectorOperator.EXISTS:
            return present
        case SelectorOperator.DOES_NOT_EXIST:
            return not present
