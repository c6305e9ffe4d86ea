"""`entra-rbac run`: settings, logging, metrics, then kopf with our handlers, cluster-wide.

Holds `prepare` (everything that can fail on bad configuration, done before kopf starts so a
mistake is one clear message and exit code 2) and `run_operator`. It must not hold handler
logic (handlers, triggers) or reconcile logic (reconciler).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any

import kopf

from entra_rbac import handlers, reconciler, triggers
from entra_rbac.adapters.kube import load_configuration
from entra_rbac.errors import SettingsError
from entra_rbac.logsetup import configure_logging, fields
from entra_rbac.metrics import MetricsServer, OperatorMetrics, start_metrics_server
from entra_rbac.settings import RETIRED_VARIABLES, Settings, load_settings, unknown_variables

log = logging.getLogger("entra_rbac.run")

EXIT_INVALID_SETTINGS = 2


@dataclass
class Prepared:
    settings: Settings
    registry: kopf.OperatorRegistry
    metrics: OperatorMetrics


def prepare(*, kubeconfig: str | None = None, context: str | None = None) -> Prepared:
    """Load and check everything; raises `SettingsError` with one message naming the problem."""
    overrides: dict[str, Any] = {}
    if kubeconfig is not None:
        overrides["kubeconfig"] = kubeconfig
    if context is not None:
        overrides["kube_context"] = context
    settings = load_settings(**overrides)
    reconciler.Policy.from_settings(settings)  # the guardrails parse (ENTRA_RBAC_GROUP_ROLES), or stop here
    # Fail now, not inside kopf's startup, where a bad kubeconfig or tenant would be a retry loop.
    load_configuration(settings.kubeconfig, settings.kube_context)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings)
    return Prepared(settings=settings, registry=registry, metrics=OperatorMetrics())


def run_operator(
    prepared: Prepared,
    *,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
    metrics_address: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes the pod IP
) -> None:
    """Run until stopped (SIGINT / SIGTERM, or `stop_flag`)."""
    settings = prepared.settings
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        secrets=[settings.client_secret],
    )
    server: MetricsServer | None = start_metrics_server(
        prepared.metrics, settings.metrics_port, address=metrics_address
    )
    health = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    for name in unknown_variables(os.environ):
        log.warning("Ignored unknown setting", extra=fields(variable=name, see="docs/configuration.md"))
    for name, why in RETIRED_VARIABLES.items():
        if name in os.environ:
            log.warning("Ignored retired setting", extra=fields(variable=name, why=why))
    identity = peering_identity()
    if settings.standalone:
        log.warning(
            "Running standalone: unsafe with more than one instance (docs/deployment.md)",
            extra=fields(ENTRA_RBAC_STANDALONE=True),
        )
    log.info(
        "Starting operator",
        extra=fields(
            refresh_interval=settings.refresh_interval,
            directory_cache=round(settings.freshness.cache_lifetime, 3),
            peering="standalone" if settings.standalone else settings.peering_name,
            priority=settings.peering_priority,
            identity=identity,
            metrics_port=settings.metrics_port,
            health_port=settings.health_port,
        ),
    )
    try:
        kopf.run(
            registry=prepared.registry,
            clusterwide=True,
            # Peering is set once, in the startup handler (triggers.tune_kopf), not here too.
            liveness_endpoint=health,
            identity=identity,  # type: ignore[arg-type]  # kopf.run types it as its private NewType of str
            # instance: the pod name (HOSTNAME), reported on every Event as reportingInstance.
            memo=triggers.OperatorMemo(
                metrics=prepared.metrics, instance=socket.gethostname(), identity=identity
            ),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        if server is not None:
            server.close()


def peering_identity() -> str:
    """This instance's name among its peers: the pod name (POD_ID, as kopf reads it) when set,
    else host, process and a random tail, so two processes on one host never share one."""
    pod = os.environ.get("POD_ID")
    return pod or f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


__all__ = ["EXIT_INVALID_SETTINGS", "Prepared", "SettingsError", "prepare", "run_operator"]
