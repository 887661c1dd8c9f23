"""What a query asks for: the use case's input, decided by the CLI (or any caller) before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vsearch.query.hybrid import FusionParams, Mode
from vsearch.store.query_cache import DEFAULT_TTL

MAX_K = 10_000  # RediSearch answers at most this many results (its default MAXSEARCHRESULTS caps LIMIT)
DEFAULT_K = 10
BATCH = 64  # batch queries embedded, and searched in one pipeline, this many at a time


@dataclass(frozen=True)
class QueryRequest:
    text: str | None = None
    image: Path | None = None
    vector: str | None = None  # a JSON array
    like: str | None = None  # the id of a stored document
    field: str | None = None  # which vector field to search; by default the one that fits the input
    k: int | None = None  # None: 10 for KNN, every match (up to MAX_K) for a range query
    offset: int = 0  # paging: skip this many of the best hits
    filter: str | None = None
    ef_runtime: int | None = None
    model: str | None = None  # overrides the model the index recorded
    return_fields: tuple[str, ...] | None = None  # document fields to fetch; None: all of them
    where: tuple[str, ...] = ()  # typed conditions (`year>=2012`), compiled with the escaping each field needs
    min_score: float | None = None  # a range query on a COSINE or IP index: every hit scoring at least this
    max_distance: float | None = None  # a range query on an L2 index: every hit at most this far
    cache: bool = True  # look text queries up in, and add them to, the query-embedding cache
    cache_ttl: int = DEFAULT_TTL
    collapse: bool = True  # identical documents as one hit with `copies` (vsearch.query.collapse)

    mode: Mode | None = None  # None: hybrid for a text query on an index with TEXT fields, else vector
    fusion: FusionParams = FusionParams()  # how hybrid mode fuses its two lists


def vector_options(request: QueryRequest) -> bool:
    """Whether the query asks for what only vector mode does: a range by score or distance."""
    return request.min_score is not None or request.max_distance is not None
