"""Index use cases: `create-index` (options or a schema file to a checked IndexSpec; `--replace` without
downtime), `drop-index`, `list` and `info`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vsearch import store
from vsearch.config import Settings
from vsearch.errors import IndexNotFound, ModelError, UsageError
from vsearch.models import default_model, image_encoder, known_dim, text_encoder
from vsearch.passages import PassageSettings, settings_for_model
from vsearch.store.keys import check_user_prefix, default_prefix
from vsearch.store.lock import index_lock
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
    passages: bool | None = None  # None: on where the text model's tokenizer is known and storage is not HASH
    passage_tokens: int | None = None  # None: the model's window less its special tokens
    passage_overlap: int | None = None  # None: ~15% of passage_tokens


def build_spec(name: str, settings: Settings, fields: FieldOptions, vectors: VectorOptions, storage: Storage | None,
               prefix: str | None, schema_file: Path | None) -> IndexSpec:
    """The index the options describe. `storage` None: JSON for a text index with passages (RediSearch indexes a
    list of vectors per document only in JSON), else HASH."""
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
    passages = None
    if vectors.text:
        model = default_model("text", None, settings)
        dim = vectors.text_dim or _model_dim(model, settings, image=False)
        passages = _passages(model, vectors, storage)
        made.append(VectorField(TEXT_VECTOR, "text", model, dim, vectors.algorithm, vectors.metric,
                                vectors.datatype, params, passages))
    elif vectors.passages:
        raise UsageError("--passages splits the texts of the text vector field: drop --no-text-vector")
    if storage is None:
        storage = Storage.json if passages is not None else Storage.hash
    if vectors.image:
        model = default_model("image", None, settings)
        dim = vectors.image_dim or _model_dim(model, settings, image=True)
        made.append(VectorField(IMAGE_VECTOR, "image", model, dim, vectors.algorithm,
                                vectors.metric, vectors.datatype, params))
    if prefix is not None:
        check_user_prefix(prefix)
    prefix = prefix if prefix is not None else default_prefix(name)
    return IndexSpec(name, prefix, storage, fields.fields(), tuple(made)).with_stems()


def _passages(model: str, vectors: VectorOptions, storage: Storage | None) -> PassageSettings | None:
    """How the text field's texts are split, or None for one vector per document (the text cut at the window)."""
    asked = vectors.passages is True or vectors.passage_tokens is not None or vectors.passage_overlap is not None
    if vectors.passages is False:
        if asked and (vectors.passage_tokens is not None or vectors.passage_overlap is not None):
            raise UsageError("--passage-tokens and --passage-overlap go with passages: drop --no-passages")
        return None
    if storage is Storage.hash:
        if asked:
            raise UsageError("passages need --storage json: RediSearch indexes several vectors per document only in "
                             "JSON documents (or pass --no-passages to keep HASH storage)")
        return None
    try:
        default = settings_for_model(model)
    except ModelError:
        if asked:
            raise
        return None  # a model without a local tokenizer: one vector per document, as before
    tokens = vectors.passage_tokens if vectors.passage_tokens is not None else default.max_tokens
    if tokens > default.max_tokens:
        raise UsageError(f"--passage-tokens {tokens} is more than model '{model}' reads ({default.max_tokens} "
                         "tokens besides its own): the rest of each passage would be cut")
    overlap = (vectors.passage_overlap if vectors.passage_overlap is not None
               else default.overlap if vectors.passage_tokens is None else PassageSettings.for_window(tokens, 0).overlap)
    return PassageSettings(tokens, overlap)


def _with_model(vector: VectorField, settings: Settings) -> VectorField:
    if vector.model:
        return vector
    return replace(vector, model=default_model(vector.embeds, None, settings))


def _model_dim(model: str, settings: Settings, image: bool) -> int:
    """The model's dimension, known by name for the defaults, else by loading the model once."""
    dim = known_dim(model)
    if dim is None:
        dim = (image_encoder(model, settings) if image else text_encoder(model, settings)).dim
    return dim


def create(settings: Settings, spec: IndexSpec) -> IndexSpec:
    """`create-index`: the index as created (its generation and physical name filled in)."""
    return store.create_index(store.connect(settings), spec)


def drop(settings: Settings, name: str, delete_documents: bool) -> None:
    """`drop-index`: under the index's write lock, so a running load never writes into a dropped index."""
    client = store.connect(settings)
    with index_lock(client, name):
        store.drop_index(client, name, delete_documents)


def list_indexes(settings: Settings) -> list[dict[str, Any]]:
    """`list`: one row an index, with its documents, vector fields and models."""
    client = store.connect(settings)
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


def info(settings: Settings, name: str) -> dict[str, Any]:
    """`info`: the recorded schema and models, the document count and the memory they take."""
    from vsearch.store.sizing import index_memory

    client = store.connect(settings)
    spec = store.get_spec(client, name)
    memory = index_memory(client, spec)
    return {**spec.to_dict(), "documents": memory.documents, "memory": memory.to_dict()}


def replace_schema(settings: Settings, spec: IndexSpec, explicit_prefix: bool,
                   explicit_layout: bool = True) -> tuple[IndexSpec, int]:
    """`create-index NAME --replace`: the live documents, copied under the new schema, take over NAME.

    `explicit_layout` False: neither --storage nor a passage option was given, so the live index's are kept."""
    client = store.connect(settings)
    with index_lock(client, spec.name) as lease:
        live = store.get_spec(client, spec.name)
        if not explicit_layout:
            spec = _keep_layout(live, spec)
        _check_vectors_compatible(live, spec)
        wanted = spec if explicit_prefix else replace(spec, prefix=live.prefix)
        new = store.next_generation(client, live, wanted)
        try:
            copied = store.copy_documents(client, live, new, store.scan_ids(client, live))
            store.go_live(client, live, new, copied, lease)
        except BaseException:
            store.abandon(client, new)
            raise
    return new, copied


def _keep_layout(live: IndexSpec, spec: IndexSpec) -> IndexSpec:
    """`spec` with the live index's storage and passage settings (what --replace changes only when asked)."""
    old = {v.name: v for v in live.vectors}
    vectors = tuple(replace(v, passages=old[v.name].passages) if v.name in old else v for v in spec.vectors)
    return replace(spec, storage=live.storage, vectors=vectors)


def _check_vectors_compatible(live: IndexSpec, spec: IndexSpec) -> None:
    """Stored vectors can move to the new schema only if they mean the same there."""
    old = {v.name: v for v in live.vectors}
    for vector in spec.vectors:
        before = old.get(vector.name)
        if before is None:
            raise UsageError(f"--replace cannot add vector field {vector.name}: the documents have no such vectors; "
                             f"create the new schema, then `vsearch load {spec.name} FILE --rebuild`")
        if (before.dim, before.embeds) != (vector.dim, vector.embeds) or (before.model and vector.model and before.model != vector.model):
            raise UsageError(f"--replace cannot change {vector.name} from {before.dim}-d {before.model or 'unknown model'} "
                             f"to {vector.dim}-d {vector.model}: its vectors must be made again with "
                             f"`vsearch load {spec.name} FILE --rebuild --model ...`")
    for vector in spec.vectors:
        before = old[vector.name]
        if before.passages != vector.passages:
            raise UsageError(f"--replace cannot change how {vector.name}'s texts are split into passages: that "
                             "changes every vector; create a new index and load it (or drop this one first)")
    if live.storage is not spec.storage:
        raise UsageError("--replace cannot change the storage type (hash/json); create a new index and load it")
