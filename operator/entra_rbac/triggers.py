"""What the kopf handlers delegate to: which resources an event concerns, and kopf's tuning.

Holds `ResourceEntry` (what the resource index keeps), `reconcile_entry` (kopf's view of a
resource -> the reconciler's one entry point, serialised per resource), the routing of namespace
and managed-binding events to the resources they concern, and `tune_kopf` (every non-default kopf
setting, each with its reason). It decides nothing about bindings: the reconciler does. It must
not be imported by the reconciler or anything below it (glue, layer 1).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes import client
from pydantic import ValidationError

from entra_rbac import reconciler
from entra_rbac.constants import (
    GROUP,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OPERATOR_NAME,
    OWNER_UID_LABEL,
    RBAC_GROUP,
)
from entra_rbac.core.desired import namespace_selected
from entra_rbac.core.models import RoleBindingSpec
from entra_rbac.core.naming import managed_selector
from entra_rbac.logsetup import fields
from entra_rbac.metrics import OperatorMetrics
from entra_rbac.settings import Settings

log = logging.getLogger("entra_rbac.triggers")

# Reconciles started together (by one namespace event, or by the refresher when many are due) run
# at most this many at a time, so a namespace matched by hundreds of resources, or a restart with
# hundreds of them, does not open hundreds of API calls at once.
FAN_OUT = 8
# Where kopf keeps its per-handler progress and last-handled configuration (annotations).
KOPF_STATE_PREFIX = f"operator.{GROUP}"


@dataclass(frozen=True)
class ResourceEntry:
    """An EntraGroupBinding as the resource index keeps it: enough to reconcile it without a GET."""

    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]


def resource_entry(body: Mapping[str, Any]) -> ResourceEntry:
    meta = body.get("metadata") or {}
    return ResourceEntry(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        annotations=dict(meta.get("annotations") or {}),
    )


async def reconcile_entry(
    entry: ResourceEntry, memo: Any, *, deletion: bool = False, fresh: bool = False
) -> reconciler.Outcome:
    """Run the one reconcile for this resource (`memo.ctx` is set at startup)."""
    return await reconciler.reconcile(entry.name, entry.uid, memo.ctx, deletion=deletion, fresh=fresh)


async def reconcile_body(
    body: Mapping[str, Any], memo: Any, *, deletion: bool = False, fresh: bool = False
) -> None:
    """For kopf's resource handlers: an outcome asking for a requeue becomes kopf's TemporaryError."""
    outcome = await reconcile_entry(resource_entry(body), memo, deletion=deletion, fresh=fresh)
    if outcome.requeue_after is not None:
        raise kopf.TemporaryError(outcome.message, delay=outcome.requeue_after)


async def resource_event(event_type: str | None, body: Mapping[str, Any], memo: Any) -> None:
    """A resource is gone: remove its bindings now (the garbage collector would, a little later)."""
    if event_type == "DELETED":
        await reconcile_body(body, memo, deletion=True)


def index_entry(body: Mapping[str, Any]) -> dict[str, ResourceEntry]:
    """Value of the resource index: uid -> entry."""
    entry = resource_entry(body)
    return {entry.uid: entry}


def index_binding_owner(labels: Mapping[str, str], namespace: str | None) -> dict[str, str] | None:
    """Value of the binding index: namespace -> owner uid (for namespaces losing a match)."""
    owner = labels.get(OWNER_UID_LABEL)
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE or not owner or not namespace:
        return None
    return {namespace: owner}


def _entries(
    index: Mapping[str, Collection[ResourceEntry]], uids: Iterable[str] | None = None
) -> list[ResourceEntry]:
    keys = index.keys() if uids is None else [uid for uid in uids if uid in index]
    return [entry for key in keys for entry in list(index[key])[:1]]


def names_namespace(
    spec: Mapping[str, Any],
    namespace: str,
    label_sets: Iterable[Mapping[str, str]],
    reserved: Collection[str] = (),
) -> bool:
    """Whether a spec could select this namespace with any of the label sets given (old, new),
    by the core's own rule (`namespace_selected`).

    An entry that does not parse counts as a match: re-evaluating costs one reconcile, missing
    one would leave a binding wrong until the next refresh.
    """
    label_sets = list(label_sets)
    for raw in spec.get("roleBindings") or []:
        try:
            entry = RoleBindingSpec.model_validate(raw)
        except ValidationError:
            return True
        if any(namespace_selected(entry, namespace, labels, reserved) for labels in label_sets):
            return True
    return False


@dataclass
class NamespaceMemory:
    """The labels and state each namespace had when last seen: kopf's event handlers get no `old`,
    and only changes that can alter a selection (labels, termination) are worth a reconcile."""

    _seen: dict[str, tuple[dict[str, str], bool]] = field(default_factory=dict)

    def update(
        self, name: str, labels: Mapping[str, str], terminating: bool
    ) -> tuple[dict[str, str], bool] | None:
        """Record the new state; return the previous one (None if never seen)."""
        previous = self._seen.get(name)
        self._seen[name] = (dict(labels), terminating)
        return previous

    def forget(self, name: str) -> dict[str, str]:
        return self._seen.pop(name, ({}, False))[0]


async def namespace_changed(
    event_type: str | None,
    body: Mapping[str, Any],
    resources: Mapping[str, Collection[ResourceEntry]],
    binding_owners: Mapping[str, Collection[str]],
    memo: Any,
) -> None:
    """Re-evaluate the resources a namespace event concerns (docs/design.md, Triggers)."""
    memory: NamespaceMemory = memo.namespaces
    reserved = memo.ctx.policy.reserved_namespaces
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    labels = dict(meta.get("labels") or {})
    terminating = (
        bool(meta.get("deletionTimestamp")) or (body.get("status") or {}).get("phase") == "Terminating"
    )
    if event_type == "DELETED":
        old_labels = memory.forget(name)
    else:
        previous = memory.update(name, labels, terminating)
        # The first listing (type None, never seen) only fills the memory: the resume handlers
        # reconcile everything. A re-listing after a watch reconnect (type None again) that
        # shows a change made while the watch was down is a change like any other.
        if (event_type is None and previous is None) or previous == (labels, terminating):
            return
        old_labels = previous[0] if previous else {}
    owners = set(binding_owners.get(name, ()))
    concerned = {
        entry.uid: entry
        for entry in _entries(resources)
        if entry.uid in owners or names_namespace(entry.spec, name, (labels, old_labels), reserved)
    }
    await _reconcile_all(list(concerned.values()), memo, why=f"namespace {name} {event_type or ''}".strip())


async def binding_changed(
    event_type: str | None,
    body: Mapping[str, Any],
    resources: Mapping[str, Collection[ResourceEntry]],
    memo: Any,
) -> None:
    """Heal a managed binding someone else changed or deleted by reconciling its owner."""
    meta = body.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(OWNER_UID_LABEL)
    if event_type is None or not owner:
        # A listing: at startup the resume handlers reconcile every resource; after a watch
        # reconnect, an edit made meanwhile cannot be told from no edit, and the timer heals it.
        return
    if memo.clients.kube.is_own_write(
        meta.get("uid"), meta.get("resourceVersion"), deleted=event_type == "DELETED"
    ):
        return  # the echo of our own write, not drift
    await _reconcile_all(
        _entries(resources, [owner]),
        memo,
        why=f"{body.get('kind', 'binding')} {meta.get('name')} {event_type}",
    )


async def _reconcile_all(entries: list[ResourceEntry], memo: Any, *, why: str) -> None:
    """Reconcile each, independently: one failing resource never blocks the others.

    Event handlers are not retried by kopf; a resource whose reconcile failed here has its
    failure in its status (the reconciler writes it) and is retried by its own timer.
    """
    if not entries:
        return
    gate = asyncio.Semaphore(FAN_OUT)

    async def one(entry: ResourceEntry) -> reconciler.Outcome:
        async with gate:
            return await reconcile_entry(entry, memo)

    results = await asyncio.gather(*(one(entry) for entry in entries), return_exceptions=True)
    for entry, result in zip(entries, results, strict=True):
        problem = str(result) if isinstance(result, BaseException) else result.message
        if isinstance(result, BaseException) or not result.settled:
            log.warning(
                "Reconcile failed; its refresh retries",
                extra=fields(resource=entry.name, trigger=why, error=problem),
            )


def directory_freshness(memo: Any) -> float:
    """For /healthz: seconds since the directory was last verified (informational, never fails)."""
    metrics: OperatorMetrics = memo.metrics
    return round(metrics.seconds_since_verified_read(), 1)


def first_refresh_delay(uid: str, interval: float) -> float:
    """First refresh spread over [interval/2, interval) by uid: 200 resources resumed at once
    do not all re-read Entra in the same second, and a resource is never re-read right after
    the resume / create handler has just read it."""
    return interval * (0.5 + (zlib.crc32(uid.encode()) % 1000) / 2000)


class Refresher:
    """The periodic directory refresh of every resource: one operator-wide task.

    Why not a kopf timer per resource: kopf puts a finalizer on every object with a timer, so
    deleting an EntraGroupBinding would hang whenever the operator is down or uninstalled. This
    task lists the resources (one LIST per tick) and reconciles each one whose refresh is due,
    at most `concurrency` at a time, never the same resource twice at once.
    """

    def __init__(self, memo: Any, interval: float, *, concurrency: int = FAN_OUT) -> None:
        self.memo = memo
        self.interval = interval
        self.tick = min(max(interval / 4, 0.25), 5.0)
        self._due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="entra-rbac-refresh")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            try:
                bodies = await self.memo.clients.kube.list_resources()
            except Exception as error:
                log.warning(
                    "Failed to list EntraGroupBindings for the refresh", extra=fields(error=str(error))
                )
                continue
            self._schedule(bodies, loop.time())

    def _schedule(self, bodies: Iterable[Mapping[str, Any]], now: float) -> None:
        alive = set()
        for body in bodies:
            entry = resource_entry(body)
            alive.add(entry.uid)
            due = self._due.setdefault(entry.uid, now + first_refresh_delay(entry.uid, self.interval))
            if now >= due and entry.uid not in self._running:
                self._due[entry.uid] = now + self.interval
                task = asyncio.create_task(self._refresh(entry), name=f"refresh-{entry.name}")
                self._running[entry.uid] = task
        for uid in set(self._due) - alive:
            del self._due[uid]

    async def _refresh(self, entry: ResourceEntry) -> None:
        try:
            async with self._slots:
                outcome = await reconcile_entry(entry, self.memo)
            if not outcome.settled:
                log.info("Refresh will be retried", extra=fields(resource=entry.name, error=outcome.message))
        except Exception:
            log.exception("Refresh failed", extra=fields(resource=entry.name))
        finally:
            self._running.pop(entry.uid, None)


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration (what kopf's `login_via_client` does)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def tune_kopf(operator: kopf.OperatorSettings, settings: Settings) -> None:
    """Every kopf setting we change, in one place, each with its reason."""
    # kopf's own marks live under our API group, not kopf.zalando.org: an auditor sees one owner.
    operator.persistence.finalizer = f"{GROUP}/finalizer"
    # Progress in annotations, not in .status: status is ours (kstatus conditions) alone. Under a
    # sub-domain, never `entra-rbac.io/` itself: kopf hides every annotation under its storage
    # prefix from change detection, which would hide sync-requested and confirm-revocation too.
    # (Not `kopf.`-prefixed either: kopf does not mark such prefixes as its own.)
    operator.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_STATE_PREFIX)
    operator.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_STATE_PREFIX, key="last-handled-configuration"
    )
    # The audit trail is the reconciler's own Events; kopf's "Handler succeeded" info Events
    # would bury it. Its warnings and errors (a handler failing) still become Events.
    operator.posting.level = logging.WARNING
    operator.posting.reporting_component = OPERATOR_NAME
    # Standalone by default (one replica, Recreate). With a peering name, a standby waits.
    operator.peering.standalone = settings.peering_name is None
    operator.peering.clusterwide = True
    if settings.peering_name is not None:
        operator.peering.name = settings.peering_name
        operator.peering.priority = settings.peering_priority
        operator.peering.mandatory = True
    # Watches end server-side every 5 minutes and client-side shortly after: a half-open TCP
    # connection (a load balancer dropping idle flows) is noticed instead of stalling forever.
    operator.watching.server_timeout = 300
    operator.watching.client_timeout = 330
    operator.watching.connect_timeout = 10
    # kopf's own API calls (patches of finalizers and annotations) never hang a handler for long.
    operator.networking.request_timeout = 60
    # No batch window: kopf 1.45 removed time-based batching (each object's worker always takes
    # the latest state of its queue, so a burst of changes still costs few reconciles).
    # Only managed bindings reach the operator: the server filters, so the cluster's other
    # RoleBindings are neither sent nor held in memory.
    managed = managed_selector()
    operator.watching.label_selectors[RBAC_GROUP, "rolebindings"] = managed
    operator.watching.label_selectors[RBAC_GROUP, "clusterrolebindings"] = managed


__all__ = [
    "NamespaceMemory",
    "Refresher",
    "ResourceEntry",
    "binding_changed",
    "connection_info",
    "first_refresh_delay",
    "index_binding_owner",
    "index_entry",
    "namespace_changed",
    "reconcile_body",
    "reconcile_entry",
    "resource_entry",
    "tune_kopf",
]
