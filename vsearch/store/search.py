"""KNN and full-text search: one query, best hit first, as `Hit` dataclasses with the user's ids and comparable scores."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from vsearch.errors import UsageError
from vsearch.filters import guard_filter, text_query
from vsearch.schema import FieldType, IndexSpec, Metric, Storage, VectorField
from vsearch.store.connection import translate_errors
from vsearch.store.documents import FINGERPRINT_FIELD
from vsearch.store.keys import record_key
from vsearch.store.vectors import vector_bytes

DISTANCE = "__vsearch_distance"
HIDDEN = {DISTANCE, FINGERPRINT_FIELD}

@dataclass(frozen=True)
class Hit:
    rank: int
    id: str
    score: float
    fields: dict[str, Any]


def search(
    client: redis.Redis,
    spec: IndexSpec,
    vector_field: VectorField,
    vector: np.ndarray,
    k: int,
    filter_expression: str | None = None,
    ef_runtime: int | None = None,
    exclude_id: str | None = None,
    return_fields: list[str] | None = None,
) -> list[Hit]:
    """KNN top-k over one vector field, after an optional RediSearch pre-filter; best hit first.

    The query goes to the alias NAME, so a rebuild that swaps generations mid-query is invisible.
    """
    if vector.shape != (vector_field.dim,):
        raise UsageError(f"the query vector has {vector.size} dimensions, but {vector_field.name} in index "
                         f"'{spec.name}' has {vector_field.dim}")
    wanted = k + (1 if exclude_id is not None else 0)
    query = knn_query(vector_field, filter_expression, ef_runtime)
    params: list[Any] = ["K", wanted, "BLOB", vector_bytes(vector, vector_field.datatype)]
    if ef_runtime:
        params += ["EF", ef_runtime]
    returns: list[Any] = []
    if return_fields is not None:
        paths = [(f"$.{f}", "AS", f) if spec.storage is Storage.json else (f,) for f in [*return_fields, DISTANCE]]
        returns = ["RETURN", sum(len(p) for p in paths), *[part for p in paths for part in p]]
    with translate_errors(f"query on index '{spec.name}' failed"):
        reply = client.execute_command(
            "FT.SEARCH", spec.name, query, "PARAMS", len(params), *params, *returns,
            "SORTBY", DISTANCE, "ASC", "LIMIT", 0, wanted, "DIALECT", 2,
        )
    prefix = _current_prefix(client, spec, reply[1::2])
    hits: list[Hit] = []
    vector_names = {v.name for v in spec.vectors}
    for key, raw in zip(reply[1::2], reply[2::2]):
        doc_id = key.decode("utf-8", errors="replace")[len(prefix):]
        if doc_id == exclude_id:
            continue
        fields = _document_fields(spec, raw, vector_names)
        distance = float(fields.pop(DISTANCE))
        hits.append(Hit(len(hits) + 1, doc_id, round(_score(vector_field.metric, distance), 6), fields))
    return hits[:k]


def knn_query(vector_field: VectorField, filter_expression: str | None, ef_runtime: int | None) -> str:
    """The FT.SEARCH query string: the pre-filter (guarded against the server's stopword crash), then KNN."""
    prefilter = f"({guard_filter(filter_expression)})" if filter_expression and filter_expression.strip() else "*"
    ef = " EF_RUNTIME $EF" if ef_runtime else ""
    return f"{prefilter}=>[KNN $K @{vector_field.name} $BLOB{ef} AS {DISTANCE}]"


TEXT_SCORER = "BM25STD"  # Okapi BM25 as the literature defines it (RediSearch's older BM25 is not normalised)


def text_search(
    client: redis.Redis,
    spec: IndexSpec,
    text: str,
    k: int,
    filter_expression: str | None = None,
    return_fields: list[str] | None = None,
) -> list[Hit]:
    """Full-text top-k over the index's TEXT fields, any of the words, ranked by BM25; best hit first.

    Each hit's score is its BM25 score: higher is better, comparable only within one query.
    """
    query = full_text_query(spec, text, filter_expression)
    returns: list[Any] = []
    if return_fields == []:
        returns = ["NOCONTENT"]  # ids and scores only (RETURN 0 would do the same, with a different reply)
    elif return_fields is not None:
        paths = [(f"$.{f}", "AS", f) if spec.storage is Storage.json else (f,) for f in return_fields]
        returns = ["RETURN", sum(len(p) for p in paths), *[part for p in paths for part in p]]
    with translate_errors(f"full-text query on index '{spec.name}' failed"):
        reply = client.execute_command(
            "FT.SEARCH", spec.name, query, "WITHSCORES", "SCORER", TEXT_SCORER, *returns,
            "LIMIT", 0, k, "DIALECT", 2,
        )
    stride = 2 if returns == ["NOCONTENT"] else 3
    keys, scores = reply[1::stride], reply[2::stride]
    contents = reply[3::stride] if stride == 3 else [[] for _ in keys]
    prefix = _current_prefix(client, spec, keys)
    vector_names = {v.name for v in spec.vectors}
    return [Hit(rank, key.decode("utf-8", errors="replace")[len(prefix):], round(float(score), 6),
                _document_fields(spec, raw, vector_names))
            for rank, (key, score, raw) in enumerate(zip(keys, scores, contents), start=1)]


def full_text_query(spec: IndexSpec, text: str, filter_expression: str | None = None) -> str:
    """The FT.SEARCH query string of `text_search`: the words of `text` over every TEXT field, after the filter.

    The words go through `filters.text_query` (escaped, stopwords out), so no text can make the stopword union
    that crashes the server; the filter goes through `guard_filter`, as for KNN.
    """
    words = text_query(text, text_fields(spec))
    if words is None:
        raise UsageError("the query has no words to search for once stopwords (a, the, is, ...) are left out")
    if filter_expression and filter_expression.strip() and filter_expression.strip() != "*":
        return f"({guard_filter(filter_expression)}) {words}"
    return words


def _current_prefix(client: redis.Redis, spec: IndexSpec, keys: list[bytes]) -> str:
    """The prefix of the generation that answered: a rebuild may have swapped the alias since `spec` was read."""
    if all(key.startswith(spec.prefix.encode()) for key in keys):
        return spec.prefix
    recorded = client.get(record_key(spec.name))
    return str(json.loads(recorded)["index"]["prefix"]) if recorded else spec.prefix


def _document_fields(spec: IndexSpec, raw: list[bytes], vector_names: set[str]) -> dict[str, Any]:
    pairs = dict(zip((k.decode() for k in raw[::2]), raw[1::2]))
    fields: dict[str, Any] = {}
    hidden = vector_names | HIDDEN
    if spec.storage is Storage.json and "$" in pairs:
        fields = {k: v for k, v in json.loads(pairs.pop("$")).items() if k not in hidden}
    for name, value in pairs.items():
        if name in vector_names or name == FINGERPRINT_FIELD:
            continue
        text = value.decode("utf-8", errors="replace")
        if spec.storage is Storage.json and name != DISTANCE:
            try:
                fields[name] = json.loads(text)  # RETURN of a JSON path gives the JSON value
                continue
            except ValueError:
                pass
        fields[name] = text
    return fields


def _score(metric: Metric, distance: float) -> float:
    """RediSearch returns distances; report what a user compares. See `vsearch query --help`."""
    if metric is Metric.l2:
        return math.sqrt(max(distance, 0.0))  # Redis gives the squared Euclidean distance
    return 1.0 - distance  # COSINE: cosine similarity; IP: the inner product


def text_fields(spec: IndexSpec) -> list[str]:
    """The index's TEXT fields, which full-text search reads; a UsageError when it has none."""
    fields = [f.name for f in spec.fields if f.type is FieldType.text]
    if not fields:
        raise UsageError(f"index '{spec.name}' has no TEXT field to search: recreate it with --text FIELD "
                         "(e.g. `vsearch create-index NAME --text title --replace`), or use --mode vector")
    return fields
