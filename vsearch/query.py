"""`query`: turn a text, an image, a vector or a stored document into a query vector, then search."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from vsearch.config import Settings
from vsearch.errors import InputError, UsageError
from vsearch.models import encoder_for, open_image
from vsearch.schema import IndexSpec, VectorField
from vsearch.store import Hit, document_vector, search


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


def run_query(client: redis.Redis, spec: IndexSpec, settings: Settings, request: QueryRequest) -> list[Hit]:
    given = [x for x in (request.text, request.image, request.vector, request.like) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of: TEXT, --image, --vector, --like")
    if request.k < 1:
        raise UsageError("-k must be at least 1")
    field = _target_field(spec, request)
    vector = _query_vector(client, spec, settings, request, field)
    return search(client, spec, field, vector, request.k, request.filter, request.ef_runtime, exclude_id=request.like)


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
