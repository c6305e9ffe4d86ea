"""A small sample tenant for the sandbox directory tests, with stable GUIDs by name."""

from __future__ import annotations

import uuid
from typing import Any

_NAMESPACE = uuid.UUID("0b6f5d4c-6a8e-4f39-9a40-3c1d2e3f4a5b")


def guid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def user(name: str, user_type: str = "Member") -> dict[str, Any]:
    upn = f"{name}@contoso.com" if user_type == "Member" else f"{name}_fabrikam.com#EXT#@contoso.com"
    return {"id": guid(name), "userPrincipalName": upn, "userType": user_type, "mail": f"{name}@contoso.com"}


def group(name: str, members: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    nickname = "".join(c for c in name.lower() if c.isalnum())
    return {
        "id": guid(name),
        "displayName": name,
        "mailNickname": nickname,
        "members": members or [],
        **extra,
    }


def sample() -> dict[str, Any]:
    """alice, bob (member users), guest (a guest), ci (a service principal), mi (a managed identity),
    a device and a contact; groups: Payments Developers (alice, Platform, ci, laptop, contact),
    Platform (bob, guest, mi, Payments Developers: a cycle), Platform Admins, O'Brien's Team, and
    Retired (deleted)."""
    return {
        "users": [user("alice"), user("bob"), user("guest", "Guest")],
        "servicePrincipals": [
            {"id": guid("ci"), "appId": guid("ci/app"), "displayName": "ci-deployer"},
            {
                "id": guid("mi"),
                "appId": guid("mi/app"),
                "displayName": "mi-runner",
                "servicePrincipalType": "ManagedIdentity",
            },
        ],
        "devices": [{"id": guid("laptop"), "displayName": "laptop-1"}],
        "orgContacts": [{"id": guid("contact"), "displayName": "Vendor Contact", "mail": "v@vendor.com"}],
        "groups": [
            group(
                "Payments Developers",
                [guid("alice"), guid("Platform"), guid("ci"), guid("laptop"), guid("contact")],
                mailNickname="payments-devs",
            ),
            group("Platform", [guid("bob"), guid("guest"), guid("mi"), guid("Payments Developers")]),
            group("Platform Admins", [guid("bob")]),
            group("O'Brien's Team", [guid("alice")]),
            group("Retired", [guid("alice")], deleted=True),
        ],
    }
