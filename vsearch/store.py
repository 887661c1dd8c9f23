"""The Redis adapter: connections, FT.CREATE schemas, keys, vector bytes, writes and KNN queries.

Everything above this module sees dataclasses (`IndexSpec`, `Document`, `Hit`), never raw replies.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import redis

from vsearch.config import Settings, check_redis_url, redact_url
from vsearch.errors import IndexNotFound, StoreError, UsageError
from vsearch.schema import Algorithm, DataType, Field, FieldType, IndexSpec, Metric, Storage, VectorField

META_KEY = "vsearch:index:{name}"  # where vsearch records an index's spec and models
DISTANCE = "__vsearch_distance"
NUMPY_TYPES = {DataType.float32: np.float32, DataType.float64: np.float64, DataType.float16: np.float16}

# RediSearch's default English stopwords. A full-text union whose leading terms are stopwords crashes
# RediSearch 2.10 under DIALECT 2, so filters get those terms quoted before they reach the server.
STOPWORDS = frozenset(
    "a is the an and are as at be but by for if in into it no not of on or such that their then there these "
    "they this to was will with".split()
)


@dataclass(frozen=True)
class Document:
    id: str
    fields: dict[str, str | int | float]
    vectors: dict[str, np.ndarray]


@dataclass(frozen=True)
class Hit:
    rank: int
    id: str
    score: float
    fields: dict[str, Any]


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured server (starting the embedded one if needed) that has RediSearch."""
    if settings.embedded:
        from vsearch import server

        socket = server.ensure_running(settings.home)
        client = server.client(settings.home, socket_connect_timeout=5, protocol=2)
        where = f"the embedded server ({socket})"
    else:
        url = settings.redis_url or ""
        where = redact_url(url)
        check_redis_url(url)
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=5, protocol=2)
        except ValueError as exc:
            raise StoreError(f"invalid Redis URL {where}: {exc}") from exc
    try:
        client.execute_command("FT._LIST")
    except redis.AuthenticationError as exc:
        raise StoreError(f"Redis at {where} refused the credentials: {exc}") from exc
    except redis.ResponseError as exc:
        if "unknown command" in str(exc).lower():
            raise StoreError(f"Redis at {where} has no search module: use Redis Stack or Redis 8, "
                             "or leave --redis-url unset to use vsearch's embedded server") from exc
        raise StoreError(f"Redis at {where}: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise StoreError(f"cannot reach Redis at {where}: {_reason(exc)}") from exc
    except redis.RedisError as exc:  # e.g. a rediss:// URL with a bad TLS option
        raise StoreError(f"cannot use Redis at {where}: {_reason(exc)}") from exc
    return client


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Driver errors become one StoreError line that says what vsearch was doing."""
    try:
        yield
    except redis.ResponseError as exc:
        raise StoreError(f"{what}: Redis said: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreError(f"{what}: lost the connection to Redis ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# ---------------------------------------------------------------------------------------------------
# Index definitions


def index_exists(client: redis.Redis, name: str) -> bool:
    with translate_errors("cannot list indexes"):
        names = client.execute_command("FT._LIST")
    return name in {n.decode() if isinstance(n, bytes) else n for n in names}


def create_index(client: redis.Redis, spec: IndexSpec) -> None:
    if index_exists(client, spec.name):
        raise StoreError(f"index '{spec.name}' already exists: drop it with `vsearch drop-index {spec.name}`, "
                         "or pick another name")
    if not spec.vectors:
        raise UsageError("an index needs at least one vector field")
    with translate_errors(f"cannot create index '{spec.name}'"):
        client.execute_command("FT.CREATE", *create_args(spec))
        client.set(META_KEY.format(name=spec.name), spec.to_json())


def create_args(spec: IndexSpec) -> list[str | int | float]:
    args: list[str | int | float] = [spec.name, "ON", spec.storage.value.upper(), "PREFIX", 1, spec.prefix, "SCHEMA"]
    for f in spec.fields:
        args += [*_field_path(spec, f.name), f.type.value.upper()]
    for v in spec.vectors:
        attrs: list[str | int | float] = ["TYPE", v.datatype.value.upper(), "DIM", v.dim,
                                          "DISTANCE_METRIC", v.metric.value.upper()]
        for key, value in v.params.items():
            attrs += [key.upper(), value]
        args += [*_field_path(spec, v.name), "VECTOR", v.algorithm.value.upper(), len(attrs), *attrs]
    return args


def _field_path(spec: IndexSpec, name: str) -> list[str]:
    return [f"$.{name}", "AS", name] if spec.storage is Storage.json else [name]


def drop_index(client: redis.Redis, name: str, delete_documents: bool) -> None:
    if not index_exists(client, name):
        raise IndexNotFound(name)
    with translate_errors(f"cannot drop index '{name}'"):
        client.execute_command("FT.DROPINDEX", name, *(["DD"] if delete_documents else []))
        client.delete(META_KEY.format(name=name))


def get_spec(client: redis.Redis, name: str) -> IndexSpec:
    """The index's spec: as vsearch recorded it, or read off FT.INFO for an index made elsewhere."""
    if not index_exists(client, name):
        raise IndexNotFound(name)
    with translate_errors(f"cannot read index '{name}'"):
        recorded = client.get(META_KEY.format(name=name))
        if recorded:
            return IndexSpec.from_dict(json.loads(recorded), f"the record of index '{name}'")
        info = _decode(client.execute_command("FT.INFO", name))
    return _spec_from_info(name, info)


def _spec_from_info(name: str, info: list[Any]) -> IndexSpec:
    definition = _after(info, "index_definition")
    fields, vectors = [], []
    for attribute in _after(info, "attributes"):
        kind = str(_after(attribute, "type")).lower()
        attribute_name = str(_after(attribute, "attribute"))
        if kind == "vector":
            vectors.append(VectorField(
                name=attribute_name, embeds="image" if "image" in attribute_name else "text", model="",
                dim=int(_after(attribute, "dim")), algorithm=Algorithm(str(_after(attribute, "algorithm")).lower()),
                metric=Metric(str(_after(attribute, "distance_metric")).lower()),
                datatype=DataType(str(_after(attribute, "data_type")).lower()),
            ))
        elif kind in FieldType.__members__:
            fields.append(Field(attribute_name, FieldType(kind)))
    prefixes = _after(definition, "prefixes") or [""]
    return IndexSpec(name=name, prefix=str(prefixes[0]), storage=Storage(str(_after(definition, "key_type")).lower()),
                     fields=tuple(fields), vectors=tuple(vectors))


def count_documents(client: redis.Redis, name: str) -> int:
    with translate_errors(f"cannot read index '{name}'"):
        return int(float(_after(_decode(client.execute_command("FT.INFO", name)), "num_docs")))


def _after(reply: list[Any], key: str) -> Any:
    """The value after `key` in a RESP2 reply list, where flags without values can break plain pairing."""
    for i, item in enumerate(reply[:-1]):
        if isinstance(item, str) and item.lower() == key:
            return reply[i + 1]
    raise StoreError(f"unexpected FT.INFO reply: no {key}")


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------
# Vectors and documents


def vector_bytes(vector: np.ndarray, datatype: DataType) -> bytes:
    """A vector as the little-endian bytes RediSearch reads for a HASH field of this type."""
    vector = np.asarray(vector, dtype=np.float32)
    if datatype is DataType.bfloat16:
        # bfloat16 is the top half of a float32; round to nearest even instead of truncating.
        bits = vector.astype("<f4").view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    return vector.astype(np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")).tobytes()


def bytes_vector(raw: bytes, datatype: DataType) -> np.ndarray:
    if datatype is DataType.bfloat16:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")).astype(np.float32)


def write_documents(client: redis.Redis, spec: IndexSpec, documents: Sequence[Document]) -> None:
    """Write a batch as one MULTI/EXEC: after a failure, either all of it is in Redis or none of it.

    A HASH document is deleted before it is written, so a reload never leaves fields of an older version.
    """
    types = {v.name: v.datatype for v in spec.vectors}
    pipe = client.pipeline(transaction=True)
    for doc in documents:
        key = spec.prefix + doc.id
        if spec.storage is Storage.json:
            body: dict[str, Any] = dict(doc.fields)
            body.update({name: [float(x) for x in vec.astype(np.float32)] for name, vec in doc.vectors.items()})
            pipe.execute_command("JSON.SET", key, "$", json.dumps(body))
        else:
            mapping: dict[Any, Any] = dict(doc.fields)
            mapping.update({name: vector_bytes(vec, types[name]) for name, vec in doc.vectors.items()})
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
    with translate_errors(f"cannot write to index '{spec.name}'"):
        pipe.execute()


def document_vector(client: redis.Redis, spec: IndexSpec, doc_id: str, vector: VectorField) -> np.ndarray:
    key = spec.prefix + doc_id
    with translate_errors(f"cannot read document '{doc_id}'"):
        if spec.storage is Storage.json:
            raw = client.execute_command("JSON.GET", key, f"$.{vector.name}")
            values = json.loads(raw)[0] if raw else None
            found = None if values is None else np.asarray(values, dtype=np.float32)
        else:
            data = client.hget(key, vector.name)
            found = None if data is None else bytes_vector(cast(bytes, data), vector.datatype)
    if found is None:
        others = [v.name for v in spec.vectors if v.name != vector.name]
        hint = f"; to search another vector field: --field {others[0]}" if others else ""
        raise StoreError(f"document '{doc_id}' not found in index '{spec.name}' (no {vector.name} at key {key}){hint}")
    return found


# ---------------------------------------------------------------------------------------------------
# Queries


def safe_filter(expression: str) -> str:
    """The filter with stopwords in unions quoted, which keeps their meaning and avoids the DIALECT 2 crash.

    Tag sets `{...}`, ranges `[...]`, quoted phrases and `@field` names are left exactly as written.
    """
    out: list[str] = []
    closing = {"{": "}", "[": "]", '"': '"', "'": "'"}
    i = 0
    while i < len(expression):
        char = expression[i]
        if char == "\\":
            out.append(expression[i:i + 2])
            i += 2
        elif char in closing:
            end = _closing(expression, i + 1, closing[char])
            out.append(expression[i:end])
            i = end
        elif char == "@" or char.isalpha() or char.isdigit() or char == "_":
            match = re.match(r"@?[\w.$*%-]+", expression[i:])
            word = match.group(0) if match else char
            after = expression[i + len(word):].lstrip()[:1]
            before = "".join(out).rstrip()[-1:]
            # Only union members: in an intersection a bare stopword is dropped, as RediSearch means it to be.
            quoted = word.lower() in STOPWORDS and after != ":" and "|" in (before, after)
            out.append(f'"{word}"' if quoted else word)
            i += len(word)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _closing(text: str, start: int, close: str) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == close:
            return i + 1
        i += 1
    return len(text)


def search(
    client: redis.Redis,
    spec: IndexSpec,
    vector_field: VectorField,
    vector: np.ndarray,
    k: int,
    filter_expression: str | None = None,
    ef_runtime: int | None = None,
    exclude_id: str | None = None,
) -> list[Hit]:
    """KNN top-k over one vector field, after an optional RediSearch pre-filter; best hit first."""
    if vector.shape != (vector_field.dim,):
        raise UsageError(f"the query vector has {vector.size} dimensions, but {vector_field.name} in index "
                         f"'{spec.name}' has {vector_field.dim}")
    wanted = k + (1 if exclude_id is not None else 0)
    prefilter = f"({safe_filter(filter_expression)})" if filter_expression and filter_expression.strip() else "*"
    ef = " EF_RUNTIME $EF" if ef_runtime else ""
    query = f"{prefilter}=>[KNN $K @{vector_field.name} $BLOB{ef} AS {DISTANCE}]"
    params: list[Any] = ["K", wanted, "BLOB", vector_bytes(vector, vector_field.datatype)]
    if ef_runtime:
        params += ["EF", ef_runtime]
    with translate_errors(f"query on index '{spec.name}' failed"):
        reply = client.execute_command(
            "FT.SEARCH", spec.name, query, "PARAMS", len(params), *params,
            "SORTBY", DISTANCE, "ASC", "LIMIT", 0, wanted, "DIALECT", 2,
        )
    hits: list[Hit] = []
    vector_names = {v.name for v in spec.vectors}
    for key, raw in zip(reply[1::2], reply[2::2]):
        doc_id = key.decode()[len(spec.prefix):]
        if doc_id == exclude_id:
            continue
        fields = _document_fields(spec, raw, vector_names)
        distance = float(fields.pop(DISTANCE))
        hits.append(Hit(len(hits) + 1, doc_id, round(_score(vector_field.metric, distance), 6), fields))
    return hits[:k]


def _document_fields(spec: IndexSpec, raw: list[bytes], vector_names: set[str]) -> dict[str, Any]:
    pairs = dict(zip((k.decode() for k in raw[::2]), raw[1::2]))
    fields: dict[str, Any] = {}
    if spec.storage is Storage.json and "$" in pairs:
        fields = {k: v for k, v in json.loads(pairs.pop("$")).items() if k not in vector_names}
    for name, value in pairs.items():
        if name not in vector_names:
            fields[name] = value.decode("utf-8", errors="replace")
    return fields


def _score(metric: Metric, distance: float) -> float:
    """RediSearch returns distances; report what a user compares. See `vsearch query --help`."""
    if metric is Metric.l2:
        return math.sqrt(max(distance, 0.0))  # Redis gives the squared Euclidean distance
    return 1.0 - distance  # COSINE: cosine similarity; IP: the inner product
