"""`query`: turn texts, an image, a vector or a stored document into query vectors, then search.

Text queries go through the query-embedding cache (`query_cache`) before any model is loaded, and load the
fastest query encoder (an ONNX export, without torch) only for texts the cache does not hold.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING

import redis

from vsearch import query_cache
from vsearch.config import Settings
from vsearch.errors import InputError, ModelError, UsageError
from vsearch.filters import compile_where
from vsearch.models import encoder_for, model_name_for, open_image, open_images
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.records import is_unicode
from vsearch.store import Hit, document_vector
from vsearch.store.search import VectorSearch, range_radius, search_command, search_many
from vsearch.store.search import TEXT_RANKING, full_text_query, text_search, text_terms
from vsearch.store.vectors import QueryVector
from vsearch.hybrid import Fusion, FusionParams, Mode, hybrid_search, resolve_mode

if TYPE_CHECKING:
    import numpy as np

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
    cache_ttl: int = query_cache.DEFAULT_TTL

    mode: Mode | None = None  # None: hybrid for a text query on an index with TEXT fields, else vector
    fusion: FusionParams = FusionParams()  # how hybrid mode fuses its two lists


@dataclass(frozen=True)
class BatchQuery:
    text: str  # "" for an image query
    id: str | None = None  # the input's own id for the query, when it gives one
    image: Path | None = None  # a JSONL line's "image": search the image vectors by this picture
    line: int = 0

    @property
    def label(self) -> str:
        """What a result row names as its query: the text, or the image's path."""
        return self.text if self.image is None else str(self.image)


def combined_filter(spec: IndexSpec, request: QueryRequest) -> str | None:
    """--where conditions and the raw --filter, ANDed."""
    parts = []
    if request.where:
        parts.append(compile_where(list(request.where), {f.name: f.type.value for f in spec.fields},
                                   spec.tag_separator))
    if request.filter and request.filter.strip():
        parts.append(f"({request.filter})" if request.where else request.filter)
    return " ".join(parts) or None


def vector_search(spec: IndexSpec, request: QueryRequest, field: VectorField | None = None) -> VectorSearch:
    """What to send for each query vector; checks -k, --offset and the range options against the index."""
    field = field or _target_field(spec, request)
    ranged = request.min_score is not None or request.max_distance is not None
    radius = range_radius(field.metric, request.min_score, request.max_distance) if ranged else None
    if ranged and request.ef_runtime:
        raise UsageError("--ef-runtime tunes KNN queries; a range query (--min-score/--max-distance) takes none")
    if request.offset < 0:
        raise UsageError(f"--offset must be 0 or more, not {request.offset}")
    k = request.k if request.k is not None else (MAX_K - request.offset if ranged else DEFAULT_K)
    if k < 1 or k > MAX_K:
        raise UsageError(f"-k must be between 1 and {MAX_K:,}, not {k:,} (RediSearch returns at most {MAX_K:,} "
                         "results)")
    if request.offset + k > MAX_K:
        raise UsageError(f"-k plus --offset must be at most {MAX_K:,}, not {request.offset + k:,} (RediSearch "
                         f"returns at most {MAX_K:,} results)")
    fields = tuple(request.return_fields) if request.return_fields is not None else None
    return VectorSearch(field, k, request.offset, combined_filter(spec, request), request.ef_runtime, radius,
                        request.like, fields)


def explain(spec: IndexSpec, request: QueryRequest) -> str:
    """The FT.SEARCH command(s) `run_query` would send, with the vector shown as a placeholder; nothing is sent."""
    mode = resolve_mode(spec, request.mode, request.text is not None, _vector_options(request))
    if mode is not Mode.vector:
        return _explain_text_mode(spec, request, mode)
    plan = vector_search(spec, request)
    command = search_command(spec, plan, bytes(4 * plan.field.dim))  # a zero vector, never sent
    blob = f"<{plan.field.dim} x {plan.field.datatype.value}>"
    return " ".join(blob if isinstance(part, bytes) else shlex.quote(str(part)) for part in command)


def _explain_text_mode(spec: IndexSpec, request: QueryRequest, mode: Mode) -> str:
    """Hybrid mode sends two commands (KNN, then BM25) and fuses their answers: one line each, then the fusion."""
    where = combined_filter(spec, request)
    k = (request.k if request.k is not None else DEFAULT_K) + request.offset  # a page is cut from the top k
    window = max(request.fusion.window, k) if mode is Mode.hybrid else k
    text = (f"FT.SEARCH {shlex.quote(spec.name)} {shlex.quote(full_text_query(spec, request.text or '', where))} "
            f"WITHSCORES {' '.join(TEXT_RANKING)} LIMIT 0 {window} DIALECT 2")
    if mode is Mode.text:
        return text
    knn = explain(spec, QueryRequest(text=request.text, field=request.field, k=window, filter=where,
                                     ef_runtime=request.ef_runtime, mode=Mode.vector))
    fusion = request.fusion
    if fusion.fusion is Fusion.linear:
        how = (f"alpha={fusion.alpha:g}, top {k}, after each side scores the other's candidates (the same "
               "commands with INKEYS)")
    else:
        how = f"k={fusion.rrf_k}, top {k}"
    return f"{knn}\n{text}\nfused client-side: {fusion.fusion.value} {how}"


def run_query(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest) -> list[Hit]:
    given = [x for x in (request.text, request.image, request.vector, request.like) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of: TEXT, --image, --vector, --like, --batch")
    if request.text is not None and not request.text.strip():
        raise UsageError("the query text is empty: give words to search for, or --like ID / --vector / --image")
    if request.like is not None and not request.like:
        raise UsageError("--like needs a document id")
    mode = resolve_mode(spec, request.mode, request.text is not None, _vector_options(request))
    if mode is not Mode.vector:
        return _run_text_mode(client, spec, settings, request, mode)
    plan = vector_search(spec, request)
    vector = _query_vector(client, spec, settings, request, plan.field)
    hits = search_many(client, spec, plan, [vector])[0]
    if plan.return_fields:
        _check_returned(spec, hits, list(plan.return_fields))
    return hits


def run_batch(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
              queries: Iterable[BatchQuery]) -> Iterator[tuple[BatchQuery, list[Hit]]]:
    """Each query's hits, in input order: texts embedded BATCH at a time, their searches sent in one pipeline."""
    if any(x is not None for x in (request.text, request.image, request.vector, request.like)):
        raise UsageError("--batch reads the queries from its file: give no TEXT, --image, --vector or --like")
    mode = resolve_mode(spec, request.mode, True, _vector_options(request))
    plan = vector_search(spec, request) if mode is Mode.vector else None  # its checks come before any embedding
    field = plan.field if plan else _target_field(spec, request)
    items = iter(queries)
    while chunk := list(islice(items, BATCH)):
        found = dict(_image_batch(client, spec, settings, request, [q for q in chunk if q.image is not None]))
        texts = [q for q in chunk if q.image is None]
        if mode is Mode.text:  # one query at a time
            found.update((id(q), _text_mode_query(client, spec, settings, request, q)) for q in texts)
        elif texts:
            vectors = embed_texts(client, field, settings, request, [q.text for q in texts])
            if plan is None:  # hybrid: embedded BATCH at a time as in vector mode, then each fused on its own
                found.update((id(q), _run_text_mode(client, spec, settings, replace(request, text=q.text), mode, v))
                             for q, v in zip(texts, vectors))
            else:
                found.update(zip(map(id, texts), search_many(client, spec, plan, vectors)))
        yield from ((q, found[id(q)]) for q in chunk)


def _text_mode_query(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
                     query: BatchQuery) -> list[Hit]:
    if text_terms(spec, query.text) is None:  # only stopwords: no words to match, so no results
        return []
    return run_query(client, spec, settings, replace(request, text=query.text))


def _image_batch(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
                 queries: list[BatchQuery]) -> Iterator[tuple[int, list[Hit]]]:
    """The image lines of a batch chunk: decoded together, embedded by one model load for the whole batch
    (a process per `--image` query loaded torch each time: 61 queries took 141 s), searched in one pipeline."""
    if not queries:
        return
    image_request = replace(request, image=queries[0].image, mode=Mode.vector)
    plan = vector_search(spec, replace(image_request, field=_target_field(spec, image_request).name))
    decoded = open_images([q.image for q in queries if q.image is not None])
    for query, image in zip(queries, decoded):
        if isinstance(image, InputError):
            raise InputError(f"--batch line {query.line}: {image}")
    encoder = encoder_for(plan.field, request.model, settings)
    vectors = encoder.encode_images(decoded)  # type: ignore[arg-type]
    yield from zip(map(id, queries), search_many(client, spec, plan, list(vectors)))


def _vector_options(request: QueryRequest) -> bool:
    """Whether the query asks for what only vector mode does: a range by score or distance."""
    return request.min_score is not None or request.max_distance is not None


def embed_texts(client: redis.Redis, field: VectorField, settings: Settings, request: QueryRequest,
                texts: Sequence[str]) -> list[QueryVector]:
    """Query vectors for texts: from the cache where it has them; the model (loaded only then) for the rest."""
    fingerprint = _fingerprint(model_name_for(field, request.model, settings)) if request.cache else None
    found: list[QueryVector | None] = (query_cache.get_many(client, fingerprint, texts, field.dim) if fingerprint
                                       else [None] * len(texts))
    missing = [i for i, vector in enumerate(found) if vector is None]
    if missing:
        encoder = encoder_for(field, request.model, settings, query=True)
        made = encoder.encode_texts([texts[i] for i in missing])
        for i, vector in zip(missing, made):
            found[i] = vector
        if fingerprint:
            query_cache.put_many(client, fingerprint, [texts[i] for i in missing], list(made), request.cache_ttl)
    return [v for v in found if v is not None]


def _fingerprint(model: str) -> str | None:
    """The model's fingerprint for cache keys; None (no caching) for a model that is not a local directory."""
    from vsearch.onnx_text import model_fingerprint

    try:
        return model_fingerprint(model)
    except (ModelError, OSError):
        return None


def _run_text_mode(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest,
                   mode: Mode, vector: QueryVector | None = None) -> list[Hit]:
    """--mode text (BM25 over the TEXT fields) and --mode hybrid (KNN and BM25 fused); see vsearch.hybrid."""
    if _vector_options(request):
        raise UsageError("--min-score and --max-distance go with --mode vector")
    k = request.k if request.k is not None else DEFAULT_K
    if k < 1 or k > MAX_K:
        raise UsageError(f"-k must be between 1 and {MAX_K:,}, not {k:,} (RediSearch returns at most {MAX_K:,} results)")
    if request.offset < 0 or request.offset + k > MAX_K:
        raise UsageError(f"-k plus --offset must be at most {MAX_K:,}, and --offset 0 or more")
    fields = list(request.return_fields) if request.return_fields is not None else None
    where, text = combined_filter(spec, request), request.text or ""
    # A page is the same ranking cut further down: the top offset + k, less the first offset.
    top = request.offset + k
    if mode is Mode.text:
        hits = text_search(client, spec, text, top, where, fields)
    else:
        field = _target_field(spec, request)
        if vector is None:
            vector = _query_vector(client, spec, settings, request, field)
        hits = hybrid_search(client, spec, field, vector, text, top, where, request.fusion, request.ef_runtime, fields)
    hits = hits[request.offset:]
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
                  field: VectorField) -> QueryVector:
    if request.like is not None:
        found = document_vector(client, spec, request.like, field)
        if field.metric is Metric.cosine and _all_zero(found):  # stored by another tool, or before load refused it
            raise UsageError(f"document '{request.like}' has an all-zero {field.name}: it has no direction, so "
                             "its cosine similarity to anything is undefined")
        return found
    if request.vector is not None:
        vector = parse_vector(request.vector)
        if field.metric is Metric.cosine and not vector.any():
            raise UsageError("--vector is all zeros: a zero vector has no direction, so its cosine similarity to "
                             "anything is undefined")
        return vector
    if request.image is not None:
        return encoder_for(field, request.model, settings).encode_images([open_image(request.image)])[0]
    return embed_texts(client, field, settings, request, [request.text or ""])[0]


def parse_vector(text: str) -> np.ndarray:
    """A JSON array of numbers, or a JSON object with one under "vector" (a line of `vsearch encode`)."""
    import numpy as np

    try:
        values = json.loads(text)
        if isinstance(values, dict) and "vector" in values:
            values = values["vector"]
        vector = np.asarray(values, dtype=np.float32)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise InputError(f"--vector must be a JSON array of numbers ({' '.join(str(exc).split())[:200]})") from exc
    if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
        raise InputError("--vector must be a flat JSON array of finite numbers")
    return vector


def read_vector(stream: IO[str]) -> str:
    """The query vector's JSON from stdin: a JSON array (over any number of lines), or the first line of
    `vsearch encode`'s JSONL output. Only that first line is read from a JSONL stream."""
    first = stream.readline()
    try:
        json.loads(first)
        return first
    except ValueError:
        return first + stream.read()  # an array spread over several lines; parse_vector reports anything else


def open_batch(path: str) -> Iterator[BatchQuery]:
    """The queries of a batch file (`-`: stdin), read lazily; an unreadable file is one InputError."""
    import sys

    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"--batch: cannot read {path}: {exc.strerror or exc}") from exc

    def lines() -> Iterator[str]:
        # Decoded a line at a time: a text stream decodes ahead in chunks, so its error named a later line.
        try:
            for number, raw in enumerate(stream, 1):
                try:
                    yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"--batch: {path} line {number} is not UTF-8 text") from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    return read_batch(lines(), Path.cwd() if path == "-" else Path(path).parent)


def read_batch(lines: Iterable[str], root: Path = Path(".")) -> Iterator[BatchQuery]:
    """Queries from a batch file: one text a line, or JSONL objects with "text" (or "image": a path, relative to
    `root`, the batch file's folder) and an optional "id".

    The first non-blank line decides: a JSON object makes the whole file JSONL. Blank lines are skipped.
    """
    jsonl: bool | None = None
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if jsonl is None:
            jsonl = line.lstrip().startswith("{")
        if not jsonl:
            yield BatchQuery(line, line=number)
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InputError(f"--batch line {number}: not a JSON object ({exc})") from exc
        image = item.get("image") if isinstance(item, dict) else None
        query_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(image, str) and image:
            if not is_unicode(image):
                raise InputError(f"--batch line {number}: \"image\" is not valid Unicode (a lone surrogate such as "
                                 "\\ud800)")
            yield BatchQuery("", None if query_id is None else str(query_id), root / image, number)
            continue
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"--batch line {number}: needs a non-empty string \"text\" (or \"image\": a path)")
        if not is_unicode(text):
            raise InputError(f"--batch line {number}: \"text\" is not valid Unicode (a lone surrogate such as \\ud800)")
        yield BatchQuery(text, None if query_id is None else str(query_id), line=number)


RESULT_KEYS = ("rank", "id", "score", "query", "query_id")  # what vsearch adds to each row
FIELD_PREFIX = "fields."


def result_rows(hits: list[Hit], keep: list[str] | None = None, extra: dict[str, object] | None = None) -> list[dict[str, object]]:
    """Rows for output: vsearch's own keys, then the document's fields.

    One rule in every format: a document field whose name is one of vsearch's keys (a column called `id` or
    `score`), or starts with `fields.`, is shown as `fields.NAME`, so it can never replace the result's own;
    one that only repeats the result's value (the usual `id` column) is left out.
    """
    rows = []
    for hit in hits:
        row: dict[str, object] = {**(extra or {}), "rank": hit.rank, "id": hit.id, "score": hit.score}
        for name, value in hit.fields.items():
            if keep is not None and name not in keep:
                continue
            if name in row and str(row[name]) == str(value):
                continue  # the input's own id column, which the result's id already shows
            row[field_column(name)] = value
        rows.append(row)
    return rows


def field_column(name: str) -> str:
    return f"{FIELD_PREFIX}{name}" if name in RESULT_KEYS or name.startswith(FIELD_PREFIX) else name


def batch_rows(results: Iterable[tuple[BatchQuery, list[Hit]]], keep: list[str] | None,
               streaming: bool) -> Iterator[list[dict[str, object]]]:
    """Result rows tagged with their query (and query_id): one list per query when streaming (JSONL), else all
    of them in one list (a table, JSON or CSV is written whole)."""
    rows: list[dict[str, object]] = []
    for query, hits in results:
        tag: dict[str, object] = {"query": query.label, **({"query_id": query.id} if query.id is not None else {})}
        rows += result_rows(hits, keep, tag)
        if streaming:
            yield rows
            rows = []
    if not streaming:
        yield rows


def _all_zero(vector: QueryVector) -> bool:
    """Whether every element is 0 (or -0): float32 bytes as stored, or an array, without importing numpy."""
    if isinstance(vector, bytes):
        from array import array

        return not any(array("f", vector))
    return not vector.any()
