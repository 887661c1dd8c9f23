"""Why each result matched: the passage that scored best against the query vector (an index with passages), or in
text mode the part of the text around the query's words; its text and [start, end) offsets in its field.

RediSearch ranks a passage-indexed document by its closest passage but does not say which one, so the hits'
passages are read back (one round trip) and scored here against the query vector: a few thousand dot products.
Reading a long document's passages is most of that cost (~0.5 MB of JSON for 40 passages), so only the first
SNIPPET_HITS results of a list get theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vsearch import store
from vsearch.texts import join_texts, locate
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.snippets import make_snippet
from vsearch.store import Hit

if TYPE_CHECKING:
    from vsearch.store.vectors import QueryVector

SNIPPET_HITS = 20


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
    query = _floats(vector)
    found = store.read_passages(client, spec, [hit.id for hit in hits[:SNIPPET_HITS]], field)
    out = []
    for hit, passages in zip(hits, found + [None] * (len(hits) - len(found))):
        if passages is None or any(len(row) != len(query) for row in passages.vectors):
            out.append(hit)
            continue
        start, end = passages.spans[_best(passages.vectors, query, field.metric)]
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


def _floats(vector: QueryVector) -> list[float]:
    if isinstance(vector, bytes):
        from array import array

        return array("f", vector).tolist()
    return [float(x) for x in vector]


def _best(rows: Sequence[Sequence[float]], query: Sequence[float], metric: Metric) -> int:
    """Which passage is closest to the query, by the index's metric. Plain Python: a few thousand products, and a
    cached query never imports numpy for them."""
    from math import fsum, sqrt
    from operator import mul

    if metric is Metric.l2:
        distances = [fsum((a - b) * (a - b) for a, b in zip(row, query)) for row in rows]
        return distances.index(min(distances))
    scores = [fsum(map(mul, row, query)) for row in rows]
    if metric is Metric.cosine:
        scores = [score / max(sqrt(fsum(map(mul, row, row))), 1e-12) for score, row in zip(scores, rows)]
    return scores.index(max(scores))


def _match(values: Sequence[Any], names: Sequence[str], start: int, end: int, query: str) -> Match:
    joined = join_texts(values)
    index, field_start, field_end = locate(values, start, end)
    return Match(joined[start:end], field_start, field_end, names[index] if index is not None else None, query,
                 whole=start == 0 and end >= len(joined))
