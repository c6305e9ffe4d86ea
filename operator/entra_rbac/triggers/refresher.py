"""The periodic directory refresh and the schedule of time-bound grants: one operator-wide task,
not a kopf timer per resource.

Holds `Refresher` and `first_refresh_delay`. Why not kopf timers: kopf puts a finalizer on every
object with a timer, so deleting an EntraGroupBinding would hang whenever the operator is down
or uninstalled. Besides each resource's refresh it keeps the one schedule of every resource's
next grant start or end (docs/design.md, Time-bound grants), recomputed from every listing and
from every reconcile's outcome (`expect`), and wakes the resource at that moment, whatever the
refresh interval. It must not decide anything about bindings: it only says when to reconcile.
kopf's peering pause does not reach it, so each tick first asks the `PeeringGate`: a paused
instance lists nothing, reconciles nothing, wakes nothing and reads no Entra (docs/deployment.md,
Never two writers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from entra_rbac import reconciler
from entra_rbac.adapters.kube import KubeAdapter
from entra_rbac.core.models import EntraGroupBindingSpec
from entra_rbac.core.windows import next_transition
from entra_rbac.logsetup import fields
from entra_rbac.settings import Freshness
from entra_rbac.triggers.entries import ResourceEntry, resource_entry
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.running import FAN_OUT, reconcile_entry

log = logging.getLogger("entra_rbac.triggers")


def first_refresh_delay(uid: str, period: float) -> float:
    """First refresh spread over [period/2, period) by uid: 200 resources resumed at once
    do not all re-read Entra in the same second, and a resource is never re-read right after
    the resume / create handler has just read it."""
    return period * (0.5 + (zlib.crc32(uid.encode()) % 1000) / 2000)


def _next_change(spec: Mapping[str, Any], now: datetime) -> datetime | None:
    """When a grant of this spec next starts or ends; None without windows (or a bad spec, which
    its reconcile reports)."""
    text = repr(spec)
    if "validFrom" not in text and "validUntil" not in text:
        return None  # most resources: skip the parse
    try:
        return next_transition(EntraGroupBindingSpec.model_validate(spec), now)
    except ValidationError:
        return None


@dataclass(slots=True)
class _Scheduled:
    """One resource's place in the schedule (one record per uid; it was three maps by uid, each
    looked up every tick for every resource)."""

    entry: ResourceEntry
    # The listed object `entry` was made from. The cache replaces an object on every change and
    # lists the same object until then, so a tick that lists it again reuses the entry and the
    # windows read from it instead of copying its spec (issue 17 point 5: the ticks over 1,000
    # unchanged resources cost more than their refresh).
    body: Mapping[str, Any] | None = None
    due: float | None = None  # when its refresh is next due (loop time); None: not placed yet
    wake: datetime | None = None  # its next grant start or end: it is woken then
    # `change` is the next grant start or end of the spec at `generation` (`_next_change_of`).
    generation: object = None
    change: datetime | None = None
    change_read: bool = False


class Refresher:
    """Lists the resources (one LIST per tick) and reconciles each one whose refresh is due, or
    whose next grant start or end (its `wake`) has come, at most `concurrency` at a time, never the
    same resource twice at once. Between ticks it sleeps until the earliest wake-up. The resources
    refreshed together first have their directory reads done in bulk (`_start_batch`)."""

    def __init__(
        self,
        kube: KubeAdapter,
        ctx: reconciler.ReconcileContext,
        freshness: Freshness,
        *,
        concurrency: int = FAN_OUT,
        gate: PeeringGate | None = None,
    ) -> None:
        self.kube = kube
        self.gate = gate
        self._paused = gate is not None  # until the gate first says otherwise
        self.ctx = ctx
        # Due every `period`, checked every `tick`: with the cache's lifetime that keeps what a
        # resource shows younger than the refresh interval (settings.Freshness).
        self.period = freshness.period
        self.tick = freshness.tick
        self._records: dict[str, _Scheduled] = {}
        # The uids whose record has a `wake`: the sleep looks for the earliest among these only.
        self._waking: set[str] = set()
        # When the next batch is due (loop time): resources reconciled or first seen meanwhile are
        # due then too, so the whole refresh stays one batch with one bulk directory read.
        self._next_batch: float | None = None
        self._changed = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="entra-rbac-refresh")

    async def stop(self) -> None:
        tasks = [t for t in {self._task, *self._running.values()} if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _record(self, entry: ResourceEntry) -> _Scheduled:
        record = self._records.get(entry.uid)
        if record is None:
            record = self._records[entry.uid] = _Scheduled(entry)
        return record

    def expect(self, entry: ResourceEntry, at: datetime | None) -> None:
        """`entry`'s next grant start or end is `at` (None: it has none): wake it then."""
        if at is None:
            record = self._records.get(entry.uid)
            if record is not None and record.wake is not None:
                record.wake = None
                self._waking.discard(entry.uid)
            return
        record = self._record(entry)
        if record.wake != at:
            record.wake = at
            self._waking.add(entry.uid)
            self._changed.set()

    def refreshed(self, entry: ResourceEntry) -> None:
        """A reconcile from kopf's handlers has just read `entry`'s groups (through the cache, as a
        refresh does) and settled: its next refresh is a period from now, which keeps the freshness
        promise as a refresh of its own would. Without it, a create burst longer than half a
        period refreshed resources that had only just converged. Once a batch has run, it is due
        with the next batch instead (at most a period away, so never late): a resource created
        between two refreshes joins the next one rather than starting a second batch, with a
        second bulk read, every interval (issue 17 point 4)."""
        self._record(entry).due = self._aligned(asyncio.get_running_loop().time(), self.period)

    def _aligned(self, now: float, delay: float) -> float:
        """The refresh time for a resource next due `delay` from `now`: the next batch's, when
        that comes sooner (early keeps the freshness promise; late would not)."""
        batch = self._next_batch
        return batch if batch is not None and now < batch < now + delay else now + delay

    def _busy(self, uid: str) -> bool:
        """A reconcile of the resource is running or waiting for its lock (a create waiting for a
        write turn): a refresh beside it would only wait, holding a slot, and then read Entra
        again once the cache's answers had expired. It is refreshed once that one has finished."""
        memory = getattr(self.ctx, "memory", None)
        return memory is not None and uid in memory and memory.of(uid).lock.locked()

    def _seconds_to_next_wake(self) -> float | None:
        """Seconds to the earliest wake-up of a resource not being refreshed now (those wake
        once their refresh ends, and their outcome names the next change again)."""
        records = self._records
        waiting = [
            at for uid in self._waking if uid not in self._running and (at := records[uid].wake) is not None
        ]
        if not waiting or self._paused:
            return None
        return max((min(waiting) - self.ctx.clock()).total_seconds(), 0.0)

    async def _sleep(self, seconds: float) -> None:
        """Until `seconds` pass, starting each resource whose next start or end comes meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            self._changed.clear()
            wake = self._seconds_to_next_wake()
            if wake is not None and wake <= 0:
                self._wake_due()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left if wake is None else min(left, wake))

    def _wake_due(self) -> None:
        now = self.ctx.clock()
        for uid in list(self._waking):
            record = self._records[uid]
            if record.wake is not None and record.wake <= now and uid not in self._running:
                record.wake = None
                self._waking.discard(uid)
                self._start(record.entry)

    def _start(self, entry: ResourceEntry) -> None:
        self._running[entry.uid] = asyncio.create_task(self._refresh(entry), name=f"refresh-{entry.name}")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._sleep(self.tick)
            if self.gate is not None and await self.gate.paused():
                self._paused = True
                # On resuming, every resource is spread out again, then read, and its schedule
                # recomputed from the listing.
                self._records.clear()
                self._waking.clear()
                continue
            self._paused = False
            try:
                bodies = await self.kube.list_resources()
            except Exception as error:
                log.warning(
                    "Failed to list EntraGroupBindings for the refresh", extra=fields(error=str(error))
                )
                continue
            self._schedule(bodies, loop.time())

    def _schedule(self, bodies: Iterable[Mapping[str, Any]], now: float) -> None:
        wall = self.ctx.clock() if self.ctx is not None else None
        listed: list[_Scheduled] = []
        for body in bodies:
            record, same = self._listed(body)
            listed.append(record)
            if wall is not None:
                change = record.change
                if not (same and record.change_read and (change is None or change > wall)):
                    change = self._next_change_of(record, body, wall)
                if record.wake != change:
                    self.expect(record.entry, change)
            if record.due is None:
                record.due = self._aligned(now, first_refresh_delay(record.entry.uid, self.period))
        # Most ticks find nothing due: the resources being refreshed and those busy are looked
        # for only when one is.
        if any(r.due is not None and r.due <= now for r in listed):
            self._start_due(listed, now)
        if len(self._records) != len(listed):
            alive = {r.entry.uid for r in listed}
            for uid in [uid for uid in self._records if uid not in alive]:
                del self._records[uid]
                self._waking.discard(uid)

    def _start_due(self, listed: list[_Scheduled], now: float) -> None:
        """One refresh for all: whoever is due within half a period more starts now too (early
        keeps the freshness promise; late would not), so after the first interval the whole
        refresh is one batch whose directory reads go to Graph in bulk (`_start_batch`)."""
        waiting = [
            (r.due, r)
            for r in listed
            if r.due is not None and r.entry.uid not in self._running and not self._busy(r.entry.uid)
        ]
        if not any(due <= now for due, _ in waiting):
            return
        soon = now + self.period / 2
        self._next_batch = next_batch = now + self.period
        # The batch is due again with the next one; the rest (first seen late in a burst) at the
        # latest then too.
        for due, record in waiting:
            record.due = next_batch if due <= soon else min(due, next_batch)
        self._start_batch([(r.entry, r.body or {}) for due, r in waiting if due <= soon])

    def _listed(self, body: Mapping[str, Any]) -> tuple[_Scheduled, bool]:
        """The record of a listed resource, its entry made again only from a new object; and
        whether the object is the one listed last time."""
        uid = str((body.get("metadata") or {}).get("uid", ""))
        record = self._records.get(uid)
        if record is None:
            record = self._records[uid] = _Scheduled(resource_entry(body), body)
            return record, False
        if record.body is body:
            return record, True
        record.entry, record.body = resource_entry(body), body
        return record, False

    def _next_change_of(self, record: _Scheduled, body: Mapping[str, Any], wall: datetime) -> datetime | None:
        """`_next_change` of the resource, computed again only when its spec changed (a new
        generation) or the change it named has come: every tick lists every resource, and
        re-reading each spec for windows was a tenth of the operator's CPU in a 1,000-resource
        create burst (py-spy)."""
        generation = (body.get("metadata") or {}).get("generation")
        if record.change_read and record.generation == generation and generation is not None:
            at = record.change
            if at is None or at > wall:
                return at
        at = _next_change(record.entry.spec, wall)
        record.generation, record.change, record.change_read = generation, at, True
        return at

    def _start_batch(self, batch: list[tuple[ResourceEntry, Mapping[str, Any]]]) -> None:
        """Refresh the batch in one task: one bulk read of every group it references first
        (`reconciler.prefetch_directory`), so a refresh reads each distinct group once, then its
        reconciles by `concurrency` workers taking them in turn. A task per resource, each
        waiting for the shared read and then for a slot, cost more than the 1,000 reconciles of an
        unchanged refresh replayed from memory (issue 17 point 5)."""
        if not batch:
            return
        task = asyncio.create_task(self._run_batch(batch), name="entra-rbac-refresh-batch")
        for entry, _ in batch:
            self._running[entry.uid] = task

    async def _run_batch(self, batch: list[tuple[ResourceEntry, Mapping[str, Any]]]) -> None:
        if self.ctx is not None:
            await self._prefetch([body for _, body in batch])
        turns = iter([entry for entry, _ in batch])  # shared: each entry is taken by one worker

        async def worker() -> None:
            for entry in turns:
                await self._refresh(entry)

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(batch)))))

    async def _prefetch(self, bodies: list[Mapping[str, Any]]) -> None:
        try:
            await reconciler.prefetch_directory(self.ctx.directory, bodies)
        except Exception:  # the reconciles read for themselves; a bug here must not stop them
            log.exception("Prefetch of the refresh's directory reads failed")

    async def _refresh(self, entry: ResourceEntry) -> None:
        try:
            async with self._slots:
                outcome = await reconcile_entry(entry, self.ctx)
            self.expect(entry, outcome.next_change)
            if not outcome.settled:
                log.info("Refresh will be retried", extra=fields(resource=entry.name, error=outcome.message))
        except Exception:
            log.exception("Refresh failed", extra=fields(resource=entry.name))
        finally:
            self._running.pop(entry.uid, None)
            if entry.uid in self._waking:  # its wake-up counts again (`_seconds_to_next_wake`)
                self._changed.set()
