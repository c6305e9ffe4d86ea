"""`EntraDirectory`: the operator's one view of Entra (DESIGN section 4), over msgraph-sdk.

Holds the lookups the reconciler calls: `lookup_groups` (ids verified in bulk with `getByIds`,
names looked up in `$batch`es of `$filter`s) and `transitive_members` (every page, or nothing),
behind one shared single-flight cache. Answers are decided only from complete, successful reads;
anything else raises a `DirectoryError`. It must not know about Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from types import TracebackType
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

from entra_rbac.adapters.directory import odata
from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.adapters.directory.client import build_graph_client
from entra_rbac.adapters.directory.config import DirectoryConfig
from entra_rbac.adapters.directory.credentials import build_credential, tls_context
from entra_rbac.adapters.directory.graph import GraphCaller, NotFoundResponse, RetryableStatus, RetryBudget
from entra_rbac.adapters.directory.metrics import CountingMetrics, DirectoryMetrics
from entra_rbac.adapters.directory.names import NameKey, name_of, resolve_by_id, resolve_by_name
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution, MemberType
from entra_rbac.errors import (
    DirectoryError,
    DirectoryForbiddenError,
    DirectoryUnavailableError,
    GroupNotFoundError,
)

logger = logging.getLogger(__name__)

GET_BY_IDS_LIMIT = 1000  # ids per getByIds call (Graph's limit)
BATCH_LIMIT = 20  # requests per $batch (Graph's limit)
T = TypeVar("T")


class EntraDirectory:
    """Reads groups and members from Graph; use `async with` or call `aclose()`.

    Construct inside a running event loop (a kopf startup handler): the credential may open an
    aiohttp session. `metrics` receives request outcomes; `CountingMetrics` is used when omitted.
    """

    def __init__(
        self,
        config: DirectoryConfig,
        *,
        metrics: DirectoryMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else CountingMetrics()
        context = tls_context(config)
        self._credential = build_credential(config, context)
        self._client, self._http = build_graph_client(config, self._credential, context)
        self.graph = GraphCaller(
            self._client.request_adapter,
            self.metrics,
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            max_retry_wait=config.max_retry_wait,
            secrets=(config.client_secret,),
        )
        self._by_id: SingleFlightCache[str, DirectoryGroup | None] = SingleFlightCache(
            config.cache_lifetime, clock
        )
        self._by_name: SingleFlightCache[NameKey, tuple[DirectoryGroup, ...]] = SingleFlightCache(
            config.cache_lifetime, clock
        )
        self._members: SingleFlightCache[str, tuple[DirectoryMember, ...] | None] = SingleFlightCache(
            config.cache_lifetime, clock
        )

    async def __aenter__(self) -> EntraDirectory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Graph connections and the credential (and its token connections)."""
        try:
            await self._http.aclose()
        finally:
            await self._credential.close()

    def invalidate(self) -> None:
        """Forget cached answers, so the next lookup reads Entra (on-demand sync)."""
        for cache in (self._by_id, self._by_name, self._members):
            cache.clear()

    async def lookup_groups(self, lookups: Sequence[GroupLookup]) -> list[GroupResolution]:
        """One resolution per lookup, same order; raises `DirectoryError` if any read failed."""
        id_keys = [key for lookup in lookups if (key := _id_key(lookup)) is not None]
        name_keys = [name_of(lookup) for lookup in lookups if _id_key(lookup) is None]
        by_id, by_name = await _both(
            self._cached(self._by_id, "id", id_keys, self._read_ids),
            self._cached(self._by_name, "name", name_keys, self._read_names),
        )
        resolutions = []
        for lookup in lookups:
            key = _id_key(lookup)
            if key is not None:
                resolutions.append(resolve_by_id(lookup, key, by_id[key]))
            else:
                resolutions.append(resolve_by_name(lookup, by_name[name_of(lookup)]))
        return resolutions

    async def transitive_members(self, group_id: str) -> list[DirectoryMember]:
        """Every transitive member (nested groups flattened); `GroupNotFoundError` on 404."""
        key = group_id.lower()
        found = await self._cached(self._members, "members", [key], self._read_members)
        members = found[key]
        if members is None:
            raise GroupNotFoundError(key)
        return list(members)

    async def _cached(
        self,
        cache: SingleFlightCache[Any, T],
        kind: str,
        keys: Sequence[Any],
        loader: Callable[[list[Any]], Any],
    ) -> dict[Any, T]:
        if not keys:
            return {}
        values, served = await cache.get_many(keys, loader)
        unique = len(set(keys))
        for hit in (True, False):
            for _ in range(served if hit else unique - served):
                self.metrics.cache_lookup(kind, hit)
        return values

    async def _read_ids(self, ids: list[str]) -> dict[str, DirectoryGroup | None]:
        found: dict[str, DirectoryGroup | None] = dict.fromkeys(ids)
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
        return found

    async def _read_names(self, keys: list[NameKey]) -> dict[NameKey, tuple[DirectoryGroup, ...]]:
        found: dict[NameKey, tuple[DirectoryGroup, ...]] = {}
        budget = self.graph.budget()  # one bound on waiting for the whole read
        for chunk in _chunks(keys, BATCH_LIMIT):
            found.update(await self._batch_lookup(chunk, budget))
        return found

    async def _batch_lookup(
        self, keys: list[NameKey], budget: RetryBudget
    ) -> dict[NameKey, tuple[DirectoryGroup, ...]]:
        """One `$batch` of name filters; throttled or failed items retried in a further `$batch`."""
        pending = {str(index): key for index, key in enumerate(keys, start=1)}
        found: dict[NameKey, tuple[DirectoryGroup, ...]] = {}
        while pending:
            answer = await self.graph.send("batch", partial(_batch_request, pending), budget)
            responses = {str(item.get("id")): item for item in _list(answer, "responses", "batch")}
            retry: dict[str, NameKey] = {}
            retry_after: float | None = None
            for item_id, key in pending.items():
                item = responses.get(item_id)
                if item is None:
                    raise DirectoryUnavailableError(
                        f"Graph $batch answer lacks item {item_id} ({key[0]} lookup)"
                    )
                try:
                    found[key] = await self._batch_item(item, budget)
                except RetryableStatus as exc:
                    retry[item_id] = key
                    if exc.retry_after is not None:
                        retry_after = max(retry_after or 0.0, exc.retry_after)
            pending = retry
            if pending and not await budget.pause(retry_after):
                raise DirectoryUnavailableError(
                    f"Graph $batch: {len(pending)} lookups still failing after retries",
                    retry_after=retry_after,
                )
        return found

    async def _batch_item(self, item: dict[str, Any], budget: RetryBudget) -> tuple[DirectoryGroup, ...]:
        status = int(item.get("status") or 0)
        body = item.get("body")
        if status != 200:
            code, message = odata.graph_error(body)
            detail = self.graph.redact(f"HTTP {status} {code}: {message}".rstrip(": "))
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            retry_after = odata.retry_after_seconds(headers.get("retry-after"))
            error = self.graph.status_error("batch-item", status, detail, retry_after)
            if isinstance(error, RetryableStatus):
                self.graph.record_throttle("batch-item", status, retry_after)
            if isinstance(error, NotFoundResponse):
                error = DirectoryUnavailableError(f"Graph $batch item failed: {detail}")
            raise error
        items = list(_values(body, "batch item"))
        next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        while next_link:
            page = await self.graph.send("groups", partial(_get, next_link), budget)
            items.extend(_values(page, "groups page"))
            next_link = page.get("@odata.nextLink")
        return tuple(odata.group_from_json(entry) for entry in items)

    async def _read_members(self, keys: list[str]) -> dict[str, tuple[DirectoryMember, ...] | None]:
        found: dict[str, tuple[DirectoryMember, ...] | None] = {}
        for key in keys:
            try:
                found[key] = await self._read_member_pages(key)
            except NotFoundResponse:
                found[key] = None
        return found

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
        )
        pages = 1
        while True:
            members.extend(odata.member_from_json(item) for item in _values(page, "transitiveMembers"))
            next_link = page.get("@odata.nextLink")
            if not next_link:
                break
            # Paged by hand: the SDK's PageIterator stops early on an empty page (FACTS).
            try:
                page = await self.graph.send("transitiveMembers", partial(_get, next_link), budget)
            except NotFoundResponse:
                raise DirectoryUnavailableError(
                    f"Graph transitiveMembers of {group_id}: page {pages + 1} answered 404"
                ) from None
            pages += 1
        _require_user_names(group_id, members)
        logger.debug(
            "Read transitive members", extra={"group": group_id, "members": len(members), "pages": pages}
        )
        return tuple(members)


def _id_key(lookup: GroupLookup) -> str | None:
    key = lookup.pinned_id or lookup.ref.id
    return key.lower() if key else None


def _require_user_names(group_id: str, members: list[DirectoryMember]) -> None:
    """Every Entra user has a UPN; users without one mean the app lacks User.ReadBasic.All
    (Graph then returns only id and type), and naming them by object ID would be wrong."""
    nameless = sum(1 for m in members if m.type is MemberType.USER and not m.user_principal_name)
    if nameless:
        raise DirectoryForbiddenError(
            f"Graph returned {nameless} members of group {group_id} without userPrincipalName:"
            " user mode needs the User.ReadBasic.All permission"
        )


def _batch_request(pending: dict[str, NameKey]) -> RequestInformation:
    # Built by hand: the SDK's batch helper serialises dependsOn wrongly, does not retry inner
    # 429s, and its model parsing is slow (FACTS; see graph.py).
    requests = [
        {"id": item_id, "method": "GET", "url": odata.group_lookup_url(field, value)}
        for item_id, (field, value) in pending.items()
    ]
    info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
    info.headers.try_add("Accept", "application/json")
    info.headers.try_add("Content-Type", "application/json")
    info.content = odata.json_bytes({"requests": requests})
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


async def _both(first: Any, second: Any) -> tuple[Any, Any]:
    """Run two reads concurrently; both finish (their caches stay consistent), then the first
    error is raised, a Forbidden before an Unavailable (it needs a person, not a retry)."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        errors.sort(
            key=lambda e: 0 if isinstance(e, DirectoryError) and e.reason == "DirectoryForbidden" else 1
        )
        raise errors[0]
    return results[0], results[1]
