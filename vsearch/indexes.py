"""`create-index`: turn command-line options (or a schema file) into a checked IndexSpec."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from pathlib import Path

import redis

from vsearch.config import Settings
from vsearch.errors import UsageError
from vsearch.models import known_dim, load_image_encoder, load_text_encoder
from vsearch.store.keys import check_user_prefix, default_prefix
from vsearch.schema import (HNSW_DEFAULTS, IMAGE_VECTOR, TEXT_VECTOR, Algorithm, DataType, Field, FieldType, IndexSpec,
                            Metric, Storage, VectorField, check_params, read_schema_file)


@dataclass(frozen=True)
class FieldOptions:
    tag: list[str]
    text: list[str]
    numeric: list[str]
    geo: list[str]

    def fields(self) -> tuple[Field, ...]:
        pairs = [(n, FieldType.tag) for n in self.tag] + [(n, FieldType.text) for n in self.text]
        pairs += [(n, FieldType.numeric) for n in self.numeric] + [(n, FieldType.geo) for n in self.geo]
        names = [n for n, _ in pairs]
        if duplicated := sorted({n for n in names if names.count(n) > 1}):
            raise UsageError(f"field {', '.join(duplicated)} is declared twice")
        if clash := {TEXT_VECTOR, IMAGE_VECTOR} & set(names):
            raise UsageError(f"{', '.join(sorted(clash))} is the name of a vector field")
        return tuple(Field(n, t) for n, t in pairs)


@dataclass(frozen=True)
class VectorOptions:
    algorithm: Algorithm
    metric: Metric
    datatype: DataType
    params: dict[str, int | float | None]
    text: bool
    text_dim: int | None
    image: bool
    image_dim: int | None


def build_spec(name: str, settings: Settings, fields: FieldOptions, vectors: VectorOptions, storage: Storage,
               prefix: str | None, schema_file: Path | None) -> IndexSpec:
    if schema_file is not None:
        spec = read_schema_file(schema_file)
        spec = spec.with_name(name) if name != spec.name else spec
        check_user_prefix(spec.prefix)
        return replace(spec, vectors=tuple(_with_model(v, settings) for v in spec.vectors)).with_stems()
    if not vectors.text and not vectors.image:
        raise UsageError("an index needs a vector field: drop --no-text-vector or add --image")
    params = check_params(vectors.algorithm, {k: v for k, v in vectors.params.items() if v is not None})
    if vectors.algorithm is Algorithm.hnsw:
        params = {**HNSW_DEFAULTS, **params}
    made: list[VectorField] = []
    if vectors.text:
        dim = vectors.text_dim or _model_dim(settings.model, settings, image=False)
        made.append(VectorField(TEXT_VECTOR, "text", settings.model, dim, vectors.algorithm, vectors.metric,
                                vectors.datatype, params))
    if vectors.image:
        dim = vectors.image_dim or _model_dim(settings.image_model, settings, image=True)
        made.append(VectorField(IMAGE_VECTOR, "image", settings.image_model, dim, vectors.algorithm,
                                vectors.metric, vectors.datatype, params))
    if prefix is not None:
        check_user_prefix(prefix)
    prefix = prefix if prefix is not None else default_prefix(name)
    return IndexSpec(name, prefix, storage, fields.fields(), tuple(made)).with_stems()


def _with_model(vector: VectorField, settings: Settings) -> VectorField:
    if vector.model:
        return vector
    return replace(vector, model=settings.image_model if vector.embeds == "image" else settings.model)


def _model_dim(model: str, settings: Settings, image: bool) -> int:
    """The model's dimension, known by name for the defaults, else by loading the model once."""
    dim = known_dim(model)
    if dim is None:
        loader = load_image_encoder if image else load_text_encoder
        dim = loader(model, settings.device).dim
    return dim


def drop(client: redis.Redis, name: str, delete_documents: bool) -> None:
    """`drop-index`: under the index's write lock, so a running load never writes into a dropped index."""
    from vsearch import store
    from vsearch.store.lock import index_lock

    with index_lock(client, name):
        store.drop_index(client, name, delete_documents)


def list_indexes(client: redis.Redis) -> list[dict[str, Any]]:
    """`list`: one row an index, with its documents, vector fields and models."""
    from vsearch import store
    from vsearch.errors import IndexNotFound

    rows = []
    for name in store.index_names(client):
        try:
            spec = store.get_spec(client, name)
            documents = store.index_stats(client, spec).documents
        except IndexNotFound:  # a record whose index is gone (dropped by another tool)
            continue
        rows.append({
            "name": name, "documents": documents, "storage": spec.storage.value, "prefix": spec.prefix,
            "vectors": ", ".join(f"{v.name} {v.algorithm.value.upper()} {v.metric.value.upper()} {v.dim}-d"
                                 for v in spec.vectors),
            "models": ", ".join(sorted({v.model for v in spec.vectors if v.model})) or "unknown",
            "fields": ", ".join(f"{f.name} ({f.type.value})" for f in spec.fields),
            "made_by": "vsearch" if spec.generation else "another tool",
        })
    return rows
