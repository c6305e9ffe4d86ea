"""`GET /groups/delta` over the sandbox directory, as Graph serves it (Graph docs: "group: delta",
"Get incremental changes for groups").

Holds `GroupDelta`: it keeps a numbered snapshot of the groups each time the directory file
changes, and answers a delta round by comparing the snapshot its token names with the newest one.
What follows Graph:
- the first request (no token) lists every matching group with all its direct members in
  `members@delta`; a later round only the groups that changed since the token: a changed name,
  direct members added (`{"@odata.type", "id"}`) or removed (the same with
  `"@removed": {"reason": "deleted"}`), a deleted group as `{"id", "@removed": {"reason": "changed"}}`
  (restorable, as Entra's soft delete) and a restored one as a group again. Only direct members:
  a change inside a nested group does not show on its parent (the operator's full read catches it).
- `$filter` accepts only `id eq '<id>'` terms joined by `or`, at most 50; `$select` as on /groups
  (`members` asks for `members@delta`).
- pages: at most `PAGE_SIZE` entries each, a group's members split over entries of at most
  `MEMBERS_PER_ENTRY`, so one group can appear on several pages; every page but the last has an
  `@odata.nextLink` (`$skiptoken`), the last an `@odata.deltaLink` (`$deltatoken`); both are
  opaque, bound to the query they came from, and hold the round's snapshot, so a round's pages
  agree with each other even if the file changes meanwhile.
- a token older than `token_lifetime` (Graph: 7 days), or issued before `expire_tokens()`, answers
  410 with code `syncStateNotFound`: the client starts over without a token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from entra_rbac_sandbox.entra import errors, odata
from entra_rbac_sandbox.entra.directory import Directory
from entra_rbac_sandbox.entra.errors import GraphError

FILTER_LIMIT = 50  # ids in one delta $filter (Graph's limit)
PAGE_SIZE = 20  # entries (a group, or a part of its members) a page
MEMBERS_PER_ENTRY = 50  # members@delta items in one entry; more go into a further entry
TOKEN_LIFETIME = 7 * 24 * 3600.0
SYNC_STATE_NOT_FOUND = "syncStateNotFound"
_ID_TERM = re.compile(r"^\s*id\s+eq\s+'([0-9a-fA-F-]{36})'\s*$")


@dataclass(frozen=True)
class GroupState:
    display_name: str
    mail_nickname: str | None
    members: tuple[tuple[str, str], ...]  # (id, @odata.type) of direct members, sorted
    properties: dict[str, Any]


Snapshot = dict[str, GroupState]  # live groups only: a deleted group is absent


def snapshot_of(directory: Directory) -> Snapshot:
    found: Snapshot = {}
    for group in directory.groups():
        members = tuple(sorted((m.id, m.odata_type) for m in directory.members(group.id)))
        found[group.id] = GroupState(
            str(group.properties.get("displayName") or ""),
            group.properties.get("mailNickname"),
            members,
            dict(group.properties),
        )
    return found


class GroupDelta:
    """Delta rounds over numbered snapshots of the directory (`directory()` gives the current one)."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        *,
        token_lifetime: float = TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self.token_lifetime = token_lifetime
        self._snapshots: list[tuple[float, Snapshot]] = []  # index = sequence number
        self._seen: Directory | None = None
        self._generation = 0  # tokens of an older generation have expired

    def expire_tokens(self) -> None:
        """Every token issued so far answers 410 syncStateNotFound from now on."""
        self._generation += 1

    def _current(self) -> int:
        directory = self._directory()
        if directory is not self._seen:
            self._seen = directory
            self._snapshots.append((self._clock(), snapshot_of(directory)))
        return len(self._snapshots) - 1

    def answer(self, base_url: str, path: str, query: dict[str, str]) -> dict[str, Any]:
        if "$deltatoken" in query or "$skiptoken" in query:
            state = self._read_token(query.get("$deltatoken") or query.get("$skiptoken") or "")
            since, until, offset, ids, select = (
                state["since"], state["until"], state["offset"], state["ids"], state["select"]
            )  # fmt: skip
            if "$deltatoken" in query:
                since, until, offset = state["until"], self._current(), 0
        else:
            ids = _parse_filter(query.get("$filter"))
            select = query.get("$select")
            since, until, offset = None, self._current(), 0
        names = odata.parse_select(select)
        selected = {n.lower() for n in names} if names is not None else None
        entries = self._entries(since, until, ids, selected)
        page = entries[offset : offset + PAGE_SIZE]
        body: dict[str, Any] = {"@odata.context": f"{base_url}/$metadata#groups", "value": page}
        state = {"since": since, "until": until, "ids": ids, "select": select}
        if offset + PAGE_SIZE < len(entries):
            token = self._token({**state, "offset": offset + PAGE_SIZE})
            body["@odata.nextLink"] = (
                f"{base_url}{path}?{urlencode({'$skiptoken': token}, quote_via=quote, safe='$')}"
            )
        else:
            token = self._token({**state, "offset": 0})
            body["@odata.deltaLink"] = (
                f"{base_url}{path}?{urlencode({'$deltatoken': token}, quote_via=quote, safe='$')}"
            )
        return body

    def _entries(
        self, since: int | None, until: int, ids: list[str] | None, selected: set[str] | None
    ) -> list[dict[str, Any]]:
        before = self._snapshots[since][1] if since is not None else {}
        after = self._snapshots[until][1]
        wanted = sorted(set(before) | set(after)) if ids is None else sorted(set(ids))
        with_members = selected is None or "members" in selected
        entries: list[dict[str, Any]] = []
        for group_id in wanted:
            old, new = before.get(group_id), after.get(group_id)
            if new is None:
                if old is not None:
                    entries.append({"id": group_id, "@removed": {"reason": "changed"}})
                continue
            if old == new:
                continue
            properties = {k: v for k, v in new.properties.items() if k != "id"}
            shown = odata.select(properties, sorted(selected - {"members"}) if selected else None)
            shown.pop("members", None)
            head = {**shown, "id": group_id}
            changes: list[dict[str, Any]] = []
            if with_members:
                previous = dict(old.members) if old is not None else {}
                current = dict(new.members)
                changes = [
                    {"@odata.type": t, "id": m} for m, t in sorted(current.items()) if m not in previous
                ]
                changes += [
                    {"@odata.type": t, "id": m, "@removed": {"reason": "deleted"}}
                    for m, t in sorted(previous.items())
                    if m not in current
                ]
            if old is not None and old.properties == new.properties and not changes:
                continue
            parts = [changes[i : i + MEMBERS_PER_ENTRY] for i in range(0, len(changes), MEMBERS_PER_ENTRY)]
            for index, part in enumerate(parts or [[]]):
                entry: dict[str, Any] = dict(head) if index == 0 else {"id": group_id}
                if with_members:
                    entry["members@delta"] = part
                entries.append(entry)
        return entries

    # Tokens ------------------------------------------------------------------------------------

    def _token(self, state: dict[str, Any]) -> str:
        raw = json.dumps(
            {**state, "issued": self._clock(), "gen": self._generation}, separators=(",", ":")
        ).encode()
        digest = hashlib.blake2b(raw, digest_size=6).hexdigest()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + digest

    def _read_token(self, token: str) -> dict[str, Any]:
        payload, _, digest = token.partition(".")
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            if hashlib.blake2b(raw, digest_size=6).hexdigest() != digest:
                raise ValueError(token)
            state: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise GraphError(
                400,
                errors.REQUEST_BAD_REQUEST,
                "Invalid state token: use the nextLink or deltaLink as it is.",
            ) from None
        expired = state.get("gen") != self._generation
        if expired or self._clock() - float(state["issued"]) > self.token_lifetime:
            raise GraphError(410, SYNC_STATE_NOT_FOUND, "The sync state is no longer available: start over.")
        return state


def _parse_filter(text: str | None) -> list[str] | None:
    if text is None:
        return None
    terms = re.split(r"\s+or\s+", text.strip())
    ids = []
    for term in terms:
        match = _ID_TERM.match(term)
        if match is None:
            raise GraphError(
                400,
                errors.UNSUPPORTED_QUERY,
                "Unsupported query: delta $filter takes only id eq '<id>' terms joined by or.",
            )
        ids.append(match.group(1).lower())
    if len(ids) > FILTER_LIMIT:
        raise GraphError(
            400,
            errors.UNSUPPORTED_QUERY,
            f"Unsupported query: delta $filter names {len(ids)} ids; at most {FILTER_LIMIT} are allowed.",
        )
    return ids
