"""A query's plan, checked against the index before anything is embedded or sent: the vector field, -k and
--offset, the combined filter, range radius; and `explain`, the commands a query would send."""

from __future__ import annotations

import math
import shlex
from dataclasses import replace

from vsearch.errors import UsageError
from vsearch.filters import compile_where
from vsearch.query.collapse import first_ask
from vsearch.query.hybrid import Fusion, Mode, resolve_mode
from vsearch.query.request import DEFAULT_K, MAX_K, QueryRequest, vector_options
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.store.search import (TEXT_RANKING, TextSearch, VectorSearch, full_text_query, return_clause,
                                  search_command, text_command)

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
    field = field or target_field(spec, request)
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
    mode = resolve_mode(spec, request.mode, request.text is not None, vector_options(request))
    if mode is not Mode.vector:
        return _explain_text_mode(spec, request, mode)
    plan = vector_search(spec, request)
    ranked = replace(plan, k=first_ask(plan.offset, plan.k, request.collapse), offset=0)
    return (_shown(search_command(spec, ranked, bytes(4 * plan.field.dim)), plan.field)  # a zero vector, never sent
            + "\n" + _collapsed(request, plan.offset, plan.k))


def _collapsed(request: QueryRequest, offset: int, k: int) -> str:
    """The explanation's last line: how copies are shown once, and the page cut from the ranking."""
    if not request.collapse:
        return f"then hits {offset + 1} to {offset + k} shown"
    return (f"then identical documents shown once (the hits' fingerprints read in one round trip; asked again "
            f"for twice as many while that leaves fewer than {offset + k}); hits {offset + 1} to {offset + k} shown")


def _explain_text_mode(spec: IndexSpec, request: QueryRequest, mode: Mode) -> str:
    """Text mode sends one command. Hybrid mode sends its two windows (KNN, then BM25) as ids and scores, one line
    each, then fuses, and fetches the fields of the hits it shows: the last line says how."""
    check_text_fields(spec)
    where = combined_filter(spec, request)
    shown = request.k if request.k is not None else DEFAULT_K
    k = first_ask(request.offset, shown, request.collapse)  # a page is cut from the top k
    if mode is Mode.text:
        return (f"FT.SEARCH {shlex.quote(spec.name)} {shlex.quote(full_text_query(spec, request.text or '', where))} "
                f"WITHSCORES {' '.join(TEXT_RANKING)} LIMIT 0 {k} DIALECT 2\n" + _collapsed(request, request.offset, shown))
    window = max(request.fusion.window, k)
    plan = vector_search(spec, QueryRequest(text=request.text, field=request.field, k=window, filter=where,
                                            ef_runtime=request.ef_runtime, mode=Mode.vector))
    field = plan.field
    knn = search_command(spec, replace(plan, return_fields=()), bytes(4 * field.dim))  # a zero vector, never sent
    text = text_command(spec, TextSearch(request.text or "", window, where, ()))
    fusion = request.fusion
    if fusion.fusion is Fusion.linear:
        how = (f"alpha={fusion.alpha:g}, top {k}, after each side scores the other's candidates (the same "
               "commands with INKEYS)")
    else:
        how = f"k={fusion.rrf_k}, top {k}"
    returns = return_clause(spec, request.return_fields) if request.return_fields is not None else []
    fetch = " ".join(["FT.SEARCH", shlex.quote(spec.name), "'*'", *(shlex.quote(str(p)) for p in returns),
                      "INKEYS", str(shown), "<their keys>", "LIMIT", "0", str(shown), "DIALECT", "2"])
    return (f"{_shown(knn, field)}\n{_shown(text, field)}\nfused client-side: {fusion.fusion.value} {how}; "
            f"{_collapsed(request, request.offset, shown)}; their fields: {fetch}")


def _shown(command: list[object], field: VectorField) -> str:
    """A command as a shell would quote it, a vector as a placeholder."""
    blob = f"<{field.dim} x {field.datatype.value}>"
    return " ".join(blob if isinstance(part, bytes) else shlex.quote(str(part)) for part in command)


def target_field(spec: IndexSpec, request: QueryRequest) -> VectorField:
    if request.field:
        return spec.vector_named(request.field)
    preferred = "image" if request.image is not None else "text"
    field = spec.vector(preferred) or (spec.vectors[0] if spec.vectors else None)
    if field is None:
        raise UsageError(f"index '{spec.name}' has no vector field")
    if request.image is not None and field.embeds != "image":
        raise UsageError(f"index '{spec.name}' has no image vector field to search with --image")
    return field


def check_text_fields(spec: IndexSpec) -> None:
    """Text and hybrid modes rank by the index's TEXT fields: say how to get one where there is none."""
    if not spec.text_fields:
        raise UsageError(f"index '{spec.name}' has no TEXT field to search: recreate it with --text FIELD "
                         "(e.g. `vsearch create-index NAME --text title --replace`), or use --mode vector")


def range_radius(metric: Metric, min_score: float | None = None, max_distance: float | None = None) -> float:
    """The RediSearch radius of a range query, from a threshold in vsearch's score convention.

    Checked on the server: COSINE and IP distances are 1 - score, and an L2 radius is in squared units,
    like L2 distances. RediSearch refuses a negative radius, so a score no match could reach is an error.
    """
    if metric is Metric.l2:
        if max_distance is None or min_score is not None:
            raise UsageError("an L2 index is searched by distance: use --max-distance D, not --min-score")
        if not math.isfinite(max_distance) or max_distance < 0:
            raise UsageError(f"--max-distance must be a finite number >= 0, not {max_distance}")
        return max_distance * max_distance
    if min_score is None or max_distance is not None:
        raise UsageError(f"a {metric.value.upper()} index is searched by score: use --min-score S, not --max-distance")
    if not math.isfinite(min_score):
        raise UsageError(f"--min-score must be a finite number, not {min_score}")
    if min_score > 1.0:
        why = ("a cosine similarity is at most 1" if metric is Metric.cosine
               else "RediSearch's range queries on IP indexes reach inner products up to 1 (no negative radius)")
        raise UsageError(f"--min-score {min_score} is above 1: {why}")
    return 1.0 - min_score
