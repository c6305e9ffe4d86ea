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

Why a hysteresis on the count: the fresh count is a step function of the total size, so a group
hovering at a step would flip between k and k+1 shards, and each flip moves subjects out of (or
into) every shard, rewriting all of them. Given the count in use, the split grows only when a
shard at that count would pass the budget, and shrinks only when the subjects fit fewer shards
with SHARD_SHRINK_MARGIN of the budget to spare.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from entra_rbac.constants import DEFAULT_MAX_SHARDS, MAX_BINDING_BYTES, SHARD_FILL, SHARD_SHRINK_MARGIN
from entra_rbac.core.json_size import string_bound
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
    subjects: tuple[Subject, ...], budget: int, max_shards: int, current: int = 1
) -> tuple[tuple[Subject, ...], ...]:
    """`subjects` (sorted) as the subject lists of shards 1, 2, ... each sorted and within `budget`
    bytes where `max_shards` allows; a shard may be empty (its index is kept: names are stable).

    `current`: the number of shards written now (1: one binding, or none yet). The count is
    - kept while no shard at that count passes the budget, unless the subjects fit fewer shards
      with SHARD_SHRINK_MARGIN of the budget to spare (then that fewer);
    - otherwise, and for a binding not yet sharded, the fresh count: one shard within the
      budget, else n = ceil(total / (budget x SHARD_FILL)) shards, at least 2 (and more than
      `current`), one more while the fullest is over the budget, up to `max_shards` (the caller
      refuses what is still over)."""
    if max_shards <= 1:
        return (subjects,)
    sizes = [subject_bytes(s) for s in subjects]
    total = sum(sizes)
    if stays_whole(total, budget, max_shards, current):
        return (subjects,)
    current = min(max(current, 1), max_shards)
    split = _Split(subjects, sizes, budget, max_shards)
    if current > 1:
        fewer = _planned(total, budget * (1 - SHARD_SHRINK_MARGIN), max_shards)
        if fewer < current:
            return split.growing_from(fewer)
        shards, fullest = split.into(current)
        if fullest <= budget:
            return shards
        return split.growing_from(max(current + 1, _planned(total, budget, max_shards)))
    return split.growing_from(_planned(total, budget, max_shards))


def stays_whole(total: int, budget: float, max_shards: int, current: int = 1) -> bool:
    """Whether `split_subjects` keeps subjects of `total` bytes as one binding: always with one
    shard allowed; for a binding not sharded now when they fit `budget`; for one sharded now when
    they fit it with SHARD_SHRINK_MARGIN to spare. The smaller `budget` or the larger `total`,
    the fewer the cases, so a budget counted low or a total counted high never says yes wrongly
    (`core.desired` asks it with bounds before counting exactly)."""
    if max_shards <= 1:
        return True
    if min(max(current, 1), max_shards) > 1:
        return total <= budget * (1 - SHARD_SHRINK_MARGIN)
    return total <= budget


def subjects_bound(subjects: Iterable[Subject], limit: int) -> int:
    """At least the bytes `subjects` add to a binding (the sum of `subject_bytes`), counted with
    `core.json_size.string_bound` instead of encoding; stops once past `limit` (the answer is
    then only known to be over it)."""
    total = 0
    for kind, name in subjects:
        total += _SUBJECT_FRAME + string_bound(kind) + string_bound(name)
        if total > limit:
            break
    return total


def _planned(total: int, budget: float, max_shards: int) -> int:
    """The fresh count for `total` bytes: 1 within `budget`, else ceil(total / (budget x
    SHARD_FILL)) and at least 2, at most `max_shards`."""
    if total <= budget:
        return 1
    return min(max(2, math.ceil(total / max(budget * SHARD_FILL, 1))), max_shards)


@dataclass(frozen=True)
class _Split:
    subjects: tuple[Subject, ...]
    sizes: list[int]
    budget: int
    max_shards: int

    @cached_property
    def keys(self) -> list[int]:
        return [_key(s) for s in self.subjects]

    def growing_from(self, count: int) -> tuple[tuple[Subject, ...], ...]:
        """The split into `count` shards, one more while the fullest is over the budget."""
        if count <= 1:
            return (self.subjects,)
        while True:
            shards, fullest = self.into(count)
            if fullest <= self.budget or count >= self.max_shards:
                return shards
            count += 1

    def into(self, count: int) -> tuple[tuple[tuple[Subject, ...], ...], int]:
        """The subjects hashed into `count` shards, and the bytes of the fullest."""
        shards: list[list[Subject]] = [[] for _ in range(count)]
        used = [0] * count
        for subject, size, key in zip(self.subjects, self.sizes, self.keys, strict=True):
            bucket = _jump(key, count)
            shards[bucket].append(subject)
            used[bucket] += size
        return tuple(tuple(shard) for shard in shards), max(used)


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
