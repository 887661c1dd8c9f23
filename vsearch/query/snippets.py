"""Why each result matched: the passage that scored best against the query vector (an index with passages), or in
text mode the part of the text around the query's words; its text and [start, end) offsets in its field.

RediSearch ranks a passage-indexed document by its closest passage but does not say which one, so the hits'
passages are read back (one round trip) and scored here against the query vector: a few thousand dot products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vsearch import store
from vsearch.fields import join_texts, locate
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.snippets import make_snippet
from vsearch.store import Hit

if TYPE_CHECKING:
    from vsearch.store.vectors import QueryVector


@dataclass(frozen=True)
class Match:
    text: str  # the passage (or the part of the text) that matched
    start: int  # [start, end) in `field`'s value, or in the embedded text when the passage spans fields
    end: int
    field: str | None  # the document field the offsets point into
    query: str  # the query's words, for a table's highlighted excerpt
    whole: bool = False  # the match is the whole text (a short document): a table has nothing to add


def with_passages(client: store.Client, spec: IndexSpec, field: VectorField, hits: list[Hit],
                  vector: QueryVector | None, text: str = "") -> list[Hit]:
    """`hits` with their best passage, where `field` is split into passages and a query vector is known."""
    if field.passages is None or vector is None or not hits:
        return hits
    import numpy as np

    query = np.frombuffer(vector, dtype="<f4") if isinstance(vector, bytes) else np.asarray(vector, dtype=np.float32)
    found = store.read_passages(client, spec, [hit.id for hit in hits], field)
    out = []
    for hit, passages in zip(hits, found):
        if passages is None or passages.vectors.shape[1] != query.shape[0]:
            out.append(hit)
            continue
        best = int(_best(passages.vectors, query, field.metric))
        start, end = passages.spans[best]
        out.append(replace(hit, snippet=_match(passages.texts, passages.fields, start, end, text)))
    return out


def with_text_matches(spec: IndexSpec, hits: list[Hit], text: str) -> list[Hit]:
    """Text mode: each hit's TEXT fields around the query's words (the part a person reads to see why it matched)."""
    names = spec.text_fields
    out = []
    for hit in hits:
        values = [hit.fields.get(name) for name in names]
        joined = join_texts(values)
        if not joined:
            out.append(hit)
            continue
        part = make_snippet(joined, text, width=400)
        out.append(replace(hit, snippet=_match(values, names, part.start, part.end, text)))
    return out


def _best(vectors: Any, query: Any, metric: Metric) -> int:
    import numpy as np

    if metric is Metric.l2:
        return int(np.argmin(((vectors - query) ** 2).sum(axis=1)))
    scores = vectors @ query
    if metric is Metric.cosine:
        scores = scores / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
    return int(np.argmax(scores))


def _match(values: Sequence[Any], names: Sequence[str], start: int, end: int, query: str) -> Match:
    joined = join_texts(values)
    index, field_start, field_end = locate(values, start, end)
    return Match(joined[start:end], field_start, field_end, names[index] if index is not None else None, query,
                 whole=start == 0 and end >= len(joined))
