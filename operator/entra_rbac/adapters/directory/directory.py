"""`EntraDirectory`: the operator's one view of Entra (docs/design.md, Directory semantics), over msgraph-sdk.

Holds the lookups the reconciler calls: `lookup_groups` (ids verified in bulk with `getByIds`,
names looked up in `$batch`es of `$filter`s) and `transitive_members` (every page, or nothing),
behind one shared single-flight cache. Answers are decided only from complete, successful reads;
anything else raises a `DirectoryError`. It must not know about Kubernetes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Any, TypeVar

from entra_rbac.adapters.directory.cache import SingleFlightCache
from entra_rbac.adapters.directory.client import build_graph_client
from entra_rbac.adapters.directory.config import DirectoryConfig
from entra_rbac.adapters.directory.credentials import build_credential, tls_context
from entra_rbac.adapters.directory.delta import Baseline, GroupDeltas
from entra_rbac.adapters.directory.graph import GraphCaller
from entra_rbac.adapters.directory.metrics import CountingMetrics, DirectoryMetrics
from entra_rbac.adapters.directory.names import NameKey, name_of, resolve_by_id, resolve_by_name
from entra_rbac.adapters.directory.reads import BATCH_LIMIT, GET_BY_IDS_LIMIT, GraphReads
from entra_rbac.core.entra import DirectoryGroup, DirectoryMember, GroupLookup, GroupResolution
from entra_rbac.errors import DirectoryError, GroupNotFoundError

T = TypeVar("T")
# Misses from concurrent reconciles within this many seconds are read together (one getByIds
# or $batch for many resources, e.g. at startup); small next to a Graph round trip, so a lone
# reconcile is not kept waiting.
COALESCE_WINDOW = 0.01
# During a burst (misses still arriving) the window stays open up to this long, and while one
# lookup is out the next waits for it and takes everything queued meanwhile (adaptive batching,
# `SingleFlightCache`): a create burst of 1,000 resources cost ~1 getByIds per id with the 10 ms
# window alone (docs/performance.md, Convergence).
MAX_COALESCE_WINDOW = 0.2
# Look-ahead (`expect`): how often an expected key may be taken along before it is dropped. A
# name takes one of a `$batch`'s 20 places, so a name whose resource's reconcile never comes
# must not keep that place; ids ride in a getByIds of up to 1,000
# whatever their number, so they stay expected through a long burst (one read per cache lifetime).
LOOKAHEAD_NAME_READS = 3
LOOKAHEAD_ID_READS = 50
# Arrivals (`SingleFlightCache`, arrival_window): while resources keep arriving (each within this
# many seconds of the one before) the operator reconciles each as it comes, and each read its
# groups alone: at the start of a create burst, and all along one that the operator keeps pace
# with, about one getByIds and one $batch per resource (docs/performance.md, Graph at the floor).
# A miss then waits for the next arrivals, this long past the latest and at most
# ARRIVAL_MAX_WINDOW, while its read would carry fewer than ARRIVAL_COMPANY keys. A lone resource
# is not kept waiting (COALESCE_WINDOW, as before).
ARRIVAL_WINDOW = 0.3
ARRIVAL_MAX_WINDOW = 1.0
ARRIVAL_COMPANY = BATCH_LIMIT
# Reads while the operator is busy (`SingleFlightCache`, arrival_busy_window): a getByIds takes
# 1,000 ids, so a 1 s cap made a burst's ids cost one read per second of arrivals (9-11 for
# 1,000 resources arriving over 9 s, against a floor of 1; docs/performance.md, Graph at the
# floor). A read in a burst therefore waits for company (up to GET_BY_IDS_LIMIT ids, or
# BATCH_LIMIT names), and past ARRIVAL_MAX_WINDOW (up to ARRIVAL_BUSY_WINDOW after it opened)
# while at least ARRIVAL_BUSY arrived keys are answered and their reconciles still running, or
# every writer's turn is taken: the writers (8 reconciles at once, reconciler.context.WRITERS)
# have that work meanwhile, so the wait holds back no reconcile that could have run, and a
# convergence is not made longer. Names once kept the 1 s cap, and under load a burst's arrivals
# came slower than 20 names a second: partial $batches of 5-17 names (27-32 against 25 names'
# worth for 500 names, docs/performance.md, Graph at the floor).
ARRIVAL_BUSY_WINDOW = 5.0
ARRIVAL_BUSY = 8


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
        reads = GraphReads(self.graph, self._client)
        self._deltas = GroupDeltas(self.graph, self._client, per_round=config.delta_queries_per_round)
        ttl = config.cache_ttl
        self._by_id: SingleFlightCache[str, DirectoryGroup | None] = SingleFlightCache(
            ttl, reads.read_ids, clock=clock, **id_batching()
        )
        self._by_name: SingleFlightCache[NameKey, tuple[DirectoryGroup, ...]] = SingleFlightCache(
            ttl, reads.read_names, clock=clock, **name_batching()
        )
        self._members: SingleFlightCache[str, tuple[DirectoryMember, ...] | None] = SingleFlightCache(
            ttl, reads.read_members, window=COALESCE_WINDOW, clock=clock
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

    def hold_reads_while(self, busy: Callable[[], bool]) -> None:
        """A burst's id and name reads wait for company (up to ARRIVAL_BUSY_WINDOW) also while
        `busy()` holds: the reconciler passes "every writer's turn is taken", when an answer
        now would only wait for a turn (`SingleFlightCache.busy_while`)."""
        self._by_id.busy_while(busy)
        self._by_name.busy_while(busy)

    async def aclose(self) -> None:
        """Close the Graph connections and the credential (and its token connections)."""
        try:
            for cache in (self._by_id, self._by_name, self._members):
                await cache.aclose()
            await self._http.aclose()
        finally:
            await self._credential.close()

    def invalidate(self, lookups: Sequence[GroupLookup] | None = None) -> None:
        """Forget cached answers, so the next lookup reads Entra: all of them (on-demand sync), or
        only what `lookups` read (a deletion to confirm, a held revocation: one resource's groups,
        not every resource's, issue 17 point 2): their ids and those ids' members, their names."""
        if lookups is None:
            for cache in (self._by_id, self._by_name, self._members):
                cache.clear()
            return
        ids = [key for lookup in lookups if (key := _id_key(lookup)) is not None]
        self._by_id.discard(ids)
        self._members.discard(ids)
        self._by_name.discard([name_of(lookup) for lookup in lookups if _id_key(lookup) is None])

    def expect(self, lookups: Sequence[GroupLookup], *, arriving: bool = True) -> None:
        """These lookups will be made soon (a resource arrived that kopf has not handed to its
        reconcile yet; `arriving=False`: a prefetch's batch): their ids and names ride along with
        the next id and name reads that have room, so the reconciles find them fresh
        (docs/design.md, Directory semantics, The look-ahead). Sends nothing itself; while
        resources keep arriving, a read waits a little for the next ones (`ARRIVAL_WINDOW`)."""
        ids, names = _keys(lookups)
        self._by_id.expect(ids, arriving=arriving)
        self._by_name.expect(names, arriving=arriving)

    def unexpect(self, lookups: Sequence[GroupLookup]) -> None:
        """These lookups were made by their resource's reconcile, or will not be (it is gone)."""
        ids, names = _keys(lookups)
        self._by_id.unexpect(ids)
        self._by_name.unexpect(names)

    async def changed_groups(self, group_ids: Collection[str]) -> set[str]:
        """The groups among `group_ids` Graph's delta reported changed since the last call; their
        cached answers are forgotten, so the reconciles this triggers read them from Entra.

        A new baseline reports all its groups, since a change between the read that made them
        watched and the baseline would otherwise be missed; but a group the baseline shows exactly
        as every read of it since it was first read showed it (id, displayName, mailNickname; the
        read complete and successful; its member reads, if any, equal to the baseline's direct
        members with no nested group, which the baseline cannot vouch for) has not changed since
        those reads, so it is not reported: a create burst's resources are not all reconciled
        again, each reading its group alone (issue 17 points 4 and 7)."""
        changed = await self._deltas.changed(group_ids)
        baselines = self._deltas.take_baselines()
        if baselines:
            named = self._named_reads()
            changed -= {gid for gid, shown in baselines.items() if self._read_as(gid, shown, named)}
        self.forget(changed)
        return changed

    def _named_reads(self) -> dict[str, list[DirectoryGroup]] | None:
        """Each group the name lookups found, by id, as they found it; None when some name's reads
        have differed (a rename seen by the lookups): then no baseline is taken as unchanged."""
        values = self._by_name.steady_values()
        if values is None:
            return None
        named: dict[str, list[DirectoryGroup]] = {}
        for groups in values:
            for group in groups:
                named.setdefault(group.id, []).append(group)
        return named

    def _read_as(self, group_id: str, shown: Baseline, named: dict[str, list[DirectoryGroup]] | None) -> bool:
        """Whether every read of the group since it was first read (by id, and in the answers of
        name lookups) found it, and found it as the baseline `shown` does; for a group whose
        members were read, every read of them agreed, none is under way, and the baseline's direct
        members are exactly them, none a group (`Baseline.shows_members`; issue 17 point 7: every
        user-mode resource was otherwise reconciled again at its group's baseline)."""
        if named is None:
            return False
        if self._members.known(group_id):
            steady, members = self._members.steady(group_id)
            if not steady or members is None or self._members.reading(group_id):
                return False
            if not shown.shows_members(members):
                return False
        reads = list(named.get(group_id, ()))
        if self._by_id.known(group_id):
            steady, group = self._by_id.steady(group_id)
            if not steady:
                return False
            reads.append(group)  # type: ignore[arg-type]
        return bool(reads) and all(read == shown.group for read in reads)

    def forget(self, group_ids: Collection[str]) -> None:
        """Forget the cached answers about these groups (and every name lookup: a rename changes
        what a name finds), so the next lookups read them from Entra."""
        if not group_ids:
            return
        keys = sorted(i.lower() for i in group_ids)
        self._by_id.discard(keys)
        self._members.discard(keys)
        self._by_name.clear()

    async def lookup_groups(self, lookups: Sequence[GroupLookup]) -> list[GroupResolution]:
        """One resolution per lookup, same order; raises `DirectoryError` if any read failed."""
        id_keys, name_keys = _keys(lookups)
        if not name_keys or not id_keys:
            # One kind only (most resources): awaited in this task, not gathered in two new ones
            # (the gather was a fifth of the CPU of a refresh of unchanged resources, py-spy).
            by_id = await self._cached(self._by_id, "id", id_keys)
            by_name = await self._cached(self._by_name, "name", name_keys)
        else:
            by_id, by_name = await _both(
                self._cached(self._by_id, "id", id_keys),
                self._cached(self._by_name, "name", name_keys),
            )
        resolutions = []
        for lookup in lookups:
            key = _id_key(lookup)
            if key is not None:
                resolutions.append(resolve_by_id(lookup, key, by_id[key]))
            else:
                resolutions.append(resolve_by_name(lookup, by_name[name_of(lookup)]))
        return resolutions

    async def transitive_members(self, group_id: str) -> tuple[DirectoryMember, ...]:
        """Every transitive member (nested groups flattened); `GroupNotFoundError` on 404. The
        cached tuple itself, shared by every resource reading the group, never a copy each."""
        key = group_id.lower()
        found = await self._cached(self._members, "members", [key])
        members = found[key]
        if members is None:
            raise GroupNotFoundError(key)
        return members

    async def _cached(self, cache: SingleFlightCache[Any, T], kind: str, keys: Sequence[Any]) -> dict[Any, T]:
        if not keys:
            return {}
        values, served = await cache.get_many(keys)
        unique = len(set(keys))
        for hit in (True, False):
            for _ in range(served if hit else unique - served):
                self.metrics.cache_lookup(kind, hit)
        return values


def id_batching() -> dict[str, Any]:
    """The id cache's batching (`SingleFlightCache` keywords): getByIds of up to 1,000 ids, which
    wait for that many while arrivals continue, past ARRIVAL_MAX_WINDOW while the operator is busy."""
    return {**_adaptive(GET_BY_IDS_LIMIT, LOOKAHEAD_ID_READS), "arrival_company": GET_BY_IDS_LIMIT}


def name_batching() -> dict[str, Any]:
    """The name cache's batching: `$batch`es of 20 lookups, which wait for 20 while arrivals
    continue, past ARRIVAL_MAX_WINDOW while the operator is busy."""
    return _adaptive(BATCH_LIMIT, LOOKAHEAD_NAME_READS)


def _adaptive(batch_limit: int, lookahead_reads: int) -> dict[str, Any]:
    """The lookup caches' batching: a window that stays open through a burst, batches as full as
    Graph takes in one request (ids per getByIds, requests per $batch), and the look-ahead."""
    return {
        "window": COALESCE_WINDOW,
        "max_window": MAX_COALESCE_WINDOW,
        "batch_limit": batch_limit,
        "lookahead_reads": lookahead_reads,
        "arrival_window": ARRIVAL_WINDOW,
        "arrival_max_window": ARRIVAL_MAX_WINDOW,
        "arrival_company": ARRIVAL_COMPANY,
        "arrival_busy_window": ARRIVAL_BUSY_WINDOW,
        "arrival_busy": ARRIVAL_BUSY,
    }


def _keys(lookups: Sequence[GroupLookup]) -> tuple[list[str], list[NameKey]]:
    """The id keys and name keys `lookup_groups` would ask the caches for."""
    ids: list[str] = []
    names: list[NameKey] = []
    for lookup in lookups:
        key = _id_key(lookup)
        if key is not None:
            ids.append(key)
        else:
            names.append(name_of(lookup))
    return ids, names


def _id_key(lookup: GroupLookup) -> str | None:
    """The id to verify: the spec's own id wins over any pin (the spec may have changed)."""
    key = lookup.ref.id or lookup.pinned_id
    return key.lower() if key else None


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
