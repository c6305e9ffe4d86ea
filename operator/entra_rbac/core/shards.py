"""How a binding too large for one object is split into shards (docs/design.md, Subjects the
operator emits: bindings too large to write).

Holds `Sharding` (the byte limit and the cap on shards) and `split_subjects`, the one split.
Pure: sizes are counted from the subjects' compact JSON, nothing is sent.

Why a jump consistent hash (Lamping and Veach, 2014) of each subject rather than cutting the
sorted list into runs: a subject's shard depends only on itself and the number of shards, so a
member joining or leaving rewrites the one shard it hashes to (cutting runs would move every
subject after it); and when the number of shards grows from n to m, subjects move only into the
new shards n+1..m (created first), when it shrinks only out of the shards that go (deleted last),
so a plan's creates, then patches, then deletes never leave a staying member without a binding.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from entra_rbac.constants import DEFAULT_MAX_SHARDS, MAX_BINDING_BYTES, SHARD_FILL
from entra_rbac.core.subjects import Subject

_MULTIPLIER = 2862933555777941757  # the jump hash's linear congruential step
_MASK = (1 << 64) - 1
# `{"kind":,"apiGroup":"rbac.authorization.k8s.io","name":}` and the comma between two subjects.
_SUBJECT_FRAME = len('{"kind":,"apiGroup":"rbac.authorization.k8s.io","name":}') + 1


@dataclass(frozen=True)
class Sharding:
    """At most `max_bytes` of compact JSON in one binding, at most `max_shards` bindings per
    binding asked for (1: never shard, a binding over the limit is refused)."""

    max_bytes: int = MAX_BINDING_BYTES
    max_shards: int = DEFAULT_MAX_SHARDS


def subject_bytes(subject: Subject) -> int:
    """The bytes `subject` adds to a binding's compact JSON, its comma included."""
    return _SUBJECT_FRAME + len(json.dumps(subject.kind)) + len(json.dumps(subject.name))


def split_subjects(
    subjects: tuple[Subject, ...], budget: int, max_shards: int
) -> tuple[tuple[Subject, ...], ...]:
    """`subjects` (sorted) as the subject lists of shards 1, 2, ... each sorted and within `budget`
    bytes where `max_shards` allows; a shard may be empty (its index is kept: names are stable).

    Within the budget: one shard, the list itself. Otherwise n = ceil(total / (budget x
    SHARD_FILL)) shards, at least 2, one more while the fullest is over the budget, up to
    `max_shards` (the caller refuses what is still over)."""
    sizes = [subject_bytes(s) for s in subjects]
    total = sum(sizes)
    if total <= budget or max_shards <= 1:
        return (subjects,)
    keys = [_key(s) for s in subjects]
    count = min(max(2, math.ceil(total / max(budget * SHARD_FILL, 1))), max_shards)
    while True:
        shards: list[list[Subject]] = [[] for _ in range(count)]
        used = [0] * count
        for subject, size, key in zip(subjects, sizes, keys, strict=True):
            bucket = _jump(key, count)
            shards[bucket].append(subject)
            used[bucket] += size
        if max(used) <= budget or count >= max_shards:
            return tuple(tuple(shard) for shard in shards)
        count += 1


def _key(subject: Subject) -> int:
    digest = hashlib.blake2b(f"{subject.kind}\0{subject.name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _jump(key: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in [0, buckets) of `key`; growing `buckets` moves a key
    only into a new bucket."""
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * _MULTIPLIER + 1) & _MASK
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket
