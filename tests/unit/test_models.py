"""Behaviour of the spec models that the rest of the core relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entra_rbac.core.models import EntraGroupBindingSpec, GroupRef


def test_group_ref_key_names_the_kind_of_reference() -> None:
    assert GroupRef(display_name="Payments Developers").key == "displayName=Payments Developers"
    assert GroupRef(mail_nickname="pay").key == "mailNickname=pay"


def test_spec_rejects_group_with_two_references() -> None:
    with pytest.raises(ValidationError, match="exactly one of id, displayName, mailNickname"):
        EntraGroupBindingSpec.model_validate(
            {
                "groups": [{"displayName": "a", "mailNickname": "b"}],
                "clusterRoleBindings": [{"clusterRole": "view"}],
            }
        )
