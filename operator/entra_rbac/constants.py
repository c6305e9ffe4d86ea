"""Names the whole product agrees on: the API group, labels, annotations, reserved namespaces.

Holds constants only. Everything else in the package may import it; it imports nothing of ours.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "entra-rbac.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "EntraGroupBinding"
PLURAL: Final = "entragroupbindings"
# The guardrails (docs/design.md, Guardrails): one cluster-scoped object of this kind, read by the
# admission policy and, live, by the operator.
GUARDRAILS_PLURAL: Final = "guardrails"
GUARDRAILS_NAME: Final = "entra-rbac-guardrails"

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
RBAC_API_VERSION: Final = f"{RBAC_GROUP}/v1"

OPERATOR_NAME: Final = "entra-rbac-operator"

# Ownership: both the label and a controller ownerReference to the resource's UID are required
# before the operator changes or deletes anything (docs/design.md, Ownership).
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = OPERATOR_NAME
# The owning resource's UID (always a valid label value), so one label-selected list finds
# every binding of one resource.
OWNER_UID_LABEL: Final = f"{GROUP}/owner-uid"
# The owning resource's name, for people reading bindings (names may exceed label limits).
OWNER_NAME_ANNOTATION: Final = f"{GROUP}/owner"
# Which Entra groups a binding's subjects come from, for auditors ("who has what, and why").
GROUPS_ANNOTATION: Final = f"{GROUP}/groups"

SYNC_REQUESTED_ANNOTATION: Final = f"{GROUP}/sync-requested"
# Set on a hand-made binding at a name a resource targets, naming that resource: the one way a
# binding the operator did not create becomes its own (docs/design.md, Adoption).
ADOPT_ANNOTATION: Final = f"{GROUP}/adopt"
CONFIRM_REVOCATION_ANNOTATION: Final = f"{GROUP}/confirm-revocation"

# kopf's last-handled configuration of the resource (a digest of its spec, its labels and
# annotations), kept in status so that the reconcile's status write also records it: one write
# per handling instead of a status patch and an annotation patch (docs/design.md, kopf's state).
LAST_HANDLED_STATUS_KEY: Final = "lastHandledConfiguration"

# Namespaces a selector never matches; they can still be named explicitly.
DEFAULT_RESERVED_NAMESPACES: Final = ("kube-system", "kube-public", "kube-node-lease")

# The mass-revocation guard (docs/design.md, Directory semantics): a sync that would remove more
# than this share of a resource's subjects, and at least this many of them, is held back. The
# settings' defaults, and what the core's check and the reconcile policy fall back to.
DEFAULT_REVOCATION_GUARD_SHARE: Final = 0.5
DEFAULT_REVOCATION_GUARD_MIN: Final = 5
# Seconds a deletion seen in Entra must last before it is acted on (docs/configuration.md).
DEFAULT_DELETION_CONFIRMATION: Final = 60.0
# Seconds between two writes of a Warning Event that keeps recurring unchanged: client-go's
# events library refreshes an event series every 30 minutes (docs/configuration.md).
DEFAULT_EVENT_SERIES_INTERVAL: Final = 1800.0

# The largest binding the operator writes, in bytes of compact JSON (docs/design.md, Subjects the
# operator emits: bindings too large to write). Measured on the real control plane: the API server
# refuses a body over 3 MiB (413), etcd a stored object over 1.5 MiB (500 "etcdserver: request is
# too large"); the stored protobuf is never larger than the compact JSON, so 1 MiB keeps a margin
# of 1.5x below etcd whatever the subjects' names (about 10,000 User subjects of UPN length).
MAX_BINDING_BYTES: Final = 1024 * 1024
# A binding over MAX_BINDING_BYTES is written as up to this many shards (ENTRA_RBAC_MAX_SHARDS):
# 16 MiB of subjects, about 160,000 Users of UPN length, before BindingTooLarge.
DEFAULT_MAX_SHARDS: Final = 16
# Shards are planned at this share of the byte limit, so the hash split's spread never
# pushes one over (docs/design.md, Subjects the operator emits: bindings too large to write).
SHARD_FILL: Final = 0.8
# Hysteresis on the shard count (docs/design.md, Subjects the operator emits: bindings too large
# to write): a sharded binding goes down to fewer shards only when its subjects fit them with this
# share of the budget to spare, so membership hovering at a boundary does not flip the count (each
# flip rewrites every shard).
SHARD_SHRINK_MARGIN: Final = 0.2
MAX_SHARDS_LIMIT: Final = 100
MIN_BINDING_BYTES: Final = 1024
ETCD_REQUEST_BYTES: Final = 1536 * 1024  # etcd's default --max-request-bytes

FIELD_MANAGER: Final = OPERATOR_NAME
