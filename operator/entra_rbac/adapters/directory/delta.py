"""Which watched groups changed in Entra: Graph delta queries on groups (docs/design.md, Triggers).

Holds `GroupDeltas`. It answers one question, `changed(ids)`: of these groups, which ones did
Graph report as changed (renamed, members added or removed, deleted, restored) since the last
call? It decides nothing and never says what changed: a change only triggers a reconcile, whose
verified read decides (nothing is revoked from delta alone). How it follows Graph ("group:
delta"): `$filter` takes at most 50 `id eq` terms, so the ids go in chunks of 50, each with its
own `@odata.deltaLink`; every page of a round is read (a group can appear on several), and only a
complete round moves the link on; the first round of a chunk sets the baseline and reports all of
its ids (a change made between the reads that made them watched and the baseline would otherwise
wait for the refresh); an expired token (410, or `syncStateNotFound`) starts the chunk over and reports all of
its ids, since changes may have been missed. The first request is built with msgraph-sdk's delta
builder (`client.groups.delta`); later pages are sent by hand from the opaque links (the SDK's
PageIterator loses the deltaLink), and bodies are parsed as JSON, where `members@delta` is a plain
key (in the SDK's models it lands in `additional_data`). `members@delta` holds direct members
only: a change inside a nested group is seen only when the nested group is itself watched (the
reconciler watches the groups its transitive reads found) or at the next full read.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from entra_rbac.adapters.directory.graph import DeltaTokenExpired, GraphCaller
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, MemberType
from entra_rbac.errors import DirectoryUnavailableError
from entra_rbac.logsetup import fields

logger = logging.getLogger(__name__)

FILTER_LIMIT = 50  # ids in one delta $filter (Graph's limit)
DELTA_SELECT = ["displayName", "mailNickname", "members"]
MAX_PAGES = 1000  # a round longer than this is a server bug, not a tenant
# New ids not filling a chunk wait at most this many rounds while more keep arriving.
SETTLE_ROUNDS = 3
_GROUP_TYPE = "#microsoft.graph.group"


@dataclass(frozen=True)
class Baseline:
    """What one complete baseline round showed of a group: its properties, and its direct
    members' ids (`members@delta`; None when the round showed none of that key, or showed a
    member as removed, which a baseline never should: nothing is vouched for then) and whether
    one of them is a group (whose own members a parent's delta never shows)."""

    group: DirectoryGroup
    members: frozenset[str] | None
    nests: bool

    def shows_members(self, members: Sequence[DirectoryMember]) -> bool:
        """Whether this baseline vouches that `members`, a transitive read of the group, is still
        its transitive membership: no nested group in either, and the same ids. Without nested
        groups a group's transitive members are its direct ones, which the baseline lists whole."""
        if self.members is None or self.nests:
            return False
        if any(member.type is MemberType.GROUP for member in members):
            return False
        return {member.id for member in members} == self.members


class GroupDeltas:
    """The delta links of the watched groups, by chunk of at most 50 ids.

    Chunks are stable: a group keeps its chunk (and the chunk its link) while any of the chunk's
    groups is still asked about, so a group becoming watched never moves the others to new
    chunks and new baselines. New ids wait while more keep arriving (a resume or a burst of new
    resources discovers them over several rounds), then go into new chunks together, at once
    when there are 50 of them. Each round polls at most `per_round` of the followed chunks, in
    turn (every chunk within ⌈chunks / per_round⌉ rounds; None: all of them), so the requests per
    round are bounded however many groups are watched; new chunks' baselines are not counted.
    When ids no longer asked about make up most of the chunks, they are rebuilt (new baselines).
    """

    def __init__(
        self, graph: GraphCaller, client: GraphServiceClient, *, per_round: int | None = None
    ) -> None:
        self._graph = graph
        self._client = client
        self._per_round = per_round
        self._links: dict[frozenset[str], str] = {}
        self._turn = 0  # where the next round's polling of followed chunks starts
        self._round_no = 0
        self._waiting: dict[str, int] = {}  # new ids not yet followed: the round each was first seen
        # Changes read but not yet reported: a round that fails part way reports them next time.
        self._found: set[str] = set()
        # What the baselines not yet taken showed of each group they hold (`take_baselines`).
        self._baselines: dict[str, Baseline] = {}

    def take_baselines(self) -> dict[str, Baseline]:
        """Each group a new baseline since the last call showed whole (its displayName and
        mailNickname, not removed), as read in that complete round, with its direct members: the
        directory compares it with its own earlier reads of the group
        (`EntraDirectory.changed_groups`). Ids a baseline left out (deleted, or never there) or
        removed are absent."""
        baselines, self._baselines = self._baselines, {}
        return baselines

    async def changed(self, ids: Collection[str]) -> set[str]:
        """The ids among `ids` Graph reported changed since the last call (raises DirectoryError;
        a chunk whose round failed keeps its old link, and the changes other chunks read before
        the failure are kept, so the next call reports both)."""
        wanted = {i.lower() for i in ids}
        followed = [chunk for chunk in self._links if chunk & wanted]
        if sum(len(chunk) for chunk in followed) > 2 * len(wanted) + FILTER_LIMIT:
            followed = []  # mostly ids nobody watches any more: rebuild the chunks
        self._links = {chunk: self._links[chunk] for chunk in followed}
        await self._start(sorted(wanted.difference(*followed)))
        await self._poll(followed)
        found, self._found = self._found, set()
        return found & wanted

    async def _start(self, new: list[str]) -> None:
        """Baselines for new ids: full chunks at once; the rest once a round brought no more new
        ids, or after `SETTLE_ROUNDS` rounds of waiting (a steady trickle is followed too)."""
        self._round_no += 1
        waiting = {i: self._waiting.get(i, self._round_no) for i in new}
        calm = set(waiting) <= set(self._waiting)
        overdue = bool(waiting) and self._round_no - min(waiting.values()) >= SETTLE_ROUNDS
        self._waiting = waiting
        for chunk in map(frozenset, _chunks(new, FILTER_LIMIT)):
            if len(chunk) < FILTER_LIMIT and not (calm or overdue):
                continue
            entries, self._links[chunk] = await self._round(chunk, None)
            # A new baseline: a change between the read that made these groups watched and now
            # would otherwise be lost until the refresh, so the chunk counts as changed, unless
            # the directory finds what the baseline shows equal to its own reads
            # (`take_baselines`).
            self._found |= chunk
            self._baselines.update(_whole_groups(entries, chunk))
            for group_id in chunk:
                self._waiting.pop(group_id, None)

    async def _poll(self, followed: list[frozenset[str]]) -> None:
        """Poll this round's share of the followed chunks."""
        if self._per_round is not None and len(followed) > self._per_round:
            start = self._turn % len(followed)
            followed = (followed[start:] + followed[:start])[: self._per_round]
            self._turn = start + self._per_round
        for chunk in followed:
            try:
                entries, self._links[chunk] = await self._round(chunk, self._links[chunk])
            except DeltaTokenExpired:
                logger.info("Delta token expired; starting over", extra=fields(groups=len(chunk)))
                self._links.pop(chunk, None)
                _, self._links[chunk] = await self._round(chunk, None)  # the new baseline, now
                self._found |= chunk
                continue
            self._found |= {str(e.get("id", "")).lower() for e in entries} & chunk

    async def _round(self, chunk: frozenset[str], link: str | None) -> tuple[list[dict[str, Any]], str]:
        budget = self._graph.budget()
        build = partial(_get, link) if link is not None else partial(self._first_request, chunk)
        entries: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = await self._graph.send("delta", build, budget)
            values = page.get("value") if isinstance(page, dict) else None
            if not isinstance(values, list):
                raise DirectoryUnavailableError("Graph delta answer has no 'value' list")
            entries.extend(v for v in values if isinstance(v, dict))
            if page.get("@odata.deltaLink"):
                return entries, str(page["@odata.deltaLink"])
            next_link = page.get("@odata.nextLink")
            if not next_link:
                raise DirectoryUnavailableError("Graph delta page has neither nextLink nor deltaLink")
            build = partial(_get, str(next_link))
        raise DirectoryUnavailableError(f"Graph delta round passed {MAX_PAGES} pages")

    def _first_request(self, chunk: frozenset[str]) -> RequestInformation:
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            filter=" or ".join(f"id eq '{group_id}'" for group_id in sorted(chunk)), select=DELTA_SELECT
        )
        config = RequestConfiguration(headers=HeadersCollection(), query_parameters=query)
        request: RequestInformation = self._client.groups.delta.to_get_request_information(config)
        return request


def _whole_groups(entries: list[dict[str, Any]], chunk: frozenset[str]) -> dict[str, Baseline]:
    """The groups of `chunk` a baseline round showed with both displayName and mailNickname and
    never as removed, with their direct members (a group may span several entries, its
    properties on one of them and its members split over all of them)."""
    shown: dict[str, dict[str, Any]] = {}
    members: dict[str, set[str]] = {}
    nests: set[str] = set()
    removed: set[str] = set()
    unlisted: set[str] = set()  # a member shown removed, or one without an id: vouch for nothing
    for entry in entries:
        group_id = str(entry.get("id", "")).lower()
        if group_id not in chunk:
            continue
        if "@removed" in entry:
            removed.add(group_id)
        properties = shown.setdefault(group_id, {})
        for name in ("displayName", "mailNickname"):
            if name in entry:
                properties[name] = entry[name]
        listed = entry.get("members@delta")
        if listed is None:
            continue
        found = members.setdefault(group_id, set())
        for member in listed if isinstance(listed, list) else [None]:
            if (
                not isinstance(member, dict)
                or "@removed" in member
                or not member.get("id")
                or ("@odata.type" not in member)
            ):
                unlisted.add(group_id)
                continue
            found.add(str(member["id"]).lower())
            if member.get("@odata.type") == _GROUP_TYPE:
                nests.add(group_id)
    return {
        group_id: Baseline(
            DirectoryGroup(
                id=group_id, display_name=str(p["displayName"] or ""), mail_nickname=p["mailNickname"]
            ),
            frozenset(members[group_id]) if group_id in members and group_id not in unlisted else None,
            group_id in nests,
        )
        for group_id, p in shown.items()
        if group_id not in removed and "displayName" in p and "mailNickname" in p
    }


def _get(url: str) -> RequestInformation:
    info = RequestInformation(Method.GET)
    info.url = url  # a nextLink / deltaLink is opaque: used exactly as given
    info.headers.try_add("Accept", "application/json")
    return info


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
