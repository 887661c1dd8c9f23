"""`similarity`: rank candidate texts against a query, the first thing anyone tries with embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsearch.config import Settings
from vsearch.models import Encoder, Purpose, text_encoder
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


def compare(settings: Settings, query: str, candidates: list[str], metric: Metric, top: int | None = None) -> list[Ranked]:
    """`similarity`: a handful of texts, so the model's ONNX export where one is made (a process then never
    imports torch: measured 7.5 s for three strings through torch), else sentence-transformers. Unlike a query,
    it does not export on first use: that costs more than it saves for one command."""
    return rank(text_encoder(settings.model, settings, Purpose.FEW), query, candidates, metric, top)
