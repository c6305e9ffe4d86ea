"""The operator's start and stop, and every kopf setting it changes.

Holds `start` / `stop` (what the startup and cleanup handlers do: tune kopf, build the clients
and the reconcile context, run the refresher; then close it all), `tune_kopf` (each non-default
kopf setting with its reason, peering included: set here and nowhere else), `connection_info`
(kopf's credentials from the official client's configuration), `directory_freshness` (the
health probe) and `revoke_expired_first` (start-up's first act). It must not route events or
decide anything about bindings.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes import client

from entra_rbac import reconciler
from entra_rbac.constants import (
    CONFIRM_REVOCATION_ANNOTATION,
    GROUP,
    OPERATOR_NAME,
    SYNC_REQUESTED_ANNOTATION,
)
from entra_rbac.errors import KubeError
from entra_rbac.logsetup import fields
from entra_rbac.settings import Settings
from entra_rbac.triggers.conflicts import ConflictWatcher
from entra_rbac.triggers.delta import DeltaFollower
from entra_rbac.triggers.diffbase import QuietProgressStorage, SpecDigestDiffBaseStorage
from entra_rbac.triggers.guardrails import load_guardrails
from entra_rbac.triggers.memo import OperatorMemo
from entra_rbac.triggers.peering import PeeringGate
from entra_rbac.triggers.refresher import Refresher
from entra_rbac.triggers.routing import NamespaceMemory
from entra_rbac.triggers.watching import CacheFollower

log = logging.getLogger("entra_rbac.triggers")

# How long start-up waits for the cache's first lists before kopf resumes the resources: past
# it, reads go to the API server until each informer has listed (logged).
CACHE_SYNC_TIMEOUT = 120.0

# Where kopf keeps its per-handler progress (annotations) and, in earlier versions, its
# last-handled configuration (now in status: triggers.diffbase).
KOPF_STATE_PREFIX = f"operator.{GROUP}"
# The annotations the on-demand sync and the revocation confirmation react to (their kopf field
# handlers, in `handlers`).
SYNC_FIELD = ("metadata", "annotations", SYNC_REQUESTED_ANNOTATION)
CONFIRM_FIELD = ("metadata", "annotations", CONFIRM_REVOCATION_ANNOTATION)

# How long kopf waits for the watch event of its own patch before it handles an object again
# (`_persistence`); kopf's default is 5 s.
CONSISTENCY_TIMEOUT = 30.0


async def start(operator: kopf.OperatorSettings, memo: OperatorMemo, settings: Settings) -> None:
    """Tune kopf, build what every handler shares, and start the periodic refresh."""
    tune_kopf(operator, settings)
    storage = operator.persistence.diffbase_storage
    memo.stamps = storage if isinstance(storage, SpecDigestDiffBaseStorage) else None
    memo.namespaces = NamespaceMemory()
    memo.clients = reconciler.build_clients(settings, memo.metrics, instance=memo.instance)
    memo.ctx = reconciler.build_context(settings, memo.clients, memo.metrics)
    memo.settings_guardrails = memo.ctx.policy.guardrails
    await load_guardrails(memo)
    gate = None
    if not settings.standalone:
        gate = PeeringGate(
            memo.clients.kube,
            name=settings.peering_name,
            identity=memo.identity,
            priority=settings.peering_priority,
        )
    await _start_cache(memo, settings, gate)
    listed = await revoke_expired_first(memo, gate)
    await _read_directory_first(memo, listed)
    memo.refresher = Refresher(memo.clients.kube, memo.ctx, settings.freshness, gate=gate)
    memo.refresher.start()
    memo.conflicts = ConflictWatcher(memo.clients.kube, memo.ctx, gate=gate)
    memo.conflicts.start()
    memo.delta = None
    if settings.delta_interval is not None:
        memo.delta = DeltaFollower(
            memo.clients.kube, memo.clients.directory, memo.ctx, settings.delta_interval, gate=gate
        )
        memo.delta.start()


async def _start_cache(memo: OperatorMemo, settings: Settings, gate: PeeringGate | None) -> None:
    """The informers every reconcile observes from, listed before the first reconcile; their
    changes (namespaces, managed bindings edited by someone else) start reconciles."""
    cache = memo.clients.kube.start_cache(
        resync=settings.cache_resync, peering=None if settings.standalone else settings.peering_name
    )
    memo.follower = CacheFollower(memo, cache, gate)
    if not await cache.wait_synced(CACHE_SYNC_TIMEOUT):
        waiting = [i.what for i in cache.informers if not i.synced.is_set()]
        log.warning(
            "The cache is not filled yet; reads go to the API server meanwhile",
            extra=fields(collections=",".join(waiting)),
        )


async def revoke_expired_first(memo: OperatorMemo, gate: PeeringGate | None) -> list[dict[str, Any]]:
    """The first act on start-up, before kopf resumes any resource: grants whose `validUntil`
    passed while the operator was down are revoked now (docs/design.md, Time-bound grants),
    unless another instance is in charge (it does the same). Also says when our clock and the
    API server's differ much (windows follow our clock). The resources listed (none when paused)."""
    kube = memo.clients.kube
    await reconciler.check_clock_skew(kube, memo.ctx.clock())
    if gate is not None and await gate.paused():
        return []
    try:
        bodies = await kube.list_resources()
    except KubeError as error:
        log.warning("Failed to list EntraGroupBindings at start-up", extra=fields(error=str(error)))
        return []
    deleted = await reconciler.sweep_expired(bodies, memo.ctx)
    log.info(
        "Revoked expired grants at start-up", extra=fields(resources=len(bodies), bindings_deleted=deleted)
    )
    return bodies


async def _read_directory_first(memo: OperatorMemo, bodies: list[dict[str, Any]]) -> None:
    """Before kopf resumes the resources one by one, their directory reads in bulk (issue 17
    point 5): one getByIds per 1,000 ids instead of one per few resumes. It decides nothing; the
    resumes read through the same cache (or again, where this failed)."""
    try:
        await reconciler.prefetch_directory(memo.ctx.directory, bodies)
    except Exception:  # the resumes read for themselves; a bug here must not stop the start
        log.exception("Prefetch of the directory reads at start-up failed")


async def stop(memo: OperatorMemo) -> None:
    await memo.refresher.stop()
    await memo.conflicts.stop()
    if memo.delta is not None:
        await memo.delta.stop()
    await memo.follower.stop()
    await memo.clients.kube.stop_cache()
    await memo.clients.aclose()


def directory_freshness(memo: OperatorMemo) -> float:
    """For /healthz: seconds since the directory was last verified (informational, never fails)."""
    return round(memo.metrics.seconds_since_verified_read(), 1)


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration (what kopf's `login_via_client` does), so
    the watches and the writes use one identity even with `--kubeconfig` / `--context`."""
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
    _persistence(operator)
    # The audit trail is the reconciler's own Events; kopf's "Handler succeeded" info Events
    # would bury it. Its warnings and errors (a handler failing) still become Events.
    operator.posting.level = logging.WARNING
    operator.posting.reporting_component = OPERATOR_NAME
    _peering(operator, settings)
    _watching(operator)


def _persistence(operator: kopf.OperatorSettings) -> None:
    # kopf's own marks live under our API group, not kopf.zalando.org: an auditor sees one owner.
    operator.persistence.finalizer = f"{GROUP}/finalizer"
    # Progress in annotations, not in .status: status is ours (kstatus conditions) alone. Under a
    # sub-domain, never `entra-rbac.io/` itself: kopf hides every annotation under its storage
    # prefix from change detection, which would hide sync-requested and confirm-revocation too.
    # (Not `kopf.`-prefixed either: kopf does not mark such prefixes as its own.)
    progress = QuietProgressStorage(prefix=KOPF_STATE_PREFIX)
    operator.persistence.progress_storage = progress
    # The last-handled configuration lives in status, where the reconcile's own status write
    # records it (one write per handling, not two: triggers.diffbase), and keeps a digest of the
    # spec, not a copy: the CRD admits specs of ~864 KB. Earlier versions kept it in the
    # annotation named here, still read until status has one.
    operator.persistence.diffbase_storage = SpecDigestDiffBaseStorage(
        prefix=KOPF_STATE_PREFIX,
        key="last-handled-configuration",
        progress=progress,
        exclusive_of=(SYNC_FIELD, CONFIRM_FIELD),
    )
    # After its own patch kopf waits this long for the patched version's watch event; the events
    # before it lack kopf's marks. Past the wait it takes the latest event it has as current, and
    # for a resource handled for the first time that is the echo of the reconciler's status write,
    # without the last-handled configuration: kopf runs the whole reconcile again and patches its
    # annotations once more. kopf's 5 s ran out for every resource in some first resumes over
    # 1,000 on the sandbox (3,000 writes instead of 2,000, up to ~100 MiB more; docs/performance.md,
    # Memory). A longer wait only delays an event that follows a patched version which never
    # arrives (a watch relisted past it).
    operator.persistence.consistency_timeout = CONSISTENCY_TIMEOUT


def _peering(operator: kopf.OperatorSettings, settings: Settings) -> None:
    """Peering on by default, cluster-wide: never two writers (docs/deployment.md). Mandatory:
    without the ClusterKopfPeering object kopf pauses rather than act alone. Standalone only when
    asked for (ENTRA_RBAC_STANDALONE), which is unsafe with more than one instance.

    The one place peering is set: `kopf.run` gets no peering arguments (only the identity, which
    the refresher's gate shares), since kopf starts its peering tasks only after the startup
    handlers, which read these settings.
    """
    operator.peering.standalone = settings.standalone
    operator.peering.clusterwide = True
    operator.peering.name = settings.peering_name
    operator.peering.priority = settings.peering_priority
    operator.peering.lifetime = settings.peering_lifetime
    operator.peering.mandatory = not settings.standalone


def _watching(operator: kopf.OperatorSettings) -> None:
    # Watches end server-side every 5 minutes and client-side shortly after: a half-open TCP
    # connection (a load balancer dropping idle flows) is noticed instead of stalling forever.
    operator.watching.server_timeout = 300
    operator.watching.client_timeout = 330
    operator.watching.connect_timeout = 10
    # kopf's own API calls (patches of finalizers and annotations) never hang a handler for long.
    operator.networking.request_timeout = 60
    # No batch window: kopf 1.45 removed time-based batching (each object's worker always takes
    # the latest state of its queue, so a burst of changes still costs few reconciles).
    # kopf watches no binding and no namespace: the operator's own cache does (triggers.watching).
