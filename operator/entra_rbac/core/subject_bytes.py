"""Subject lists recognised in the bytes the API server sends, so a known one is not decoded again.

Holds `EncodedLists`: the JSON encoding of each long subject list the cluster cache holds (one
`SharedSubjects` per distinct list, `core.subjects.SubjectInterner`), and `decode`, which reads a
binding (a write's answer) or a watch event from its bytes. When the bytes at the binding's
`subjects` are exactly the encoding of a held list, the rest of the document is decoded with a
placeholder in their place and the held list stands in for them: the 1,000 subjects of a
user-mode binding are compared with one `bytes.startswith` (C, no objects made) instead of being
decoded into 1,000 dicts and compared dict by dict with the held list (issue 17 point 7: the
write answers and watch echoes of 2,000 such bindings were a third of user mode's CPU).

Why this is the object as the API server returned it, and never a guess: the held list's bytes
are compared with the answer's in full; the placeholder, a string found nowhere in the original,
must decode as exactly the `subjects` value of the binding and occur once, so the original bytes
held the held list's encoding as that very value, and decoding them would have given a list equal
to it. Anything else (another encoding, a subject added by hand, a list never seen) is decoded as
before and goes through the interner's parse, so drift is seen and healed exactly as before.
Pure: bytes in, decoded JSON out; no I/O.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from entra_rbac.core.subjects import SharedSubjects

# Only long lists are worth recognising (a user-mode list; a group-mode binding holds a few
# subjects, decoded in microseconds).
MIN_BYTES = 4096
# Held lists are found by the first bytes of their encoding; lists sharing those (sorted lists of
# overlapping groups) are told apart by comparing each in full, up to this many per prefix.
PREFIX_BYTES = 256
CANDIDATES = 4
_KEY = b'"subjects":'
_PLACEHOLDER = "entra-rbac.io/held-subject-list"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER).encode()
_PLACEHOLDER_BYTES = _PLACEHOLDER.encode()

Loads = Callable[[bytes], Any]


def encode(subjects: list[dict[str, Any]]) -> bytes:
    """A subject list as the API servers send it: compact, keys in their order, UTF-8 as is."""
    return json.dumps(subjects, separators=(",", ":"), ensure_ascii=False).encode()


class EncodedLists:
    """The encodings of the long held lists, found by prefix. Read from the Kubernetes client's
    threads (a write's answer is decoded there) and written from the event loop: one lock."""

    def __init__(self) -> None:
        self._by_prefix: dict[bytes, list[weakref.ref[SharedSubjects]]] = {}
        self._lock = threading.Lock()
        self.recognised = 0  # documents whose subjects were a held list (tests, benchmarks)

    def register(self, shared: SharedSubjects) -> None:
        """Remember the encoding of a list just taken into the cache (once per distinct list)."""
        encoded = encode(shared)
        if len(encoded) < MIN_BYTES:
            return
        shared.encoded = encoded
        prefix = encoded[:PREFIX_BYTES]
        with self._lock:
            alive = [ref for ref in self._by_prefix.get(prefix, ()) if ref() is not None]
            self._by_prefix[prefix] = [*alive[-(CANDIDATES - 1) :], weakref.ref(shared)]
            if len(self._by_prefix) > 64 and len(self._by_prefix) % 64 == 0:
                self._forget_dead()

    def _forget_dead(self) -> None:
        for prefix in [p for p, refs in self._by_prefix.items() if all(r() is None for r in refs)]:
            del self._by_prefix[prefix]

    def decode(self, data: bytes, loads: Loads = json.loads, *, event: bool = False) -> Any:
        """`data` decoded by `loads`: a binding, or with `event` a watch event `{"type", "object"}`
        (the binding under `object`); when its subjects are byte for byte a held list, that list
        (a `SharedSubjects`, never to be mutated) is put in their place undecoded."""
        start = data.find(_KEY)
        if start >= 0:
            start += len(_KEY)
            held = self._held_at(data, start)
            if held is not None:
                found = _decode_around(data, start, held, loads, event=event)
                if found is not None:
                    self.recognised += 1
                    return found
        return loads(data)

    def decode_page(self, data: bytes, loads: Loads = json.loads) -> Any:
        """A list page (`{"items": [...], "metadata"}`) decoded by `loads`, every item whose
        subjects are byte for byte a held list given that list undecoded: a restart lists 2,000
        user-mode bindings in pages of 100, 100 x 1,000 subjects decoded per page, then compared
        dict by dict with the held list (issue 17 point 7: half of a restart's CPU). All or
        nothing: unless every recognised list turns out to be exactly an item's `subjects`, the
        page is decoded whole, as any other."""
        spans: list[tuple[int, SharedSubjects]] = []
        at = data.find(_KEY)
        while at >= 0:
            start = at + len(_KEY)
            held = self._held_at(data, start)
            if held is not None:
                spans.append((start, held))
                start += len(held.encoded)
            at = data.find(_KEY, start)
        if spans:
            found = _decode_page_around(data, spans, loads)
            if found is not None:
                self.recognised += len(spans)
                return found
        return loads(data)

    def _held_at(self, data: bytes, start: int) -> SharedSubjects | None:
        with self._lock:
            refs = list(self._by_prefix.get(data[start : start + PREFIX_BYTES], ()))
        for ref in refs:
            held = ref()
            if held is not None and data.startswith(held.encoded, start):
                return held
        return None


def _decode_around(data: bytes, start: int, held: SharedSubjects, loads: Loads, *, event: bool) -> Any | None:
    """The document with `held` at `subjects`, or None when the bytes at `start` are not exactly
    the binding's `subjects` value (then it is decoded whole, as any other)."""
    if _PLACEHOLDER_JSON in data:
        return None
    patched = data[:start] + _PLACEHOLDER_JSON + data[start + len(held.encoded) :]
    try:
        found = loads(patched)
    except ValueError:
        return None
    binding = found.get("object") if event and isinstance(found, dict) else found
    if not isinstance(binding, dict) or binding.get("subjects") != _PLACEHOLDER:
        return None
    if patched.count(_PLACEHOLDER_JSON) != 1:
        return None
    binding["subjects"] = held
    return found


def _numbered(index: int) -> bytes:
    return b'"%s#%d"' % (_PLACEHOLDER_BYTES, index)


def _decode_page_around(data: bytes, spans: list[tuple[int, SharedSubjects]], loads: Loads) -> Any | None:
    """The page with each span's held list at its item's `subjects`, or None when the spans are
    not exactly one item's `subjects` value each (then the page is decoded whole). Placeholders
    are numbered: the one decoded at an item's `subjects` names the span it replaced."""
    if _PLACEHOLDER_BYTES in data:
        return None
    pieces: list[bytes] = []
    end = 0
    for index, (start, held) in enumerate(spans):
        pieces += (data[end:start], _numbered(index))
        end = start + len(held.encoded)
    pieces.append(data[end:])
    patched = b"".join(pieces)
    try:
        found = loads(patched)
    except ValueError:
        return None
    items = found.get("items") if isinstance(found, dict) else None
    if not isinstance(items, list) or patched.count(_PLACEHOLDER_BYTES) != len(spans):
        return None
    left = {f"{_PLACEHOLDER}#{index}": held for index, (_, held) in enumerate(spans)}
    for item in items:
        value = item.get("subjects") if isinstance(item, dict) else None
        if isinstance(value, str) and value.startswith(_PLACEHOLDER):
            taken = left.pop(value, None)
            if taken is None:  # not one of ours, or one of ours twice
                return None
            item["subjects"] = taken
    return None if left else found
