"""The kopf handlers: decorators and one-line delegations only (glue, layer 1).

`register(registry, config)` declares every trigger of docs/design.md, Triggers on `registry`; it is a
function, not module-level decorators, because the timer's interval comes from the settings,
which `entra-rbac run` loads (and validates) before anything is registered. Every resource
trigger runs the same idempotent reconcile (`triggers.reconcile_*` -> `reconciler`); the routing
of namespace and binding events lives in `triggers`. Nothing else belongs here.
"""

from __future__ import annotations

from typing import Any

import kopf

from entra_rbac import triggers
from entra_rbac.adapters.kube import load_configuration
from entra_rbac.constants import GROUP, GUARDRAILS_PLURAL, PLURAL, VERSION
from entra_rbac.settings import Settings
from entra_rbac.triggers import CONFIRM_FIELD, SYNC_FIELD, OperatorMemo

EGB = (GROUP, VERSION, PLURAL)


def register(registry: kopf.OperatorRegistry, config: Settings) -> None:
    """Declare every handler on `registry`.

    Every handler has an explicit `id`: kopf would otherwise use the qualified name
    (`register.<locals>.reconcile`), which names the index kwargs and the progress annotations.
    """

    # --- lifecycle of the operator ---
    @kopf.on.login(id="login", registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return triggers.connection_info(load_configuration(config.kubeconfig, config.kube_context))

    @kopf.on.startup(id="startup", registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: OperatorMemo, **_: Any) -> None:
        await triggers.start(settings, memo, config)

    @kopf.on.probe(id="seconds_since_verified_directory_read", registry=registry)
    def directory_freshness(memo: OperatorMemo, **_: Any) -> float:
        return triggers.directory_freshness(memo)

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def cleanup(memo: OperatorMemo, **_: Any) -> None:
        await triggers.stop(memo)

    # No kopf index: each one made every handler wait for every indexed object after a restart.
    # The operator's cache (triggers.watching) keeps the resources, bindings and namespaces.

    # --- the resource: created, changed, resumed, deleted, on-demand sync, and its timer ---
    @kopf.on.resume(*EGB, id="reconcile", registry=registry)
    @kopf.on.create(*EGB, id="reconcile", registry=registry)
    @kopf.on.update(*EGB, field="spec", id="reconcile", registry=registry)
    async def reconcile(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.reconcile_body(body, memo)

    @kopf.on.field(*EGB, field=CONFIRM_FIELD, id="revocation_confirmed", registry=registry)
    async def revocation_confirmed(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.reconcile_body(body, memo)

    @kopf.on.field(*EGB, field=SYNC_FIELD, id="sync_requested", registry=registry)
    async def sync_requested(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.reconcile_body(body, memo, fresh=True)

    # No finalizer (optional=True): deleting a resource never waits for the operator, and the
    # garbage collector removes its bindings through their ownerReferences even when it is down.
    # While it runs, the DELETED event cleans up at once. That handler is filtered to DELETED
    # events (`when`): unfiltered, kopf ran it, and logged "Handler 'deleted' succeeded", for
    # every event of every resource, none of them deleted.
    @kopf.on.delete(*EGB, id="delete", optional=True, registry=registry)
    async def delete(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.reconcile_body(body, memo, deletion=True)

    @kopf.on.event(*EGB, id="resource_gone", when=triggers.is_deletion, registry=registry)
    async def resource_gone(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.resource_gone(body, memo)

    # --- the guardrails, read live: a change re-checks every resource at once ---
    @kopf.on.event(GROUP, VERSION, GUARDRAILS_PLURAL, id="guardrails_event", registry=registry)
    async def guardrails_event(type: str, body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
        await triggers.guardrails_changed(type, body, memo.follower.resources, memo)

    # Namespaces, and managed bindings changed by someone else, come from the operator's cache:
    # `triggers.watching` (started by `triggers.start`), not from kopf handlers.
