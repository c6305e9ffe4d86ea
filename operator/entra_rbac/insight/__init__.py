"""`plan`, `explain` and `report` (docs/cli.md): who would gain or lose access, who has what and
why, the access review. Read-only against the cluster; decided by the reconcile's own pure core.

Layer: above the reconciler (it reuses its directory phase and policy), below the CLI glue; it
must not import kopf, the triggers, the handlers or the runner (an import-linter contract).
"""
