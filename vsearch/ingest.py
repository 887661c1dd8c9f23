"""`load`: records in, documents with embeddings out, written to an index in atomic batches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import redis

from vsearch.errors import InputError, ModelError, UsageError, VsearchError
from vsearch.config import Settings
from vsearch.models import Encoder, encoder_for, open_image
from vsearch.records import STDIN, Record
from vsearch.schema import FieldType, IndexSpec, Storage, VectorField
from vsearch.store import Document, write_documents


@dataclass(frozen=True)
class LoadPlan:
    """What to read from each record, decided and checked once before any record is read."""

    id_field: str
    text_fields: tuple[str, ...]
    image_field: str | None
    image_root: Path  # image paths in the input are relative to the input file's folder
    text_vector: VectorField | None
    image_vector: VectorField | None


@dataclass(frozen=True)
class LoadReport:
    documents: int
    seconds: float


def plan_load(spec: IndexSpec, source: str, id_field: str, text_fields: list[str], image_field: str | None) -> LoadPlan:
    text_vector = spec.vector("text") if text_fields else None
    image_vector = spec.vector("image") if image_field else None
    if text_fields and text_vector is None:
        raise UsageError(f"index '{spec.name}' has no text vector field to hold --text-field embeddings")
    if image_field and image_vector is None:
        raise UsageError(f"index '{spec.name}' has no image vector field: create it with `vsearch create-index {spec.name} --image`")
    if not text_fields and not image_field:
        wanted = " or ".join(f"--{kind}-field" for kind in ("text", "image") if spec.vector(kind))
        raise UsageError(f"say which field to embed: {wanted or '--text-field'}")
    root = Path.cwd() if source == STDIN else Path(source).resolve().parent
    return LoadPlan(id_field, tuple(text_fields), image_field, root, text_vector, image_vector)


def load_encoders(spec: IndexSpec, plan: LoadPlan, settings: Settings, model: str | None,
                  image_model: str | None) -> tuple[Encoder | None, Encoder | None]:
    """The models for the planned vectors: --model if given, else the one the index recorded, else the
    configured default; each checked against its field's dimension before any record is read."""
    text_encoder = image_encoder = None
    if plan.text_vector:
        text_encoder = encoder_for(plan.text_vector, model, settings)
        check_dimensions(spec, plan.text_vector, text_encoder)
    if plan.image_vector:
        image_encoder = encoder_for(plan.image_vector, image_model, settings)
        check_dimensions(spec, plan.image_vector, image_encoder)
    return text_encoder, image_encoder


def check_dimensions(spec: IndexSpec, vector: VectorField, encoder: Encoder) -> None:
    if encoder.dim != vector.dim:
        raise ModelError(
            f"model '{encoder.name}' makes {encoder.dim}-d vectors but {vector.name} in index '{spec.name}' holds "
            f"{vector.dim}-d ones: load with the model the index was made for ({vector.model or 'unknown'})"
        )


def load_records(
    client: redis.Redis,
    spec: IndexSpec,
    plan: LoadPlan,
    records: Iterable[Record],
    text_encoder: Encoder | None,
    image_encoder: Encoder | None,
    batch_size: int = 256,
    progress: Callable[[int], None] = lambda n: None,
) -> LoadReport:
    """Embed and write records batch by batch. A bad record stops the run before its batch is written,
    so Redis holds complete documents only: every batch before it, none of its own."""
    started = time.perf_counter()
    written = 0
    iterator = iter(records)
    try:
        for batch in _batches(iterator, batch_size):
            documents = _embed(spec, plan, batch, text_encoder, image_encoder)
            write_documents(client, spec, documents)
            written += len(documents)
            progress(len(documents))
    except VsearchError as exc:
        exc.args = (f"{exc} ({written} documents loaded before it, none from its batch on)",)
        raise
    return LoadReport(written, time.perf_counter() - started)


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(records, size)):
        yield batch


def _embed(spec: IndexSpec, plan: LoadPlan, batch: list[Record], text_encoder: Encoder | None,
           image_encoder: Encoder | None) -> list[Document]:
    ids = [_required(record, plan.id_field) for record in batch]
    fields = [_document_fields(spec, record) for record in batch]
    vectors: list[dict[str, np.ndarray]] = [{} for _ in batch]
    if plan.text_vector is not None and text_encoder is not None:
        texts = [_text(record, plan.text_fields) for record in batch]
        for row, vector in zip(vectors, text_encoder.encode_texts(texts)):
            row[plan.text_vector.name] = vector
    if plan.image_vector is not None and image_encoder is not None and plan.image_field:
        images = [open_image(plan.image_root / _required(record, plan.image_field)) for record in batch]
        for row, vector in zip(vectors, image_encoder.encode_images(images)):
            row[plan.image_vector.name] = vector
    return [Document(i, f, v) for i, f, v in zip(ids, fields, vectors)]


def _field(record: Record, name: str) -> str:
    value = record.value(name)
    return "" if value is None else str(value).strip()


def _required(record: Record, name: str) -> str:
    """A field that must hold a value: the id, an image path."""
    if not (value := _field(record, name)):
        raise InputError(f"{record.where()}: field '{name}' is empty")
    return value


def _text(record: Record, names: tuple[str, ...]) -> str:
    """The text fields joined by spaces; one of several may be empty (a paper without a title), not all."""
    text = " ".join(part for part in (_field(record, name) for name in names) if part)
    if not text:
        raise InputError(f"{record.where()}: nothing to embed: {', '.join(repr(n) for n in names)} empty")
    return text


def _document_fields(spec: IndexSpec, record: Record) -> dict[str, Any]:
    """Every input column becomes a document field; indexed NUMERIC and GEO values are checked first,
    because Redis silently leaves a document out of the index when one of them does not parse."""
    types = spec.field_types()
    out: dict[str, Any] = {}
    for name, value in record.data.items():
        if value is None or value == "" or any(name == v.name for v in spec.vectors):
            continue
        kind = types.get(name)
        if kind is FieldType.numeric:
            out[name] = _number(record, name, value)
        elif kind is FieldType.geo:
            out[name] = _geo(record, name, value)
        elif kind is FieldType.tag and isinstance(value, list):
            out[name] = value if spec.storage is Storage.json else ",".join(map(str, value))
        elif spec.storage is Storage.json:
            out[name] = value
        else:
            out[name] = value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else json.dumps(value)
    return out


def _number(record: Record, name: str, value: Any) -> int | float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{record.where()}: field '{name}' is NUMERIC but holds {value!r}") from None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _geo(record: Record, name: str, value: Any) -> str:
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        lon, lat = (float(p) for p in parts)
        if not (-180 <= lon <= 180 and -85.05112878 <= lat <= 85.05112878):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"{record.where()}: field '{name}' is GEO and needs 'longitude,latitude', not {value!r}") from None
    return f"{lon},{lat}"
