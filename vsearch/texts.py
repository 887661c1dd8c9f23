"""The one text a model embeds from a document's text fields, and where a span of it lies in those fields.

No numpy, no Redis: a query's snippets use it without loading either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def join_texts(values: Iterable[Any]) -> str:
    """Field values as the one text a model embeds: each stripped, the empty ones left out, joined by a space.
    Passage offsets point into this text, so a stored document's passages are found again from its fields."""
    return " ".join(text for text in (str(v).strip() for v in values if v is not None) if text)


def locate(values: Sequence[Any], start: int, end: int) -> tuple[int | None, int, int]:
    """Where [start, end) of `join_texts(values)` lies in the values themselves: (which value, start, end) in that
    value's own text, or (None, start, end) for a span across values (offsets then stay in the joined text)."""
    position = 0
    for index, value in enumerate(values):
        raw = "" if value is None else str(value)
        text = raw.strip()
        if not text:
            continue
        lead = len(raw) - len(raw.lstrip())
        if position <= start and end <= position + len(text):
            return index, start - position + lead, end - position + lead
        position += len(text) + 1
    return None, start, end
