"""Vector and full-text search: KNN (top k), range (every match within a distance) and BM25 queries, best hit
first, as `Hit` dataclasses with the user's ids and comparable scores; one query, or many sent in one pipeline."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import redis

from vsearch.errors import UsageError
from vsearch.filters import guard_filter, text_query
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.stems import STEMS_FIELD, stem_query
from vsearch.store.connection import translate_errors
from vsearch.store.layouts import FINGERPRINT_FIELD, PASSAGES_FIELD, layout_of
from vsearch.store.keys import record_key
from vsearch.store.vectors import QueryVector, dimensions, query_blob

DISTANCE = "__vsearch_distance"
STORED_HIDDEN = {FINGERPRINT_FIELD, STEMS_FIELD, PASSAGES_FIELD}  # what vsearch keeps in a document for itself
HIDDEN = {DISTANCE, *STORED_HIDDEN}


@dataclass(frozen=True)
class Hit:
    rank: int
    id: str
    score: float
    fields: dict[str, Any]
    # The passage (or, in text mode, the part of the text) that matched best: vsearch.query.snippets fills it in.
    snippet: Any = None
    # Identical documents shown as this one (vsearch.query.collapse): their ids, best-ranked first.
    copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class VectorSearch:
    """Everything about a search but its vector: what `search` and `search_many` send for each vector."""

    field: VectorField
    k: int
    offset: int = 0  # skip this many of the best hits (paging)
    filter: str | None = None  # RediSearch pre-filter
    ef_runtime: int | None = None  # HNSW EF_RUNTIME (KNN only)
    radius: float | None = None  # a range query: every match within this RediSearch distance, at most k of them
    exclude_id: str | None = None  # a document left out of the hits (the one a --like query starts from)
    return_fields: tuple[str, ...] | None = None  # None: every field
    only_ids: tuple[str, ...] | None = None  # search these documents only (INKEYS): hybrid mode's score lookups

    @property
    def fetched(self) -> int:
        """How many hits to ask for: the page, everything before it, and the excluded document if it shows up."""
        return self.offset + self.k + (1 if self.exclude_id is not None else 0)


def search(
    client: redis.Redis,
    spec: IndexSpec,
    vector_field: VectorField,
    vector: QueryVector,
    k: int,
    filter_expression: str | None = None,
    ef_runtime: int | None = None,
    exclude_id: str | None = None,
    return_fields: list[str] | None = None,
    *,
    offset: int = 0,
    radius: float | None = None,
    only_ids: Sequence[str] | None = None,
) -> list[Hit]:
    """KNN top-k (or, with `radius`, a range query) over one vector field, after an optional pre-filter.

    The query goes to the alias NAME, so a rebuild that swaps generations mid-query is invisible.
    """
    request = VectorSearch(vector_field, k, offset, filter_expression, ef_runtime, radius, exclude_id,
                           tuple(return_fields) if return_fields is not None else None,
                           tuple(only_ids) if only_ids is not None else None)
    return search_many(client, spec, request, [vector])[0]


def search_many(client: redis.Redis, spec: IndexSpec, request: VectorSearch,
                vectors: Sequence[QueryVector]) -> list[list[Hit]]:
    """One search per vector, sent in one pipeline (one round trip); the hits of each, in order."""
    commands = [search_command(spec, request, vector) for vector in vectors]
    with translate_errors(f"query on index '{spec.name}' failed"):
        if len(commands) == 1:
            replies = [client.execute_command(*commands[0])]
        else:
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            replies = pipe.execute()
    return [_hits(client, spec, request, reply) for reply in replies]


def search_command(spec: IndexSpec, request: VectorSearch, vector: QueryVector) -> list[Any]:
    """The FT.SEARCH command for one vector."""
    field = request.field
    if (dim := dimensions(vector)) != field.dim:
        raise UsageError(f"the query vector has {dim if dim is not None else 'not one row of'} dimensions, but "
                         f"{field.name} in index '{spec.name}' has {field.dim}")
    params: list[Any] = ["BLOB", query_blob(vector, field.datatype)]
    if request.radius is not None:
        params += ["RADIUS", request.radius]
    else:
        params += ["K", request.fetched]
        if request.ef_runtime:
            params += ["EF", request.ef_runtime]
    returns: list[Any] = []
    if request.return_fields is not None:
        names = [*request.return_fields, DISTANCE]
        returns = return_clause(spec, names)
    # From the first hit even when paging: the excluded document may sit anywhere before the page.
    return ["FT.SEARCH", spec.name, query_string(request), "PARAMS", len(params), *params, *returns,
            *in_keys(spec, request.only_ids), "SORTBY", DISTANCE, "ASC", "LIMIT", 0, request.fetched, "DIALECT", 2]


def in_keys(spec: IndexSpec, ids: Sequence[str] | None) -> list[Any]:
    """INKEYS for a search of these documents only (a pre-filter, KNN included: their exact distances)."""
    return [] if ids is None else ["INKEYS", len(ids), *(spec.prefix + doc_id for doc_id in ids)]


def query_string(request: VectorSearch) -> str:
    """The FT.SEARCH query: the pre-filter (guarded against the server's stopword crash), then KNN or a range."""
    expression = request.filter
    prefilter = f"({guard_filter(expression)})" if expression and expression.strip() else None
    name = request.field.name
    if request.radius is not None:
        vector_range = f"@{name}:[VECTOR_RANGE $RADIUS $BLOB]=>{{$YIELD_DISTANCE_AS: {DISTANCE}}}"
        return f"{prefilter} {vector_range}" if prefilter else vector_range
    ef = " EF_RUNTIME $EF" if request.ef_runtime else ""
    return f"{prefilter or '*'}=>[KNN $K @{name} $BLOB{ef} AS {DISTANCE}]"


def _hits(client: redis.Redis, spec: IndexSpec, request: VectorSearch, reply: list[Any]) -> list[Hit]:
    prefix = _current_prefix(client, spec, reply[1::2])
    vector_names = {v.name for v in spec.vectors}
    ranked: list[tuple[str, float, dict[str, Any]]] = []
    for key, raw in zip(reply[1::2], reply[2::2]):
        doc_id = key.decode("utf-8", errors="replace")[len(prefix):]
        if doc_id == request.exclude_id:
            continue
        fields = _document_fields(spec, raw, vector_names)
        distance = float(fields.pop(DISTANCE))
        ranked.append((doc_id, round(score(request.field.metric, distance), 6), fields))
    page = ranked[request.offset:request.offset + request.k]
    return [Hit(request.offset + i + 1, doc_id, value, fields) for i, (doc_id, value, fields) in enumerate(page)]


# Okapi BM25 as the literature defines it (RediSearch's older BM25 is not normalised). VERBATIM: the query holds
# stems vsearch made (vsearch.stems), or, on an index without the stems field, the words as written: without it
# RediSearch also matches each word's stem and adds both scores, so a document holding the exact word counts it
# twice (SciFact test claims, nDCG@10: 0.652 with RediSearch's expansion, 0.662 verbatim, 0.6835 over vsearch's stems).
TEXT_RANKING = ("SCORER", "BM25STD", "VERBATIM")


@dataclass(frozen=True)
class TextSearch:
    """Everything about a full-text search: what `text_search` and `send` send."""

    text: str
    k: int
    filter: str | None = None  # RediSearch pre-filter
    return_fields: tuple[str, ...] | None = None  # None: every field; (): ids and scores only
    only_ids: tuple[str, ...] | None = None  # search these documents only (INKEYS): hybrid mode's score lookups


def text_search(
    client: redis.Redis,
    spec: IndexSpec,
    text: str,
    k: int,
    filter_expression: str | None = None,
    return_fields: list[str] | None = None,
    only_ids: Sequence[str] | None = None,
) -> list[Hit]:
    """Full-text top-k over the index's TEXT fields, any of the words, ranked by BM25; best hit first.

    Each hit's score is its BM25 score: higher is better, comparable only within one query. With `only_ids`,
    those documents only (the ones that hold none of the words are not among the hits).
    """
    request = TextSearch(text, k, filter_expression, tuple(return_fields) if return_fields is not None else None,
                         tuple(only_ids) if only_ids is not None else None)
    command = text_command(spec, request)
    with translate_errors(f"full-text query on index '{spec.name}' failed"):
        reply = client.execute_command(*command)
    return _text_hits(client, spec, request, reply)


def text_command(spec: IndexSpec, request: TextSearch) -> list[Any]:
    """The FT.SEARCH command of a full-text search."""
    query = full_text_query(spec, request.text, request.filter)
    return ["FT.SEARCH", spec.name, query, "WITHSCORES", *TEXT_RANKING, *_textreturn_clause(spec, request),
            *in_keys(spec, request.only_ids), "LIMIT", 0, request.k, "DIALECT", 2]


def _textreturn_clause(spec: IndexSpec, request: TextSearch) -> list[Any]:
    if request.return_fields == ():
        return ["NOCONTENT"]  # ids and scores only (RETURN 0 would do the same, with a different reply)
    return return_clause(spec, request.return_fields) if request.return_fields is not None else []


def _text_hits(client: redis.Redis, spec: IndexSpec, request: TextSearch, reply: list[Any]) -> list[Hit]:
    stride = 2 if request.return_fields == () else 3
    keys, scores = reply[1::stride], reply[2::stride]
    contents = reply[3::stride] if stride == 3 else [[] for _ in keys]
    prefix = _current_prefix(client, spec, keys)
    vector_names = {v.name for v in spec.vectors}
    return [Hit(rank, key.decode("utf-8", errors="replace")[len(prefix):], round(float(score), 6),
                _document_fields(spec, raw, vector_names))
            for rank, (key, score, raw) in enumerate(zip(keys, scores, contents), start=1)]


Search = Union[tuple[VectorSearch, QueryVector], TextSearch]  # a KNN (with its vector) or a full-text search


def send(client: redis.Redis, spec: IndexSpec, searches: Sequence[Search]) -> list[list[Hit]]:
    """Searches of either kind sent in one pipeline (one round trip); the hits of each, in order.

    Each is the command `search` or `text_search` sends, and its hits are theirs; an error is the first search's
    that failed, worded as those functions word it."""
    commands, whats = [], []
    for one in searches:
        if isinstance(one, TextSearch):
            commands.append(text_command(spec, one))
            whats.append(f"full-text query on index '{spec.name}' failed")
        else:
            commands.append(search_command(spec, *one))
            whats.append(f"query on index '{spec.name}' failed")
    if not commands:
        return []
    with translate_errors(whats[0]):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies = pipe.execute(raise_on_error=False)
    for what, reply in zip(whats, replies):
        if isinstance(reply, Exception):
            with translate_errors(what):
                raise reply
    return [_text_hits(client, spec, one, reply) if isinstance(one, TextSearch) else _hits(client, spec, one[0], reply)
            for one, reply in zip(searches, replies)]


def document_fields(client: redis.Redis, spec: IndexSpec, ids: Sequence[str],
                    return_fields: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The fields of these documents as a hit of `search` or `text_search` holds them (`return_fields`: those only;
    None: all), in one round trip; a document that is gone has none. Hybrid mode ranks ids and scores first, then
    fetches the fields of the few it shows."""
    if not ids:
        return {}
    returns = return_clause(spec, return_fields) if return_fields is not None else []
    with translate_errors(f"query on index '{spec.name}' failed"):
        reply = client.execute_command("FT.SEARCH", spec.name, "*", *returns, *in_keys(spec, ids), "LIMIT", 0, len(ids),
                                       "DIALECT", 2)
    keys, contents = reply[1::2], reply[2::2]
    prefix = _current_prefix(client, spec, keys)
    vector_names = {v.name for v in spec.vectors}
    return {key.decode("utf-8", errors="replace")[len(prefix):]: _document_fields(spec, raw, vector_names)
            for key, raw in zip(keys, contents)}


def full_text_query(spec: IndexSpec, text: str, filter_expression: str | None = None) -> str:
    """The FT.SEARCH query string of `text_search`: the words of `text` over every TEXT field, after the filter.

    The words go through `filters.text_query` (escaped, stopwords out), so no text can make the stopword union
    that crashes the server; the filter goes through `guard_filter`, as for KNN.
    """
    words = text_terms(spec, text)
    if words is None:
        raise UsageError("the query has no words to search for once stopwords (a, the, is, ...) are left out")
    if filter_expression and filter_expression.strip() and filter_expression.strip() != "*":
        return f"({guard_filter(filter_expression)}) {words}"
    return words


def text_terms(spec: IndexSpec, text: str) -> str | None:
    """The words part of a text-mode query: the stems of `text` on an index with the stems field, else its words
    over every TEXT field; escaped, stopwords out, None when nothing is left."""
    fields = text_fields(spec)
    return stem_query(text) if spec.stemmed_text else text_query(text, fields)


def _current_prefix(client: redis.Redis, spec: IndexSpec, keys: list[bytes]) -> str:
    """The prefix of the generation that answered: a rebuild may have swapped the alias since `spec` was read."""
    if all(key.startswith(spec.prefix.encode()) for key in keys):
        return spec.prefix
    recorded = client.get(record_key(spec.name))
    return str(json.loads(recorded)["index"]["prefix"]) if recorded else spec.prefix


def _document_fields(spec: IndexSpec, raw: list[bytes], vector_names: set[str]) -> dict[str, Any]:
    pairs = dict(zip((k.decode() for k in raw[::2]), raw[1::2]))
    return layout_of(spec).hit_fields(pairs, vector_names | HIDDEN, vector_names | STORED_HIDDEN, DISTANCE)


def return_clause(spec: IndexSpec, names: Sequence[str]) -> list[Any]:
    """RETURN of these fields, by their paths in the layout."""
    paths = [layout_of(spec).field_path(name) for name in names]
    return ["RETURN", sum(len(p) for p in paths), *[part for p in paths for part in p]]


def score(metric: Metric, distance: float) -> float:
    """RediSearch returns distances; report what a user compares. See `vsearch query --help`."""
    if metric is Metric.l2:
        return math.sqrt(max(distance, 0.0))  # Redis gives the squared Euclidean distance
    return 1.0 - distance  # COSINE: cosine similarity; IP: the inner product


def text_fields(spec: IndexSpec) -> list[str]:
    """The index's TEXT fields, which full-text search reads; a UsageError when it has none."""
    fields = spec.text_fields
    if not fields:
        raise UsageError(f"index '{spec.name}' has no TEXT field to search")  # query.plan words it for the CLI
    return fields
