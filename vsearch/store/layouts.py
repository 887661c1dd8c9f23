"""How a document is laid out in Redis: one class per storage type, so that nothing else asks which one it is.

- HASH: every field a hash field; vectors as raw bytes of the index's element type; the fingerprint as JSON bytes.
  A rewrite deletes the key first, so no field of an older version survives.
- JSON: one JSON document (`JSON.SET key $`), vectors as arrays of numbers, fields under `$.name`; a rewrite
  replaces the whole document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, cast

import orjson

from vsearch.errors import StoreError
from vsearch.schema import DataType, IndexSpec, Storage, VectorField
from vsearch.stems import STEMS_FIELD, stemmed_text
from vsearch.store.vectors import bytes_vector, vector_bytes

if TYPE_CHECKING:
    import numpy as np
    from redis.client import Pipeline


FINGERPRINT_FIELD = "__vsearch_fp"
# A passage-indexed document's passages: per vector field, the text fields it embedded (joined by a space, as
# `fields.joined_text` joins them) and each passage's [start, end) character offsets into that joined text.
PASSAGES_FIELD = "__vsearch_passages"


@dataclass(frozen=True)
class Document:
    id: str
    fields: dict[str, Any]
    vectors: dict[str, np.ndarray]
    fingerprint: dict[str, str] = field(default_factory=dict)
    where: str = ""  # the input record it came from, for messages
    new: bool = False  # known not to exist yet: nothing older to delete first
    # vector name -> (the text fields it embedded, each passage's [start, end)), for passage-indexed fields
    passages: dict[str, tuple[tuple[str, ...], list[tuple[int, int]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    """A document exactly as stored, nothing converted: what an export writes and a restore writes back.

    `fields` are the document's own fields (HASH: text, or the bytes where a value is not UTF-8; JSON: the JSON
    values); `vectors` HASH: the bytes in the field's element type; JSON: the array of numbers (a passage field:
    one array a passage); `passages` a passage field's text fields and spans (PASSAGES_FIELD). The stems field is
    left out: it is made again from the TEXT fields when the document is written.
    """

    id: str
    fields: dict[str, Any]
    vectors: dict[str, Any]
    fingerprint: dict[str, str]
    passages: dict[str, Any] = field(default_factory=dict)


def _fingerprint_of(value: Any) -> dict[str, str]:
    """A stored fingerprint (HASH: its JSON bytes; JSON: the object); {} where it is none vsearch wrote."""
    if isinstance(value, bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _stems(spec: IndexSpec, fields: dict[str, Any]) -> str:
    return stemmed_text(fields[name] for name in spec.text_fields if name in fields)


class HashLayout:
    storage = Storage.hash

    def field_path(self, name: str) -> list[str]:
        """How FT.CREATE and RETURN name a field."""
        return [name]

    def vector_path(self, vector: VectorField) -> list[str]:
        if vector.passages is not None:  # checked at create-index; kept here as the layout's own guarantee
            raise StoreError("passages need JSON storage: a hash field holds one vector")
        return [vector.name]

    def write(self, pipe: Pipeline, spec: IndexSpec, key: str, doc: Document) -> int:
        """Queue the commands that write `doc` whole; returns how many were queued."""
        types = {v.name: v.datatype for v in spec.vectors}
        mapping: dict[Any, Any] = dict(doc.fields)
        if spec.stemmed_text:
            mapping[STEMS_FIELD] = _stems(spec, doc.fields)
        mapping.update({name: vector_bytes(vec, types[name]) for name, vec in doc.vectors.items()})
        if doc.fingerprint:
            # orjson: a tenth of the time of json.dumps, which took 4% of a load of given vectors
            mapping[FINGERPRINT_FIELD] = orjson.dumps(doc.fingerprint, option=orjson.OPT_SORT_KEYS)
        if not doc.new:
            pipe.delete(key)  # no field of an older version may survive
        pipe.hset(key, mapping=mapping)
        return 1 if doc.new else 2

    def write_batch(self, spec: IndexSpec, keys: Sequence[str], docs: Sequence[Document]
                    ) -> tuple[list[tuple[Any, ...]], list[Document]]:
        """The commands `write` queues for each document, as one list, and the document each command writes."""
        types = {v.name: v.datatype for v in spec.vectors}
        commands: list[tuple[Any, ...]] = []
        owners: list[Document] = []
        for key, doc in zip(keys, docs):
            mapping: dict[Any, Any] = dict(doc.fields)  # the mapping `write` builds, in its order
            if spec.stemmed_text:
                mapping[STEMS_FIELD] = _stems(spec, doc.fields)
            for name, vec in doc.vectors.items():
                mapping[name] = vector_bytes(vec, types[name])
            if doc.fingerprint:
                mapping[FINGERPRINT_FIELD] = orjson.dumps(doc.fingerprint, option=orjson.OPT_SORT_KEYS)
            if not doc.new:
                commands.append(("DEL", key))
                owners.append(doc)
            commands.append(("HSET", key, *chain.from_iterable(mapping.items())))
            owners.append(doc)
        return commands, owners

    def get_fingerprint(self, pipe: Pipeline, key: str) -> None:
        pipe.hget(key, FINGERPRINT_FIELD)

    def fingerprint(self, raw: Any) -> dict[str, str] | None:
        """The stored fingerprint from its reply; None where the document has none (or one not vsearch's)."""
        if raw is None or isinstance(raw, Exception):
            return None
        try:
            return _fingerprint_dict(json.loads(raw))
        except ValueError:
            return {}

    def get_vector(self, pipe: Pipeline, key: str, vector: VectorField) -> None:
        pipe.hget(key, vector.name)

    def vector(self, raw: Any, vector: VectorField) -> np.ndarray | None:
        if raw is None or isinstance(raw, Exception):
            return None
        return bytes_vector(cast(bytes, raw), vector.datatype)

    def get_all(self, pipe: Pipeline, key: str) -> None:
        pipe.hgetall(key)

    def copy(self, pipe: Pipeline, body: Any, key: str, target: IndexSpec,
             conversions: dict[str, tuple[DataType, DataType]]) -> None:
        """Queue the write of a body read by `get_all` under `target`'s schema (element types, stems)."""
        mapping = cast(dict[bytes, bytes], body)
        for name, (before, after) in conversions.items():
            raw = mapping.get(name.encode())
            if raw is not None:
                mapping[name.encode()] = vector_bytes(bytes_vector(raw, before), after)
        mapping.pop(STEMS_FIELD.encode(), None)
        if target.stemmed_text:
            texts = (mapping[n.encode()].decode("utf-8", "replace") for n in target.text_fields if n.encode() in mapping)
            mapping[STEMS_FIELD.encode()] = stemmed_text(texts).encode()
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]

    def stored(self, doc_id: str, reply: Any, vector_names: set[str]) -> StoredDocument | None:
        """A `get_all` reply as the document it holds, nothing converted."""
        fields: dict[str, Any] = {}
        vectors: dict[str, Any] = {}
        fingerprint: dict[str, str] = {}
        for raw_name, value in cast(dict[bytes, bytes], reply).items():
            name = raw_name.decode("utf-8", "surrogateescape")  # not UTF-8: the caller tells (records.is_unicode)
            if name in vector_names:
                vectors[name] = value
            elif name == FINGERPRINT_FIELD:
                fingerprint = _fingerprint_of(value)
            elif name != STEMS_FIELD:
                try:
                    fields[name] = value.decode("utf-8")
                except UnicodeDecodeError:
                    fields[name] = value
        return StoredDocument(doc_id, fields, vectors, fingerprint)

    def write_stored(self, pipe: Pipeline, spec: IndexSpec, key: str, doc: StoredDocument) -> int:
        # In `write`'s order (fields, stems, vectors, fingerprint): Redis keeps a small hash's fields in the order
        # written, so a restored document reads back as the original did.
        mapping: dict[Any, Any] = dict(doc.fields)
        if spec.stemmed_text:
            texts = (doc.fields[name] for name in spec.text_fields if name in doc.fields)
            mapping[STEMS_FIELD] = stemmed_text(t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts)
        mapping.update(doc.vectors)
        if doc.fingerprint:
            mapping[FINGERPRINT_FIELD] = orjson.dumps(doc.fingerprint, option=orjson.OPT_SORT_KEYS)
        pipe.delete(key)  # no field of an older version may survive
        pipe.hset(key, mapping=mapping)
        return 2

    def hit_fields(self, pairs: dict[str, bytes], hidden: set[str], skipped: set[str], distance: str) -> dict[str, Any]:
        """A search reply's fields as values (`skipped`: vsearch's own and the vectors, left out)."""
        return {name: value.decode("utf-8", errors="replace") for name, value in pairs.items() if name not in skipped}


class JsonLayout:
    storage = Storage.json

    def field_path(self, name: str) -> list[str]:
        return [f"$.{name}", "AS", name]

    def vector_path(self, vector: VectorField) -> list[str]:
        """A passage-indexed field holds a list of vectors: RediSearch indexes `$.name[*]` as one multi-value
        VECTOR field, and KNN returns each document once, by its closest vector."""
        if vector.passages is not None:
            return [f"$.{vector.name}[*]", "AS", vector.name]
        return self.field_path(vector.name)

    def write(self, pipe: Pipeline, spec: IndexSpec, key: str, doc: Document) -> int:
        pipe.execute_command("JSON.SET", key, "$", self._body(spec, doc))
        return 1

    def write_batch(self, spec: IndexSpec, keys: Sequence[str], docs: Sequence[Document]
                    ) -> tuple[list[tuple[Any, ...]], list[Document]]:
        """The commands `write` queues for each document, as one list, and the document each command writes."""
        return [("JSON.SET", key, "$", self._body(spec, doc)) for key, doc in zip(keys, docs)], list(docs)

    def _body(self, spec: IndexSpec, doc: Document) -> str:
        import numpy as np

        body: dict[str, Any] = dict(doc.fields)
        if spec.stemmed_text:
            body[STEMS_FIELD] = _stems(spec, doc.fields)
        # tolist(): float32 values as Python floats, rows of a passage field as lists (a list of vectors). A passage
        # field always holds a list: a vector given whole (--vector-column) is a list of one.
        passage_fields = {v.name for v in spec.vectors if v.passages is not None}
        for name, vec in doc.vectors.items():
            array = np.asarray(vec, dtype=np.float32)
            body[name] = (array[None] if name in passage_fields and array.ndim == 1 else array).tolist()
        if doc.fingerprint:
            body[FINGERPRINT_FIELD] = doc.fingerprint
        if doc.passages:
            body[PASSAGES_FIELD] = {name: {"fields": list(fields), "spans": [list(span) for span in spans]}
                                    for name, (fields, spans) in doc.passages.items()}
        try:
            return json.dumps(body, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:  # the load's checks make this unreachable; keep the guarantee local
            raise StoreError(f"{doc.where or doc.id}: cannot store as JSON ({exc})") from exc

    def get_fingerprint(self, pipe: Pipeline, key: str) -> None:
        pipe.execute_command("JSON.GET", key, f"$.{FINGERPRINT_FIELD}")

    def fingerprint(self, raw: Any) -> dict[str, str] | None:
        if raw is None or isinstance(raw, Exception) or raw in (b"[]", "[]"):
            return None
        try:
            values = json.loads(raw)
        except ValueError:
            return {}
        return _fingerprint_dict(values[0]) if isinstance(values, list) and values else {}

    def get_vector(self, pipe: Pipeline, key: str, vector: VectorField) -> None:
        pipe.execute_command("JSON.GET", key, f"$.{vector.name}")

    def vector(self, raw: Any, vector: VectorField) -> np.ndarray | None:
        if raw is None or isinstance(raw, Exception):
            return None
        values = json.loads(raw)
        if not values:
            return None
        import numpy as np

        return np.asarray(values[0], dtype=np.float32)

    def get_all(self, pipe: Pipeline, key: str) -> None:
        pipe.execute_command("JSON.GET", key, "$")

    def copy(self, pipe: Pipeline, body: Any, key: str, target: IndexSpec,
             conversions: dict[str, tuple[DataType, DataType]]) -> None:
        document = json.loads(body)[0]  # vectors are numbers in JSON: the element type is the index's concern
        document.pop(STEMS_FIELD, None)
        if target.stemmed_text:
            document[STEMS_FIELD] = _stems(target, document)
        pipe.execute_command("JSON.SET", key, "$", json.dumps(document, ensure_ascii=False))

    def stored(self, doc_id: str, reply: Any, vector_names: set[str]) -> StoredDocument | None:
        found = orjson.loads(reply)
        body = found[0] if isinstance(found, list) and found else None
        if not isinstance(body, dict):
            return None
        fingerprint = body.pop(FINGERPRINT_FIELD, None)
        body.pop(STEMS_FIELD, None)
        passages = body.pop(PASSAGES_FIELD, None)
        vectors = {name: body.pop(name) for name in list(body) if name in vector_names}
        return StoredDocument(doc_id, body, vectors, _fingerprint_of(fingerprint),
                              passages if isinstance(passages, dict) else {})

    def write_stored(self, pipe: Pipeline, spec: IndexSpec, key: str, doc: StoredDocument) -> int:
        # In `write`'s order: Redis keeps a JSON document's members in the order written.
        body: dict[str, Any] = dict(doc.fields)
        if spec.stemmed_text:
            body[STEMS_FIELD] = _stems(spec, doc.fields)
        body.update(doc.vectors)
        if doc.fingerprint:
            body[FINGERPRINT_FIELD] = doc.fingerprint
        if doc.passages:
            body[PASSAGES_FIELD] = doc.passages
        try:
            pipe.execute_command("JSON.SET", key, "$", json.dumps(body, allow_nan=False, ensure_ascii=False))
        except (TypeError, ValueError) as exc:  # the restore's checks make this unreachable
            raise StoreError(f"document {doc.id!r}: cannot store as JSON ({exc})") from exc
        return 1

    def hit_fields(self, pairs: dict[str, bytes], hidden: set[str], skipped: set[str], distance: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "$" in pairs:  # the whole document, when no RETURN named fields
            fields = {k: v for k, v in _json_value(pairs.pop("$")).items() if k not in hidden}
        for name, value in pairs.items():
            if name in skipped:
                continue
            if name != distance:
                try:
                    fields[name] = _json_value(value)  # RETURN of a JSON path gives the JSON value
                    continue
                except ValueError:
                    pass
            fields[name] = value.decode("utf-8", errors="replace")
        return fields


def _json_value(raw: bytes) -> Any:
    """A JSON reply parsed by orjson: a hit's whole document holds every passage vector as numbers (~470 KiB a
    QMSum meeting), which the standard library's parser reads ~8x slower (bench/hit_parsing.py), half of a text
    query's time on a passage index. orjson refuses what the standard parser takes (integers past 64 bits): those
    fall back to it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _fingerprint_dict(value: Any) -> dict[str, str]:
    """A parsed fingerprint object as strings; {} for one written by something else (treated as unknown, so its
    document is embedded again)."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


LAYOUTS = {Storage.hash: HashLayout(), Storage.json: JsonLayout()}


def layout_of(spec: IndexSpec) -> HashLayout | JsonLayout:
    return LAYOUTS[spec.storage]
