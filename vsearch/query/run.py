"""`query`: one query or a batch, in vector, text or hybrid mode, planned (`plan`), embedded (`vectors`), sent
(`store.search`, `hybrid`), and shaped into rows (`rows`).

Text queries go through the query-embedding cache before any model is loaded, and load the fastest query encoder
(an ONNX export, without torch) only for texts the cache does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING

from vsearch import store
from vsearch.config import Settings
from vsearch.errors import InputError, UsageError
from vsearch.models import Purpose, encoder_for, open_images
from vsearch.query.collapse import Fetch, collapsed_page, first_ask
from vsearch.query.hybrid import Mode, hybrid_search, resolve_mode, with_fields
from vsearch.query.plan import check_text_fields, combined_filter, target_field, vector_search
from vsearch.query.request import DEFAULT_K, MAX_K, QueryRequest, vector_options
from vsearch.query.snippets import with_passages, with_text_matches
from vsearch.query.vectors import embed_texts, query_vector
from vsearch.schema import IndexSpec
from vsearch.store import Hit
from vsearch.store.search import VectorSearch, search_many, text_search, text_terms
from vsearch.store.vectors import QueryVector

if TYPE_CHECKING:  # a one-query command never reads a batch file
    from vsearch.query.batch_file import BatchQuery

BATCH = 64  # batch queries embedded, and searched in one pipeline, this many at a time


def run_query(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest) -> list[Hit]:
    given = [x for x in (request.text, request.image, request.vector, request.like) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of: TEXT, --image, --vector, --like, --batch")
    if request.text is not None and not request.text.strip():
        raise UsageError("the query text is empty: give words to search for, or --like ID / --vector / --image")
    if request.like is not None and not request.like:
        raise UsageError("--like needs a document id")
    mode = resolve_mode(spec, request.mode, request.text is not None, vector_options(request))
    if mode is not Mode.vector:
        return _run_text_mode(client, spec, settings, request, mode)
    plan = vector_search(spec, request)
    vector = query_vector(client, spec, settings, request, plan.field)
    hits = _vector_page(client, spec, request, plan, vector)
    if plan.return_fields:
        _check_returned(spec, hits, list(plan.return_fields))
    return with_passages(client, spec, plan.field, hits, vector, request.text or "")


def run_batch(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest,
              queries: Iterable[BatchQuery]) -> Iterator[tuple[BatchQuery, list[Hit]]]:
    """Each query's hits, in input order: texts embedded BATCH at a time, their searches sent in one pipeline."""
    if any(x is not None for x in (request.text, request.image, request.vector, request.like)):
        raise UsageError("--batch reads the queries from its file: give no TEXT, --image, --vector or --like")
    mode = resolve_mode(spec, request.mode, True, vector_options(request))
    plan = vector_search(spec, request) if mode is Mode.vector else None  # its checks come before any embedding
    field = plan.field if plan else target_field(spec, request)
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
                firsts = search_many(client, spec, _ranked_from_first(plan, request), vectors)
                found.update((id(q), with_passages(client, spec, plan.field,
                                                   _vector_page(client, spec, request, plan, v, hits), v, q.text))
                             for q, v, hits in zip(texts, vectors, firsts))
        yield from ((q, found[id(q)]) for q in chunk)


def _text_mode_query(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest,
                     query: BatchQuery) -> list[Hit]:
    if text_terms(spec, query.text) is None:  # only stopwords: no words to match, so no results
        return []
    return run_query(client, spec, settings, replace(request, text=query.text))


def _image_batch(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest,
                 queries: list[BatchQuery]) -> Iterator[tuple[int, list[Hit]]]:
    """The image lines of a batch chunk: decoded together, embedded by one model load for the whole batch
    (a process per `--image` query loaded torch each time: 61 queries took 141 s), searched in one pipeline."""
    if not queries:
        return
    image_request = replace(request, image=queries[0].image, mode=Mode.vector)
    plan = vector_search(spec, replace(image_request, field=target_field(spec, image_request).name))
    decoded = open_images([q.image for q in queries if q.image is not None])
    for query, image in zip(queries, decoded):
        if isinstance(image, InputError):
            raise InputError(f"--batch line {query.line}: {image}")
    encoder = encoder_for(plan.field, request.model, settings, Purpose.QUERY)
    vectors = list(encoder.encode_images(decoded))  # type: ignore[arg-type]
    firsts = search_many(client, spec, _ranked_from_first(plan, image_request), vectors)
    yield from ((id(q), _vector_page(client, spec, image_request, plan, v, hits))
                for q, v, hits in zip(queries, vectors, firsts))


def _run_text_mode(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest,
                   mode: Mode, vector: QueryVector | None = None) -> list[Hit]:
    """--mode text (BM25 over the TEXT fields) and --mode hybrid (KNN and BM25 fused); see vsearch.hybrid."""
    if vector_options(request):
        raise UsageError("--min-score and --max-distance go with --mode vector")
    check_text_fields(spec)
    k = request.k if request.k is not None else DEFAULT_K
    if k < 1 or k > MAX_K:
        raise UsageError(f"-k must be between 1 and {MAX_K:,}, not {k:,} (RediSearch returns at most {MAX_K:,} results)")
    if request.offset < 0 or request.offset + k > MAX_K:
        raise UsageError(f"-k plus --offset must be at most {MAX_K:,}, and --offset 0 or more")
    fields = list(request.return_fields) if request.return_fields is not None else None
    where, text = combined_filter(spec, request), request.text or ""
    # A page is the same ranking cut further down: the top offset + k, less the first offset.
    if mode is Mode.text:
        hits = _page(client, spec, request, lambda n: text_search(client, spec, text, n, where, fields),
                     request.offset, k)
        hits = with_text_matches(spec, hits, text)
    else:
        field = target_field(spec, request)
        if vector is None:
            vector = query_vector(client, spec, settings, request, field)
        known = vector
        # Ranked as ids and scores; the fields only of the hits shown.
        hits = _page(client, spec, request,
                     lambda n: hybrid_search(client, spec, field, known, text, n, where, request.fusion,
                                             request.ef_runtime, []), request.offset, k)
        hits = with_fields(client, spec, hits, fields)
        hits = with_passages(client, spec, field, hits, vector, text)  # an index without passages: no snippet
    if fields:
        _check_returned(spec, hits, fields)
    return hits


def _vector_page(client: store.Client, spec: IndexSpec, request: QueryRequest, plan: VectorSearch,
                 vector: QueryVector, first: list[Hit] | None = None) -> list[Hit]:
    """The page of KNN (or range) hits `plan` asks for; `first`: what `_ranked_from_first(plan)` already found."""
    def fetch(n: int) -> list[Hit]:
        return search_many(client, spec, replace(plan, k=n, offset=0), [vector])[0]

    return _page(client, spec, request, fetch, plan.offset, plan.k, first)


def _ranked_from_first(plan: VectorSearch, request: QueryRequest) -> VectorSearch:
    """`plan` asking for the hits a page is cut from, the best first (see `_page`)."""
    return replace(plan, k=first_ask(plan.offset, plan.k, request.collapse), offset=0)


def _page(client: store.Client, spec: IndexSpec, request: QueryRequest, fetch: Fetch, offset: int, k: int,
          first: list[Hit] | None = None) -> list[Hit]:
    """Hits offset + 1 .. offset + k of the ranking `fetch(n)` gives, identical documents (every vector made from
    the same input) shown once unless --no-collapse."""
    if not request.collapse:
        return (first if first is not None else fetch(offset + k))[offset:offset + k]
    return collapsed_page(fetch, lambda ids: store.content_keys(client, spec, ids), offset, k, first)


def _check_returned(spec: IndexSpec, hits: list[Hit], fields: list[str]) -> None:
    """A --return field that no hit has is most likely a typo: say so rather than show an empty column."""
    if not hits:
        return
    present = {name for hit in hits for name in hit.fields}
    known = present | {f.name for f in spec.fields}
    if missing := [f for f in fields if f not in known]:
        raise UsageError(f"--return: no result has field {', '.join(repr(m) for m in missing)} "
                         f"(fields: {', '.join(sorted(known)) or 'none'})")


# ---------------------------------------------------------------------------------------------------
# The use case, as the CLI calls it: an index name in, rows out


def _open(settings: Settings, name: str) -> tuple[store.Client, IndexSpec]:
    client = store.connect(settings)
    return client, store.get_spec(client, name)


def _columns(spec: IndexSpec, request: QueryRequest, for_table: bool) -> list[str] | None:
    """The document fields each row shows: --return's, else for a table the indexed ones (not every column)."""
    if request.return_fields is not None:
        return list(request.return_fields)
    return [f.name for f in spec.fields] if for_table and spec.fields else None


def explain_query(settings: Settings, name: str, request: QueryRequest) -> str:
    from vsearch.query.plan import explain

    return explain(_open(settings, name)[1], request)


def query_rows(settings: Settings, name: str, request: QueryRequest, for_table: bool = False) -> list[dict[str, object]]:
    """One query's result rows (`rows.result_rows`)."""
    from vsearch.query.rows import result_rows

    client, spec = _open(settings, name)
    return result_rows(run_query(client, spec, settings, request), _columns(spec, request, for_table), short=for_table)


def batch_query_rows(settings: Settings, name: str, request: QueryRequest, queries: Iterable[BatchQuery],
                     for_table: bool = False, streaming: bool = False) -> Iterator[list[dict[str, object]]]:
    """A batch's result rows, tagged with their query: a list per query when `streaming`, else one list."""
    from vsearch.query.rows import batch_rows

    client, spec = _open(settings, name)
    results = run_batch(client, spec, settings, request, queries)
    return batch_rows(results, _columns(spec, request, for_table), streaming, short=for_table)
