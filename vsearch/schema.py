"""What an index is: its fields, vector fields and the models behind them, as plain dataclasses.

A spec can come from command-line options, from a schema file (YAML or JSON, in RedisVL's layout), or
from Redis, where vsearch records it beside the index so that `load` and `query` know which model made
the vectors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from vsearch.errors import InputError, UsageError
from vsearch.passages import PassageSettings

TEXT_VECTOR = "text_vector"
IMAGE_VECTOR = "image_vector"


class Algorithm(str, Enum):
    flat = "flat"
    hnsw = "hnsw"


class Metric(str, Enum):
    cosine = "cosine"
    ip = "ip"
    l2 = "l2"


class DataType(str, Enum):
    float32 = "float32"
    float64 = "float64"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Storage(str, Enum):
    hash = "hash"
    json = "json"


class FieldType(str, Enum):
    tag = "tag"
    text = "text"
    numeric = "numeric"
    geo = "geo"


# Index-time parameters RediSearch takes for each algorithm, with the types the values must have.
ALGORITHM_PARAMS: dict[Algorithm, dict[str, type]] = {
    Algorithm.flat: {"initial_cap": int, "block_size": int},
    Algorithm.hnsw: {"initial_cap": int, "m": int, "ef_construction": int, "ef_runtime": int, "epsilon": float},
}


# vsearch's EF_RUNTIME for new HNSW indexes, where RediSearch's own is 10: on SciFact (5,183 abstracts, 300
# claims) KNN 10 found 88.3% of the exact top 10 at 10, 98.7% at 50 and 99.6% at 100, for 2.0 -> 2.7 ms a
# query (bench/report.py --part quality). `--ef-runtime` at create-index or per query still sets it.
HNSW_DEFAULTS: dict[str, int | float] = {"ef_runtime": 100}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType


@dataclass(frozen=True)
class VectorField:
    name: str
    embeds: str  # "text" or "image": which input the model turns into this vector
    model: str
    dim: int
    algorithm: Algorithm = Algorithm.hnsw
    metric: Metric = Metric.cosine
    datatype: DataType = DataType.float32
    params: dict[str, int | float] = field(default_factory=dict)
    # A text field whose texts are split into passages that fit the model's window, each embedded (vsearch.passages):
    # the field holds a list of vectors, and a document ranks by its best passage. None: one vector, the text cut
    # where the model stops reading (indexes made before passages keep that).
    passages: PassageSettings | None = None


@dataclass(frozen=True)
class IndexSpec:
    name: str
    prefix: str
    storage: Storage = Storage.hash
    fields: tuple[Field, ...] = ()
    vectors: tuple[VectorField, ...] = ()
    # vsearch serves NAME as an alias of the RediSearch index NAME~GENERATION, so that a rebuild can swap in a
    # new generation atomically; 0 means NAME is itself the index (one made by another tool).
    generation: int = 0
    # The index holds vsearch.stems.STEMS_FIELD, the stems of its TEXT fields, which text and hybrid mode rank
    # by. Indexes made before it, or by another tool, do not: their text mode ranks the words as written.
    stemmed_text: bool = False
    # What Redis splits TAG values at ("": nothing). Its default for HASH, ',', splits 'Shoes, Boots' into two
    # tags that no --where can match whole; vsearch's indexes use a control character no one types (TAG_SEPARATOR).
    # Indexes recorded before keep theirs until a rebuild.
    tag_separator: str = ","

    @property
    def physical(self) -> str:
        """The RediSearch index that holds the documents now."""
        return f"{self.name}~{self.generation}" if self.generation else self.name

    def vector(self, embeds: str) -> VectorField | None:
        return next((v for v in self.vectors if v.embeds == embeds), None)

    def vector_named(self, name: str) -> VectorField:
        for vector in self.vectors:
            if vector.name == name:
                return vector
        names = ", ".join(v.name for v in self.vectors) or "none"
        raise UsageError(f"index '{self.name}' has no vector field '{name}' (it has: {names})")

    @property
    def text_fields(self) -> list[str]:
        """The names of the TEXT fields: what full-text search reads, and what the stems field is made of."""
        return [f.name for f in self.fields if f.type is FieldType.text]

    def with_stems(self) -> IndexSpec:
        """This spec as vsearch creates an index now: the stems field if it has TEXT fields (see vsearch.stems),
        and TAG values split at TAG_SEPARATOR only."""
        return replace(self, stemmed_text=bool(self.text_fields), tag_separator=TAG_SEPARATOR)

    def field_types(self) -> dict[str, FieldType]:
        return {f.name: f.type for f in self.fields}

    def to_dict(self) -> dict[str, Any]:
        """RedisVL's schema layout, with vsearch's `embeds` and `model` among a vector field's attrs."""
        fields: list[dict[str, Any]] = [{"name": f.name, "type": f.type.value} for f in self.fields]
        for v in self.vectors:
            attrs = {"algorithm": v.algorithm.value, "dims": v.dim, "distance_metric": v.metric.value,
                     "datatype": v.datatype.value, "embeds": v.embeds, "model": v.model, **v.params}
            if v.passages is not None:
                attrs["passages"] = v.passages.to_dict()
            fields.append({"name": v.name, "type": "vector", "attrs": attrs})
        index: dict[str, Any] = {"name": self.name, "prefix": self.prefix, "storage_type": self.storage.value}
        if self.generation:
            index["generation"] = self.generation
        if self.stemmed_text:
            index["stemmed_text"] = True
        if self.tag_separator == TAG_SEPARATOR:
            index["tag_separator"] = self.tag_separator
        return {"index": index, "fields": fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> IndexSpec:
        try:
            index = data["index"]
            fields, vectors = [], []
            for item in data.get("fields", []):
                kind = str(item["type"]).lower()
                if kind != "vector":
                    fields.append(Field(str(item["name"]), FieldType(kind)))
                    continue
                attrs = {str(k).lower(): v for k, v in dict(item.get("attrs", {})).items()}
                algorithm = Algorithm(str(attrs.pop("algorithm", "hnsw")).lower())
                passages = attrs.pop("passages", None)
                name = str(item["name"])
                vectors.append(VectorField(
                    name=name,
                    embeds=str(attrs.pop("embeds", "image" if "image" in name else "text")),
                    model=str(attrs.pop("model", "")),
                    dim=int(attrs.pop("dims")),
                    algorithm=algorithm,
                    metric=Metric(str(attrs.pop("distance_metric", "cosine")).lower()),
                    datatype=DataType(str(attrs.pop("datatype", "float32")).lower()),
                    params=check_params(algorithm, attrs),
                    passages=PassageSettings.from_dict(passages) if passages is not None else None,
                ))
            name = str(index["name"])
            return cls(name=name, prefix=str(index.get("prefix", f"{name}:")),
                       storage=Storage(str(index.get("storage_type", "hash")).lower()),
                       fields=tuple(fields), vectors=tuple(vectors), generation=int(index.get("generation", 0)),
                       stemmed_text=index.get("stemmed_text") is True,
                       tag_separator=_separator(index.get("tag_separator", _legacy_separator(index))))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{where}: not a valid index schema ({_describe(exc)})") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_name(self, name: str) -> IndexSpec:
        return replace(self, name=name)


TAG_SEPARATOR = "\x1f"  # ASCII's unit separator: a control character, refused in TAG values at load


def _separator(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1:
        raise ValueError(f"tag_separator must be one character, not {value!r}")
    return value


def _legacy_separator(index: dict[str, Any]) -> str:
    """What an index recorded before `tag_separator` splits at: RediSearch's default, ',' for HASH, none for JSON."""
    return "" if str(index.get("storage_type", "hash")).lower() == "json" else ","


def check_params(algorithm: Algorithm, params: dict[str, Any]) -> dict[str, int | float]:
    """Algorithm parameters by lower-case name, each of the type RediSearch wants, or UsageError."""
    allowed = ALGORITHM_PARAMS[algorithm]
    checked: dict[str, int | float] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key not in allowed:
            raise UsageError(f"{key.upper()} is not a parameter of {algorithm.value.upper()} indexes "
                             f"(it takes {', '.join(k.upper() for k in allowed)})")
        try:
            number = allowed[key](value)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf)
            raise UsageError(f"{key.upper()} must be a number, not {value!r}") from exc
        if not math.isfinite(number) or number <= 0:  # NaN passes `<= 0`, and JSON cannot even write it
            raise UsageError(f"{key.upper()} must be positive and finite, not {value!r}")
        checked[key] = number
    return checked


def read_schema_file(path: Path) -> IndexSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read schema file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"schema file {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start})") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError or json.JSONDecodeError: both say where
        raise InputError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} ({_describe(exc)})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a schema is a mapping with 'index' and 'fields'")
    return IndexSpec.from_dict(data, str(path))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return " ".join(str(exc).split())
