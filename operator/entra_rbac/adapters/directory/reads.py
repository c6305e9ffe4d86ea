"""The Graph reads behind `EntraDirectory`: ids in bulk, names in `$batch`es, members by page.

Holds `GraphReads`. Each read returns an answer for every key it was given, each complete or a
`DirectoryError` of that key alone (an item of a `$batch` that failed, a name's next page that
failed, an id whose own read failed), or raises one for all (the request itself failed): nothing
partial ever leaves here, and one key's failure is not another's (a read may hold keys of several
resources, or of the look-ahead). It does not cache; `directory.py` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any, TypeVar

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.directory_objects.get_by_ids.get_by_ids_post_request_body import (
    GetByIdsPostRequestBody,
)
from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
    TransitiveMembersRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from entra_rbac.adapters.directory import odata
from entra_rbac.adapters.directory.graph import GraphCaller, NotFoundResponse, RetryableStatus, RetryBudget
from entra_rbac.adapters.directory.names import NameKey
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, MemberType
from entra_rbac.core.text import plural
from entra_rbac.errors import DirectoryError, DirectoryForbiddenError, DirectoryUnavailableError
from entra_rbac.logsetup import fields

logger = logging.getLogger(__name__)

GET_BY_IDS_LIMIT = 1000  # ids per getByIds call (Graph's limit)
BATCH_LIMIT = 20  # requests per $batch (Graph's limit)
MEMBER_READS_AT_ONCE = 4  # paged member reads in parallel: latency without a burst
T = TypeVar("T")
K = TypeVar("K")


class GraphReads:
    """Reads through `graph` (retries, errors) with requests built by the SDK's `client`."""

    def __init__(self, graph: GraphCaller, client: GraphServiceClient) -> None:
        self.graph = graph
        self._client = client

    async def read_ids(self, ids: list[str]) -> dict[str, DirectoryGroup | BaseException | None]:
        """Groups by id, in bulk; an id is reported absent only after its own read answered 404."""
        found: dict[str, DirectoryGroup | BaseException | None] = dict.fromkeys(ids)
        budget = self.graph.budget()  # one bound on waiting for the whole read
        for chunk in _chunks(ids, GET_BY_IDS_LIMIT):
            body = GetByIdsPostRequestBody(ids=chunk, types=["group"])
            build = partial(self._client.directory_objects.get_by_ids.to_post_request_information, body)
            answer = await self.graph.send("getByIds", build, budget)
            for item in _values(answer, "getByIds"):
                group = odata.group_from_json(item)
                # Only ids we asked for: an answer must never resolve something else.
                if group.id in found:
                    found[group.id] = group
        missing = [group_id for group_id, group in found.items() if group is None]
        if missing:
            found.update(await self._confirm_absent(missing, budget))
        return found

    async def _confirm_absent(
        self, ids: list[str], budget: RetryBudget
    ) -> dict[str, DirectoryGroup | BaseException | None]:
        """Read each id getByIds left out by itself: absence revokes access, so it must be the
        404 `Request_ResourceNotFound` of docs/design.md, Directory semantics, not a gap in a bulk
        answer. An id whose own read failed has that failure as its answer."""
        urls = {group_id: odata.group_url(group_id) for group_id in ids}
        bodies = await self._batch_get(urls, budget, not_found_ok=True)
        found: dict[str, DirectoryGroup | BaseException | None] = {}
        for group_id, body in bodies.items():
            if isinstance(body, BaseException):
                found[group_id] = body
                continue
            found[group_id] = odata.group_from_json(body) if body is not None else None
            if body is not None:
                logger.warning("Found a group getByIds had left out", extra=fields(group=group_id))
        return found

    async def read_names(
        self, keys: list[NameKey]
    ) -> dict[NameKey, tuple[DirectoryGroup, ...] | BaseException]:
        """Every group each name finds (every page), or that name's own failure."""
        budget = self.graph.budget()  # one bound on waiting for the whole read
        urls = {key: odata.group_lookup_url(*key) for key in keys}
        found: dict[NameKey, tuple[DirectoryGroup, ...] | BaseException] = {}
        for key, body in (await self._batch_get(urls, budget)).items():
            try:
                found[key] = await self._all_groups(body, budget)
            except DirectoryError as error:
                found[key] = error
        return found

    async def _all_groups(self, body: Any, budget: RetryBudget) -> tuple[DirectoryGroup, ...]:
        """The groups of one name lookup's answer and of its next pages, or its item's failure."""
        if isinstance(body, BaseException):
            raise body
        items = list(_values(body, "groups"))
        next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        while next_link:
            page = await self.graph.send("groups", partial(_get, next_link), budget)
            items.extend(_values(page, "groups page"))
            next_link = page.get("@odata.nextLink")
        return tuple(odata.group_from_json(entry) for entry in items)

    async def _batch_get(
        self, urls: dict[K, str], budget: RetryBudget, *, not_found_ok: bool = False
    ) -> dict[K, Any]:
        """The body of `GET url` for every key, through `$batch` calls of up to 20; throttled or
        failed items are retried in a further `$batch`. With `not_found_ok`, a 404 gives None.
        An item that failed (or still fails when the retries are spent) has its error as its
        body; a failed `$batch` request itself raises."""
        found: dict[K, Any] = {}
        for chunk in _chunks(list(urls), BATCH_LIMIT):
            pending = {str(index): key for index, key in enumerate(chunk, start=1)}
            while pending:
                requests = {item_id: urls[key] for item_id, key in pending.items()}
                answer = await self.graph.send("batch", partial(_batch_request, requests), budget)
                responses = {str(item.get("id")): item for item in _list(answer, "responses", "batch")}
                retry: dict[str, K] = {}
                retry_after: float | None = None
                for item_id, key in pending.items():
                    item = responses.get(item_id)
                    if item is None:
                        raise DirectoryUnavailableError(f"Graph $batch answer lacks item {item_id}")
                    try:
                        found[key] = self._batch_item(item, not_found_ok)
                    except RetryableStatus as exc:
                        retry[item_id] = key
                        if exc.retry_after is not None:
                            retry_after = max(retry_after or 0.0, exc.retry_after)
                    except DirectoryError as exc:
                        found[key] = exc  # this item's alone
                pending = retry
                if pending and not await budget.pause(retry_after):
                    spent = DirectoryUnavailableError(
                        f"Graph $batch: {plural(len(pending), 'request')} still failing after retries",
                        retry_after=retry_after,
                    )
                    found.update(dict.fromkeys(pending.values(), spent))
                    pending = {}
        return found

    def _batch_item(self, item: dict[str, Any], not_found_ok: bool) -> Any:
        status = int(item.get("status") or 0)
        body = item.get("body")
        if status == 200:
            return body
        code, message = odata.graph_error(body)
        detail = self.graph.redact(f"HTTP {status} {code}: {message}".rstrip(": "))
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        retry_after = odata.retry_after_seconds(headers.get("retry-after"))
        error = self.graph.status_error("batch-item", status, detail, retry_after)
        if isinstance(error, RetryableStatus):
            self.graph.record_throttle("batch-item", status, retry_after)
        if isinstance(error, NotFoundResponse):
            if not_found_ok:
                return None
            error = DirectoryUnavailableError(f"Graph $batch item failed: {detail}")
        raise error

    async def read_members(
        self, keys: list[str]
    ) -> dict[str, tuple[DirectoryMember, ...] | BaseException | None]:
        """Each group's members (None: the group is gone); one group's failure is its own."""
        limit = asyncio.Semaphore(MEMBER_READS_AT_ONCE)

        async def one(key: str) -> tuple[DirectoryMember, ...] | None:
            async with limit:
                try:
                    return await self._read_member_pages(key)
                except NotFoundResponse:
                    return None

        results = await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)
        return dict(zip(keys, results, strict=True))

    async def _read_member_pages(self, group_id: str) -> tuple[DirectoryMember, ...]:
        builder = self._client.groups.by_group_id(group_id).transitive_members
        query = TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(
            top=odata.PAGE_SIZE, select=odata.MEMBER_SELECT.split(",")
        )
        members: list[DirectoryMember] = []
        budget = self.graph.budget()  # one bound on waiting for all pages together
        page = await self.graph.send(
            "transitiveMembers",
            lambda: builder.to_get_request_information(
                RequestConfiguration(headers=HeadersCollection(), query_parameters=query)
            ),
            budget,
            not_found_ok=True,  # the group's own 404: it is gone
        )
        pages = 1
        links: set[str] = set()
        while True:
            members.extend(odata.member_from_json(item) for item in _values(page, "transitiveMembers"))
            next_link = page.get("@odata.nextLink")
            if not next_link:
                break
            if next_link in links:  # a server bug would otherwise keep us paging forever
                raise DirectoryUnavailableError(f"Graph transitiveMembers of {group_id}: paging loops")
            links.add(next_link)
            # Paged by hand: the SDK's PageIterator stops early on an empty page (docs/design.md, Platform
            # facts).
            try:
                page = await self.graph.send(
                    "transitiveMembers", partial(_get, next_link), budget, not_found_ok=True
                )
            except NotFoundResponse:
                raise DirectoryUnavailableError(
                    f"Graph transitiveMembers of {group_id}: page {pages + 1} answered 404"
                ) from None
            pages += 1
        _require_user_names(group_id, members)
        logger.debug(
            "Read transitive members", extra=fields(group=group_id, members=len(members), pages=pages)
        )
        return tuple(members)


def _require_user_names(group_id: str, members: list[DirectoryMember]) -> None:
    """Every Entra user has a UPN; users without one mean the app lacks User.ReadBasic.All
    (Graph then returns only id and type), and naming them by object ID would be wrong."""
    nameless = sum(1 for m in members if m.type is MemberType.USER and not m.user_principal_name)
    if nameless:
        raise DirectoryForbiddenError(
            f"Graph returned {plural(nameless, 'member')} of group {group_id} without userPrincipalName:"
            " user mode needs the User.ReadBasic.All permission"
        )


def _batch_request(requests: dict[str, str]) -> RequestInformation:
    # Built by hand: the SDK's batch helper serialises dependsOn wrongly, does not retry inner
    # 429s, and its model parsing is slow (docs/design.md, Platform facts; see graph.py).
    body = {"requests": [{"id": item_id, "method": "GET", "url": url} for item_id, url in requests.items()]}
    info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
    info.headers.try_add("Accept", "application/json")
    info.headers.try_add("Content-Type", "application/json")
    info.content = odata.json_bytes(body)
    return info


def _get(url: str) -> RequestInformation:
    info = RequestInformation(Method.GET)
    info.url = url  # an @odata.nextLink is opaque: used exactly as given
    info.headers.try_add("Accept", "application/json")
    return info


def _values(body: Any, what: str) -> list[dict[str, Any]]:
    return _list(body, "value", what)


def _list(body: Any, field: str, what: str) -> list[dict[str, Any]]:
    values = body.get(field) if isinstance(body, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise DirectoryUnavailableError(f"Graph {what} answer has no '{field}' list")
    return values


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
