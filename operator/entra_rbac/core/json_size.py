"""How many bytes of compact JSON a value takes, counted without encoding it where that is provable.

Holds `string_bound` and `mapping_bound` (upper bounds of `len(json.dumps(x, separators=(",",
":")))`, exact for the usual printable-ASCII text) and `compact_size` (that length exactly). The
byte limits on bindings (`core.shards`, `core.size`) are stated in the stdlib's encoding: compact
separators and `ensure_ascii`, so a non-ASCII character counts as its `\\uXXXX` escape.

Why bounds at all: the limits are about 1 MiB and a group-mode binding is about 600 bytes, yet
sizing encoded every binding of every reconcile with the stdlib's `json` (9% of a 20,000-binding
convergence, issue 17 point 2). A bound that is never below the real size answers "within the
limit" without encoding; only a bound over the limit sends the caller to the exact count, so every
decision is the one the exact count gives. Pure: nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

_COMPACT = (",", ":")
# With ensure_ascii, one character is escaped as at most a surrogate pair: `\\ud83d\\ude00`.
_MAX_ESCAPE = 12


def string_bound(text: str) -> int:
    """At least `len(json.dumps(text))`; exactly that for printable ASCII text.

    Printable ASCII (space to `~`) is written as is but `"` and `\\` (two bytes each); anything
    else takes at most 12 bytes a character (a control character's `\\u001f`: 6; a BMP
    character's `\\uXXXX`: 6; an astral one's surrogate pair: 12; DEL is escaped too)."""
    if text.isascii() and text.isprintable():
        return len(text) + 2 + text.count('"') + text.count("\\")
    return _MAX_ESCAPE * len(text) + 2


def mapping_bound(mapping: Mapping[str, Any]) -> int:
    """At least the compact JSON length of `mapping` (string keys; values strings, booleans,
    None or anything `json` encodes, counted exactly); exact when every string is printable
    ASCII."""
    size = 2 + max(len(mapping) - 1, 0)  # braces and commas
    for key, value in mapping.items():
        size += string_bound(key) + 1 + _value_bound(value)
    return size


def _value_bound(value: Any) -> int:
    if isinstance(value, str):
        return string_bound(value)
    if value is True or value is None:
        return 4
    if value is False:
        return 5
    return len(json.dumps(value, separators=_COMPACT))


def compact_size(value: Any) -> int:
    """Exactly `len(json.dumps(value, separators=(",", ":")))` (`ensure_ascii`) of a JSON value
    without floats (a manifest or patch the operator writes: strings, integers, booleans, null,
    lists and objects with string keys).

    orjson writes the same bytes as the stdlib for such a value when the result is ASCII without
    DEL (same separators, key order and escapes of `"`, `\\` and control characters): its length
    is the answer, counted in C. Anything else (non-ASCII text, which the stdlib escapes, DEL,
    a value orjson refuses) is counted by the stdlib itself. Floats are excluded because the two
    write some differently (`1e+16` against `1e16`)."""
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return len(json.dumps(value, separators=_COMPACT))
    if encoded.isascii() and b"\x7f" not in encoded:
        return len(encoded)
    return len(json.dumps(value, separators=_COMPACT))
