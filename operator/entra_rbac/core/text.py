"""Wording shared by every message the operator writes: plurals and byte-bounded text.

Holds `plural` (`1 binding`, `2 bindings`) and `bounded` (cut to a byte limit without splitting
a character). Pure; it imports nothing of ours.
"""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 binding`, `2 bindings`, `0 bindings` (`nouns` for an irregular plural)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` bytes of UTF-8 (never inside a character), ending in `...` when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."
