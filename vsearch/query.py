"""`query`: turn a text, an image, a vector or a stored document into a query vector, then search."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from vsearch.config import Settings
from vsearch.errors import InputError, UsageError
from vsearch.models import encoder_for, open_image
from vsearch.schema import IndexSpec, VectorField
from vsearch.filters import compile_where
from vsearch.store import Hit, document_vector, search
from vsearch.store.search import full_text_query, knn_query, text_search
from vsearch.hybrid import Fusion, FusionParams, Mode, hybrid_search, resolve_mode

MAX_K = 10_000  # RediSearch answers at most this many KNN results (its default MAXSEARCHRESULTS caps LIMIT)


@dataclass(frozen=True)
class QueryRequest:
    text: str | None = None
    image: Path | None = None
    vector: str | None = None  # a JSON array
    like: str | None = None  # the id of a stored document
    field: str | None = None  # which vector field to search; by default the one that fits the input
    k: int = 10
    filter: str | None = None
    ef_runtime: int | None = None
    model: str | None = None  # overrides the model the index recorded
    return_fields: tuple[str, ...] | None = None  # document fields to fetch; None: all of them
    where: tuple[str, ...] = ()  # typed conditions (`year>=2012`), compiled with the escaping each field needs
    mode: Mode | None = None  # None: vsearch.hybrid.resolve_mode decides
    fusion: FusionParams = FusionParams()  # how hybrid mode fuses its two lists


def combined_filter(spec: IndexSpec, request: QueryRequest) -> str | None:
    """--where conditions and the raw --filter, ANDed."""
    parts = []
    if request.where:
        parts.append(compile_where(list(request.where), {f.name: f.type.value for f in spec.fields}))
    if request.filter and request.filter.strip():
        parts.append(f"({request.filter})" if request.where else request.filter)
    return " ".join(parts) or None


def explain(spec: IndexSpec, request: QueryRequest) -> str:
    """The FT.SEARCH command `run_query` would send, with the vector left out; nothing is sent."""
    mode = resolve_mode(spec, request.mode, request.text is not None)
    if mode is not Mode.vector:
        return _explain_text_mode(spec, request, mode)
    field = _target_field(spec, request)
    query = knn_query(field, combined_filter(spec, request), request.ef_runtime)
    wanted = request.k + (1 if request.like is not None else 0)
    ef = f" EF {request.ef_runtime}" if request.ef_runtime else ""
    return (f"FT.SEARCH {shlex.quote(spec.name)} {shlex.quote(query)} PARAMS "
            f"{6 if ef else 4} K {wanted} BLOB <{field.dim} x {field.datatype.value}>{ef} "
            f"SORTBY __vsearch_distance ASC LIMIT 0 {wanted} DIALECT 2")


def _explain_text_mode(spec: IndexSpec, request: QueryRequest, mode: Mode) -> str:
    """Hybrid mode sends two commands (KNN, then BM25) and fuses their answers: one line each, then the fusion."""
    where = combined_filter(spec, request)
    window = max(request.fusion.window, request.k) if mode is Mode.hybrid else request.k
    text = (f"FT.SEARCH {shlex.quote(spec.name)} {shlex.quote(full_text_query(spec, request.text or '', where))} "
            f"WITHSCORES SCORER BM25STD LIMIT 0 {window} DIALECT 2")
    if mode is Mode.text:
        return text
    knn = explain(spec, QueryRequest(text=request.text, field=request.field, k=window, filter=where,
                                     ef_runtime=request.ef_runtime, mode=Mode.vector))
    fusion = request.fusion
    how = f"alpha={fusion.alpha:g}" if fusion.fusion is Fusion.linear else f"k={fusion.rrf_k}"
    return f"{knn}\n{text}\nfused client-side: {fusion.fusion.value} {how}, top {request.k}"


def run_query(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest) -> list[Hit]:
    given = [x for x in (request.text, request.image, request.vector, request.like) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of: TEXT, --image, --vector, --like")
    if request.k < 1 or request.k > MAX_K:
        raise UsageError(f"-k must be between 1 and {MAX_K:,}, not {request.k:,} (RediSearch returns at most "
                         f"{MAX_K:,} results)")
    if request.text is not None and not request.text.strip():
        raise UsageError("the query text is empty: give words to search for, or --like ID / --vector / --image")
    if request.like is not None and not request.like:
        raise UsageError("--like needs a document id")
    mode = resolve_mode(spec, request.mode, request.text is not None)
    if mode is not Mode.vector:
        return _run_text_mode(client, spec, settings, request, mode)
    field = _target_field(spec, request)
    vector = _query_vector(client, spec, settings, request, field)
    fields = list(request.return_fields) if request.return_fields is not None else None
    hits = search(client, spec, field, vector, request.k, combined_filter(spec, request), request.ef_runtime, exclude_id=request.like,
                  return_fields=fields)
    if fields:
        _check_returned(spec, hits, fields)
    return hits


def _run_text_mode(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
                   mode: Mode) -> list[Hit]:
    """--mode text (BM25 over the TEXT fields) and --mode hybrid (KNN and BM25 fused); see vsearch.hybrid."""
    fields = list(request.return_fields) if request.return_fields is not None else None
    where, text = combined_filter(spec, request), request.text or ""
    if mode is Mode.text:
        hits = text_search(client, spec, text, request.k, where, fields)
    else:
        field = _target_field(spec, request)
        vector = _query_vector(client, spec, settings, request, field)
        hits = hybrid_search(client, spec, field, vector, text, request.k, where, request.fusion, request.ef_runtime,
                             fields)
    if fields:
        _check_returned(spec, hits, fields)
    return hits


def _check_returned(spec: IndexSpec, hits: list[Hit], fields: list[str]) -> None:
    """A --return field that no hit has is most likely a typo: say so rather than show an empty column."""
    if not hits:
        return
    present = {name for hit in hits for name in hit.fields}
    known = present | {f.name for f in spec.fields}
    if missing := [f for f in fields if f not in known]:
        raise UsageError(f"--return: no result has field {', '.join(repr(m) for m in missing)} "
                         f"(fields: {', '.join(sorted(known)) or 'none'})")


def _target_field(spec: IndexSpec, request: QueryRequest) -> VectorField:
    if request.field:
        return spec.vector_named(request.field)
    preferred = "image" if request.image is not None else "text"
    field = spec.vector(preferred) or (spec.vectors[0] if spec.vectors else None)
    if field is None:
        raise UsageError(f"index '{spec.name}' has no vector field")
    if request.image is not None and field.embeds != "image":
        raise UsageError(f"index '{spec.name}' has no image vector field to search with --image")
    return field


def _query_vector(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
                  field: VectorField) -> np.ndarray:
    if request.like is not None:
        return document_vector(client, spec, request.like, field)
    if request.vector is not None:
        return parse_vector(request.vector)
    encoder = encoder_for(field, request.model, settings)
    if request.image is not None:
        return encoder.encode_images([open_image(request.image)])[0]
    return encoder.encode_texts([request.text or ""])[0]


def parse_vector(text: str) -> np.ndarray:
    try:
        values = json.loads(text)
        vector = np.asarray(values, dtype=np.float32)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise InputError(f"--vector must be a JSON array of numbers ({exc})") from exc
    if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
        raise InputError("--vector must be a flat JSON array of finite numbers")
    return vector


RESULT_KEYS = ("rank", "id", "score", "query", "query_id")  # what vsearch adds to each row
FIELD_PREFIX = "fields."


def result_rows(hits: list[Hit], keep: list[str] | None = None, extra: dict[str, object] | None = None) -> list[dict[str, object]]:
    """Rows for output: vsearch's own keys, then the document's fields.

    One rule in every format: a document field whose name is one of vsearch's keys (a column called `id` or
    `score`), or starts with `fields.`, is shown as `fields.NAME`, so it can never replace the result's own.
    """
    rows = []
    for hit in hits:
        row: dict[str, object] = {**(extra or {}), "rank": hit.rank, "id": hit.id, "score": hit.score}
        for name, value in hit.fields.items():
            if keep is not None and name not in keep:
                continue
            row[field_column(name)] = value
        rows.append(row)
    return rows


def field_column(name: str) -> str:
    return f"{FIELD_PREFIX}{name}" if name in RESULT_KEYS or name.startswith(FIELD_PREFIX) else name
