"""`similarity`: rank candidate texts against a query, the first thing anyone tries with embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsearch.models import Encoder
from vsearch.schema import Metric


@dataclass(frozen=True)
class Ranked:
    rank: int
    text: str
    score: float


def scores(query: np.ndarray, candidates: np.ndarray, metric: Metric) -> np.ndarray:
    """Cosine similarity, inner product, or Euclidean distance (for L2: lower is closer)."""
    if metric is Metric.cosine:
        norms = np.linalg.norm(candidates, axis=1) * np.linalg.norm(query)
        return (candidates @ query) / np.where(norms == 0, 1.0, norms)
    if metric is Metric.ip:
        return candidates @ query
    return np.linalg.norm(candidates - query, axis=1)


def rank(encoder: Encoder, query: str, candidates: list[str], metric: Metric, top: int | None = None) -> list[Ranked]:
    vectors = encoder.encode_texts([query, *candidates])
    values = scores(vectors[0], vectors[1:], metric)
    order = np.argsort(values, kind="stable")
    if metric is not Metric.l2:
        order = np.argsort(-values, kind="stable")
    return [Ranked(r, candidates[i], float(values[i])) for r, i in enumerate(order[:top], start=1)]
