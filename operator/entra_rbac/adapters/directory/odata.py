"""Pure OData/Graph wire helpers: filter literals, relative URLs, JSON to core values, Retry-After.

Holds functions only, no I/O. Every string that reaches a `$filter` goes through
`odata_literal`, the one place where quoting happens, so a name can never change the filter's
structure (docs/design.md, Directory semantics: `'` becomes `''`, then the whole value is percent-encoded).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, MemberType

# Graph rejects an `eq` literal longer than this (docs/design.md, Platform facts; Graph known issues);
# longer names are
# matched by a `startswith` on a prefix and then compared exactly here.
MAX_EQ_LITERAL = 120
GROUP_SELECT = "id,displayName,mailNickname"
MEMBER_SELECT = "id,userPrincipalName,userType"
PAGE_SIZE = 999

_MEMBER_TYPES = {
    "#microsoft.graph.user": MemberType.USER,
    "#microsoft.graph.servicePrincipal": MemberType.SERVICE_PRINCIPAL,
    "#microsoft.graph.group": MemberType.GROUP,
    "#microsoft.graph.device": MemberType.DEVICE,
    "#microsoft.graph.orgContact": MemberType.ORG_CONTACT,
}

Json = dict[str, Any]


def odata_literal(value: str) -> str:
    """A quoted OData string literal: `O'Brien` -> `'O''Brien'`."""
    return "'" + value.replace("'", "''") + "'"


def name_filter(field: str, value: str) -> str:
    """The `$filter` that finds groups whose `field` is `value` (callers still compare exactly).

    Graph's `eq` ignores case and caps literals at 120 characters; a longer value is looked up
    by its longest prefix that fits (never cutting an escaped quote in half).
    """
    if len(odata_literal(value)) - 2 <= MAX_EQ_LITERAL:
        return f"{field} eq {odata_literal(value)}"
    prefix = value
    while len(odata_literal(prefix)) - 2 > MAX_EQ_LITERAL:
        prefix = prefix[:-1]
    return f"startswith({field}, {odata_literal(prefix)})"


def relative_url(path: str, query: Mapping[str, str | int]) -> str:
    """`/groups?$filter=...`: every value fully percent-encoded (spaces, quotes, `&`, `#`, unicode)."""
    params = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in query.items())
    return f"{path}?{params}" if params else path


def group_lookup_url(field: str, value: str) -> str:
    return relative_url(
        "/groups",
        {"$filter": name_filter(field, value), "$select": GROUP_SELECT, "$top": PAGE_SIZE},
    )


def group_url(group_id: str) -> str:
    """`/groups/{id}` (relative, for a `$batch`) selecting what a resolution needs."""
    return relative_url(f"/groups/{quote(group_id, safe='')}", {"$select": GROUP_SELECT})


def group_from_json(item: Json) -> DirectoryGroup:
    return DirectoryGroup(
        id=str(item["id"]).lower(),
        display_name=str(item.get("displayName") or ""),
        mail_nickname=item.get("mailNickname"),
    )


def member_from_json(item: Json) -> DirectoryMember:
    return DirectoryMember(
        id=str(item["id"]).lower(),
        type=_MEMBER_TYPES.get(str(item.get("@odata.type", "")), MemberType.OTHER),
        user_principal_name=item.get("userPrincipalName"),
        user_type=item.get("userType"),
    )


def graph_error(body: Any) -> tuple[str, str]:
    """(code, message) of a Graph error body, or empty strings when it has none."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def json_bytes(body: Json) -> bytes:
    """Compact UTF-8 JSON; non-ASCII kept as is (Graph reads UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
