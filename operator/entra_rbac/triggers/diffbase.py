"""Where kopf keeps the resource's last-handled configuration, and its progress, for us.

Holds `SpecDigestDiffBaseStorage` (kopf's diff-base, kept in `status.lastHandledConfiguration`
with the spec as a digest, recorded by the reconcile's own status write where it can be),
`QuietProgressStorage` (kopf's progress annotations without the marker that would cost a write
of its own) and the spec digest's canonical bytes. It must not reconcile, route or decide
anything about bindings: it only says what kopf stores and reads.

Why status, and why the hand-off (docs/design.md, kopf's state): kopf stores the diff-base after
a handling, in a patch of its own. In an annotation that was a second write per handling beside
the reconcile's status write, each one an event on every watch, an object version kopf
processes, and memory (issue 17 points 3 and 6). In status, the reconcile's status patch can
carry it: `stamp_for` tells the kopf handler the value kopf is about to store, the reconcile
writes it with its status when the handling is final (no requeue), `recorded` says so, and
`store` then adds nothing to kopf's patch, so kopf sends no request. Whenever that did not
happen (no status change, a failed write, a requeue), `store` writes it as kopf would.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, cast

import kopf
import orjson

from entra_rbac.constants import LAST_HANDLED_STATUS_KEY

log = logging.getLogger("entra_rbac.triggers")

SPEC_DIGEST = "sha256"
# What kopf's essence reads of metadata: labels and annotations, and ownerReferences (its
# storage keys depend on them).
_ESSENTIAL_METADATA = ("labels", "annotations", "ownerReferences")
# kopf's progress storages add this annotation under their prefix whenever the body lacks it.
MARKER = "kopf-managed"

FieldPath = tuple[str, ...]


def spec_digest(spec: Any) -> str:
    return _digest(canonical_json(spec))


def _digest(canonical: bytes) -> str:
    """The stored digest of a spec's canonical bytes."""
    return hashlib.sha256(canonical).hexdigest()


def canonical_json(value: Any) -> bytes:
    """`value` as sorted, compact JSON in UTF-8: the bytes `json.dumps(value, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)` gives, so digests stored by earlier versions
    still match. orjson writes them, in C, for every spec the CRD admits (strings, integers,
    booleans, lists, objects: its schema has no `number` field, where the two would print some
    floats differently; tests/unit/test_triggers.py); anything orjson refuses (an integer past
    64 bits) goes to `json`. The digest runs for every event of every resource: by `json`, with
    the spec's deep copy in `fetch`, it was about half of the diff-base storage's 2.6% of the
    operator's CPU converging 4,000 bindings (py-spy, issue 17 point 2)."""
    return _canonical(value)[0]


def _canonical(value: Any) -> tuple[bytes, Callable[[bytes], Any]]:
    """The canonical bytes and what reads them back as an equal value (orjson would read an
    integer past 64 bits as a float)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS), orjson.loads
    except TypeError:
        encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return encoded.encode(), json.loads


class QuietProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress in annotations under our prefix, without the `<prefix>/kopf-managed`
    marker kopf adds to the patch whenever the body lacks it.

    A handling that succeeds at once stores its progress and purges it in the same patch, which
    leaves nothing to send, but the marker: with the diff-base in status, it alone would be a
    write to the main endpoint on every resource's first handling. kopf needs no marker on our
    objects: its essence drops our own prefix's annotations by that prefix (`clear`); other
    kopf operators' storages recognise the marker written by earlier versions, which stays.
    """

    def store(
        self, *, key: kopf.HandlerId, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch
    ) -> None:
        marker = f"{self.prefix}/{MARKER}"
        added = marker not in body.metadata.annotations and marker not in patch.metadata.annotations
        super().store(key=key, record=record, body=body, patch=patch)
        if added:
            _remove_annotation(patch, marker)


def _remove_annotation(patch: kopf.Patch, key: str) -> None:
    """Drop `key` from the patch's annotations, and the stanzas it leaves empty (kopf sends a
    request for a non-empty patch only)."""
    metadata = patch.get("metadata")
    if not isinstance(metadata, dict):
        return
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(key, None)
        if not annotations:
            del metadata["annotations"]
    if not metadata:
        del patch["metadata"]


class SpecDigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base in `status.lastHandledConfiguration`, the spec stored as
    `{"sha256": <digest>}`; read from the legacy annotation `<prefix>/<key>` until status has one.

    On fetch, a stored digest equal to the current spec's gives back the current spec (no diff);
    a different one leaves the placeholder, so kopf sees `spec` changed and runs the update
    handler (which only needs to know that, not what: the reconciler reads the whole object).
    Labels and annotations are kept as kopf keeps them, so field handlers on annotations still
    get exact diffs. The essence is built as kopf's annotation storage builds it (so a stamp
    stored by an earlier version, in the annotation, reads equal after an upgrade).

    `exclusive_of`: the fields other handlers than the reconcile react to (the on-demand sync,
    the revocation confirmation). A change there can run several handlers in one handling, one
    of which may ask for a retry after another recorded the stamp: kopf would then see nothing
    left to handle. `stamp_for` gives no stamp for such a change; kopf stores it itself.
    """

    def __init__(
        self, *, prefix: str, key: str, progress: kopf.ProgressStorage, exclusive_of: Iterable[FieldPath] = ()
    ) -> None:
        super().__init__(prefix=prefix, key=key)
        self._progress = progress
        self._exclusive = tuple(exclusive_of)
        self._recorded: dict[str, str] = {}  # uid -> the stamp its reconcile wrote with status
        self.in_status = True  # False once the API server dropped the field (an older CRD)

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        """kopf's essence, from a body without what kopf copies and then drops: it deep-copies
        the whole body (status, managedFields) for every event before keeping the spec, labels
        and annotations; 3.2% of the operator's CPU converging 4,000 bindings (py-spy, issue 17
        point 2). The result is the same (tests/unit/test_triggers.py); with an extra field the
        slim body lacks (a status field), the whole body, as kopf does."""
        extra = list(extra_fields or ())
        if not all(_in_essence(field) for field in extra):
            return super().build(body=body, extra_fields=extra)
        meta = body.get("metadata") or {}
        slim = {key: value for key, value in body.items() if key not in ("metadata", "status")}
        slim["metadata"] = {key: meta[key] for key in _ESSENTIAL_METADATA if key in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, slim)), extra_fields=extra)

    def encode(self, essence: Mapping[str, Any]) -> str:
        """What is stored: compact JSON of the essence with its spec digested."""
        digested = dict(essence)
        if "spec" in digested:
            digested["spec"] = {SPEC_DIGEST: spec_digest(digested["spec"])}
        return json.dumps(digested, separators=(",", ":"))

    def stamp_for(self, body: kopf.Body) -> str | None:
        """The value kopf will store once it has handled `body` (as kopf computes it: the essence
        and the stored one, both without our progress annotations), or None when it will store
        none (nothing changed), must store it itself (`exclusive_of`) or keeps it in the
        annotation (`status_unavailable`)."""
        if not self.in_status:
            return None
        new = self._progress.clear(essence=self.build(body=body))
        stored = self.fetch(body=body)
        old = self._progress.clear(essence=stored) if stored is not None else None
        if old == new or self._touches_other_handlers(old, new):
            return None
        return self.encode(new)

    def _touches_other_handlers(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
        return any(_resolve(old or {}, path) != _resolve(new, path) for path in self._exclusive)

    def status_unavailable(self) -> None:
        """The API server dropped the field from a status write: the cluster's CRD predates it
        and prunes it from every write, so a record there would never be read back, every event
        would look new and each handling would write again. Until a restart (after the CRD's
        upgrade) the record goes to the annotation, as earlier versions kept it."""
        if self.in_status:
            log.warning(
                "The EntraGroupBinding CRD has no status.lastHandledConfiguration: apply the"
                " current CRD (crds/); until then kopf's record stays in an annotation"
                " (two writes per change)"
            )
        self.in_status = False

    def recorded(self, uid: str, stamp: str) -> None:
        """The reconcile of a kopf handling wrote `stamp` with its status: kopf need not."""
        self._recorded[uid] = stamp

    def forget(self, uid: str) -> None:
        self._recorded.pop(uid, None)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        encoded = self.encode(essence)
        if self._recorded.pop(str(body.metadata.uid or ""), None) == encoded:
            return  # in status already, written by the handling's reconcile
        if not self.in_status:
            super().store(body=body, patch=patch, essence=cast(kopf.BodyEssence, json.loads(encoded)))
            return
        patch.status[LAST_HANDLED_STATUS_KEY] = encoded

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = _decoded(body.get("status"), LAST_HANDLED_STATUS_KEY)
        if stored is None:
            stored = super().fetch(body=body)  # an earlier version's annotation (upgrades)
        if stored is None:
            return None
        spec = stored.get("spec")
        if isinstance(spec, dict) and set(spec) == {SPEC_DIGEST}:
            # The spec alone, copied: `self.build` deep-copies the whole body (status,
            # managedFields) for it, once more per event than kopf's own build (issue 17 point 2).
            # The copy is read back from the digest's own bytes (orjson, in C) rather than
            # by `copy.deepcopy`: an equal spec, its keys sorted.
            current = body.get("spec")
            if current is not None:
                canonical, read = _canonical(current)
                if _digest(canonical) == spec[SPEC_DIGEST]:
                    return cast(kopf.BodyEssence, {**stored, "spec": read(canonical)})
        return stored


def _decoded(status: Any, key: str) -> kopf.BodyEssence | None:
    """The essence stored in status, or None when there is none or it does not read as one (then
    kopf handles the resource as new: a full reconcile, which is always safe)."""
    encoded = status.get(key) if isinstance(status, Mapping) else None
    if not isinstance(encoded, str):
        return None
    try:
        decoded = json.loads(encoded)
    except ValueError:
        return None
    return cast(kopf.BodyEssence, decoded) if isinstance(decoded, dict) else None


def _resolve(essence: Mapping[str, Any], path: Collection[str]) -> Any:
    value: Any = essence
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _in_essence(field: kopf.FieldSpec) -> bool:
    """Whether a handler's field is in the slim body: outside metadata and status, or in labels
    or annotations. (A string path splits at dots; only its first two parts matter.)"""
    if field is None:
        return True  # no field: nothing to keep
    path = field.split(".") if isinstance(field, str) else list(field)
    if not path or path[0] == "status":
        return False
    return path[0] != "metadata" or (len(path) > 1 and path[1] in ("labels", "annotations"))
