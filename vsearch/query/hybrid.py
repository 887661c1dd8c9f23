"""Query modes beyond KNN: full-text (BM25) and hybrid, two ranked lists fused on the client.

Redis fuses server-side only from 8.4 (`FT.HYBRID`); the embedded Redis Stack 7.4 cannot, so vsearch asks for the
best `window` documents of each side (KNN and BM25, the same filter on both) and fuses them here:
- `rrf`: reciprocal rank fusion, score = sum over the lists of 1 / (rrf_k + rank); ranks only, no scores.
- `linear`: each side first looks up its score of the other side's candidates (`candidates`), then each
  list's scores are min-max normalised to [0, 1] and combined: alpha * vector + (1 - alpha) * text.
The fusion functions are pure (ids and scores in, ids and scores out) so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from vsearch.errors import UsageError

if TYPE_CHECKING:  # the CLI imports the enums at start-up: keep redis and numpy out of that
    import numpy as np

    from vsearch.schema import IndexSpec, VectorField
    from vsearch.store import Client, Hit
    from vsearch.store.search import Search


class Mode(str, Enum):
    vector = "vector"
    text = "text"
    hybrid = "hybrid"


class Fusion(str, Enum):
    rrf = "rrf"
    linear = "linear"


# Defaults tuned on SciFact's train claims, reported on its test claims (bench/hybrid_quality.py).
DEFAULT_WINDOW = 100
DEFAULT_ALPHA = 0.5
DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class FusionParams:
    fusion: Fusion = Fusion.linear
    window: int = DEFAULT_WINDOW  # candidates asked of each side; at least k are asked
    alpha: float = DEFAULT_ALPHA  # linear: the weight of the vector side
    rrf_k: int = DEFAULT_RRF_K

    def check(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"--alpha must be between 0 and 1 (the weight of the vector side), not {self.alpha:g}")
        if self.window < 1:
            raise UsageError(f"--window must be at least 1, not {self.window}")
        if self.rrf_k < 0:
            raise UsageError(f"--rrf-k must be 0 or more, not {self.rrf_k}")


def resolve_mode(spec: IndexSpec, mode: Mode | None, has_text: bool, vector_options: bool = False) -> Mode:
    """The mode a query runs in: the one asked for, else hybrid for query text on an index with TEXT fields.

    Hybrid is the default because it ranked best wherever measured: SciFact nDCG@10 0.734 against 0.684 (text)
    and 0.645 (vector) (bench/hybrid_quality.py); short product queries on the fashion catalogue ("Navy Blue
    Shirts"), precision@10 0.616 against 0.502 (vector) by colour and type, 0.861 against 0.837 by gender and type
    (bench/product_queries.py). A query that asks for
    what only vector mode has (`vector_options`: --min-score, --max-distance) is refused rather than switched
    to vector mode: the same query would otherwise rank differently with and without the option.
    """
    if mode is None:
        mode = Mode.hybrid if has_text and spec.text_fields else Mode.vector
        if mode is Mode.hybrid and vector_options:
            raise UsageError("--min-score and --max-distance are ranges over vector scores, and this query runs in "
                             "hybrid mode (the default for text on an index with TEXT fields): add --mode vector")
        return mode
    if mode is not Mode.vector and not has_text:
        raise UsageError(f"--mode {mode.value} needs query TEXT: --like, --vector and --image search the vectors "
                         "only (--mode vector)")
    return mode


Ranked = Sequence[tuple[str, float]]  # (id, score), best first


def rrf(rankings: Sequence[Sequence[str]], k: int = DEFAULT_RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked id lists: score(d) = sum of 1 / (k + rank of d), ranks from 1.

    Ties keep the order in which the documents were first met (the first list first), so the result is stable.
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores rescaled to [0, 1], best 1; when all are equal (one candidate, say) all are the best, 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def linear(vector: Ranked, text: Ranked, alpha: float) -> list[tuple[str, float]]:
    """Convex combination of min-max normalised scores: alpha * vector + (1 - alpha) * text.

    Both lists hold higher-is-better scores. A document missing from one list scores 0 on that side (the
    lowest a candidate of that list can score), as in Bruch et al., "An Analysis of Fusion Functions for
    Hybrid Retrieval" (2023). Ties keep first-met order.
    """
    fused: dict[str, float] = {}
    for weight, ranked in ((alpha, vector), (1.0 - alpha, text)):
        for (doc, _), norm in zip(ranked, min_max([score for _, score in ranked])):
            fused[doc] = fused.get(doc, 0.0) + weight * norm
    return sorted(fused.items(), key=lambda item: -item[1])


def fuse(vector_hits: Sequence[Hit], text_hits: Sequence[Hit], k: int, params: FusionParams,
         lower_is_better: bool = False) -> list[Hit]:
    """The top k of the two hit lists fused; each hit keeps its document fields, its score is the fused one."""
    from vsearch.store import Hit

    if params.fusion is Fusion.rrf:
        ranked = rrf([[h.id for h in vector_hits], [h.id for h in text_hits]], params.rrf_k)
    else:
        sign = -1.0 if lower_is_better else 1.0  # L2 indexes report distances
        ranked = linear([(h.id, sign * h.score) for h in vector_hits], [(h.id, h.score) for h in text_hits],
                        params.alpha)
    fields: dict[str, dict] = {}
    for hit in (*text_hits, *vector_hits):  # a looked-up score comes without fields: keep the ones that have them
        if hit.fields or hit.id not in fields:
            fields[hit.id] = hit.fields
    return [Hit(rank, doc, round(score, 6), fields[doc]) for rank, (doc, score) in enumerate(ranked[:k], start=1)]


def candidates(client: Client, spec: IndexSpec, field: VectorField, vector: np.ndarray, text: str,
               params: FusionParams, filter_expression: str | None = None, ef_runtime: int | None = None,
               return_fields: list[str] | None = None) -> tuple[list[Hit], list[Hit]]:
    """The KNN and BM25 candidates of a hybrid query (`params.window` each, the same filter on both).

    For linear fusion each side is then completed with its score of the other side's candidates: their exact
    distance (a KNN over just those documents) and their BM25 score (0 for a document holding none of the
    words). A candidate missing from one window would otherwise count as that side's worst, though it may rank
    just past the window. SciFact test claims, nDCG@10 (bench/hybrid_quality.py): hybrid linear 0.714 before the
    stems field and these lookups, 0.734 with both; in a one-off experiment over a reference BM25 the lookups
    alone were worth 0.7297 -> 0.7371.

    Two round trips: both windows in one pipeline, then both lookups in another (four searches in turn before).
    """
    from vsearch.store import Hit
    from vsearch.store.search import TextSearch, VectorSearch, send, text_terms

    params.check()
    terms = text_terms(spec, text)  # an index without TEXT fields: say so before searching anything
    returned = tuple(return_fields) if return_fields is not None else None
    knn = VectorSearch(field, params.window, filter=filter_expression, ef_runtime=ef_runtime, return_fields=returned)
    # A query made only of stopwords has no full-text side: the vector side alone ranks it.
    if terms is None:
        return send(client, spec, [(knn, vector)])[0], []
    vector_hits, text_hits = send(client, spec, [(knn, vector),
                                                 TextSearch(text, params.window, filter_expression, returned)])
    # No document holds any of the words: there is no text side to complete, and the vector side alone ranks.
    if params.fusion is not Fusion.linear or not text_hits:
        return vector_hits, text_hits
    in_text, in_vector = {h.id for h in text_hits}, {h.id for h in vector_hits}
    text_only = tuple(h.id for h in text_hits if h.id not in in_vector)
    vector_only = tuple(h.id for h in vector_hits if h.id not in in_text)
    lookups: list[Search] = []
    if text_only:  # their exact distances: a KNN over just those documents, ids and scores only
        lookups.append((replace(knn, k=len(text_only), return_fields=(), only_ids=text_only), vector))
    if vector_only:  # their BM25 scores
        lookups.append(TextSearch(text, len(vector_only), filter_expression, (), vector_only))
    found = send(client, spec, lookups)
    if text_only:
        vector_hits += found.pop(0)
    if vector_only:
        matched = {h.id for h in found[0]}
        text_hits += found[0] + [Hit(0, doc, 0.0, {}) for doc in vector_only if doc not in matched]
    return vector_hits, text_hits


def hybrid_search(client: Client, spec: IndexSpec, field: VectorField, vector: np.ndarray, text: str, k: int,
                  filter_expression: str | None, params: FusionParams, ef_runtime: int | None = None,
                  return_fields: list[str] | None = None) -> list[Hit]:
    """KNN and BM25 candidates (`params.window` each, the same filter on both, each side completed), fused.

    The candidates come as ids and scores only, and the fields of the k fused hits in one more round trip: the
    windows' documents in full (every field, the vectors too, of some 200 documents) were most of a hybrid
    query's time, and only k of them are shown.
    """
    from vsearch.schema import Metric

    params = replace(params, window=max(params.window, k))
    vector_hits, text_hits = candidates(client, spec, field, vector, text, params, filter_expression, ef_runtime,
                                        return_fields=[])
    hits = fuse(vector_hits, text_hits, k, params, lower_is_better=field.metric is Metric.l2)
    return with_fields(client, spec, hits, return_fields)


def with_fields(client: Client, spec: IndexSpec, hits: list[Hit], return_fields: list[str] | None) -> list[Hit]:
    """Hits ranked as ids and scores, with their fields (`return_fields`; None: all) read in one round trip."""
    from vsearch.store.search import document_fields

    if return_fields == [] or not hits:
        return hits
    fields = document_fields(client, spec, [h.id for h in hits], return_fields)
    return [replace(hit, fields=fields.get(hit.id, {})) for hit in hits]
