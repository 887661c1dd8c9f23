"""Query vectors: texts through the query cache first and the fastest query encoder for the rest, images through
the image model, a stored document's own vector (`--like`), or a JSON array (`--vector`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from vsearch import store
from vsearch.config import Settings
from vsearch.errors import InputError, ModelError, UsageError
from vsearch.models import Purpose, encoder_for, model_name_for, open_image
from vsearch.query.request import QueryRequest
from vsearch.schema import IndexSpec, Metric, VectorField
from vsearch.store import query_cache
from vsearch.store.vectors import QueryVector

if TYPE_CHECKING:
    import numpy as np


def embed_texts(client: store.Client, field: VectorField, settings: Settings, request: QueryRequest,
                texts: Sequence[str]) -> list[QueryVector]:
    """Query vectors for texts: from the cache where it has them; the model (loaded only then) for the rest."""
    fingerprint = _fingerprint(model_name_for(field, request.model, settings)) if request.cache else None
    found: list[QueryVector | None] = (query_cache.get_many(client, fingerprint, texts, field.dim) if fingerprint
                                       else [None] * len(texts))
    missing = [i for i, vector in enumerate(found) if vector is None]
    if missing:
        encoder = encoder_for(field, request.model, settings, Purpose.QUERY)
        made = encoder.encode_texts([texts[i] for i in missing])
        for i, vector in zip(missing, made):
            found[i] = vector
        if fingerprint:
            query_cache.put_many(client, fingerprint, [texts[i] for i in missing], list(made), request.cache_ttl)
    return [v for v in found if v is not None]


def _fingerprint(model: str) -> str | None:
    """The model's fingerprint for cache keys; None (no caching) for a model that is not a local directory."""
    from vsearch.models.names import model_fingerprint

    try:
        return model_fingerprint(model)
    except (ModelError, OSError):
        return None


def query_vector(client: store.Client, spec: IndexSpec, settings: Settings, request: QueryRequest,
                  field: VectorField) -> QueryVector:
    if request.like is not None:
        found = store.document_vector(client, spec, request.like, field)
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
        return encoder_for(field, request.model, settings, Purpose.QUERY).encode_images([open_image(request.image)])[0]
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


def _all_zero(vector: QueryVector) -> bool:
    """Whether every element is 0 (or -0): float32 bytes as stored, or an array, without importing numpy."""
    if isinstance(vector, bytes):
        from array import array

        return not any(array("f", vector))
    return not vector.any()
