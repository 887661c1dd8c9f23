"""Index definitions: FT.CREATE from a spec, the alias users query, the recorded spec, FT.INFO figures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, cast

import redis

from vsearch.errors import IndexNotFound, StoreError, UsageError
from vsearch.schema import Algorithm, DataType, Field, FieldType, IndexSpec, Metric, Storage, VectorField
from vsearch.stems import STEMS_FIELD
from vsearch.store.layouts import layout_of
from vsearch.store.connection import after, decode, translate_errors
from vsearch.store.keys import NAMESPACE, check_prefix, overlaps, record_key


@dataclass(frozen=True)
class IndexStats:
    documents: int
    indexing_failures: int  # documents Redis refused to index, since the index was made
    indexing: bool  # a background scan of existing keys is still running
    percent_indexed: float


def _info(client: redis.Redis, name: str) -> list[Any] | None:
    """FT.INFO of an index or alias, or None when there is none by that name."""
    try:
        return decode(client.execute_command("FT.INFO", name))  # type: ignore[return-value]
    except redis.ResponseError as exc:
        if "no such index" in str(exc).lower() or "unknown index" in str(exc).lower():
            return None
        raise StoreError(f"cannot read index '{name}': Redis said: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreError(f"cannot read index '{name}': lost the connection to Redis ({exc})") from exc


def index_exists(client: redis.Redis, name: str) -> bool:
    return _info(client, name) is not None


def _physical_indexes(client: redis.Redis) -> list[str]:
    with translate_errors("cannot list indexes"):
        return [str(n) for n in decode(client.execute_command("FT._LIST"))]  # type: ignore[union-attr]


def _generation_of(physical: str, name: str) -> bool:
    """Whether `physical` is one of index NAME's generations (`NAME~N`), or NAME itself."""
    return physical == name or re.fullmatch(re.escape(name) + r"~\d+", physical) is not None


def _prefixes(info: list[Any]) -> list[str]:
    return [str(p) for p in after(after(info, "index_definition"), "prefixes") or [""]]  # type: ignore[arg-type]


def prefixes_in_use(client: redis.Redis, ignore: str | None = None) -> list[tuple[str, str]]:
    """(prefix, index) for every index on the server, whoever made it; `ignore` skips one name's generations."""
    taken = []
    for physical in _physical_indexes(client):
        if ignore is not None and _generation_of(physical, ignore):
            continue
        info = _info(client, physical)
        if info is None:  # dropped meanwhile
            continue
        owner = re.sub(r"~\d+$", "", physical)
        taken += [(prefix, owner) for prefix in _prefixes(info)]
    return taken


def index_names(client: redis.Redis) -> list[str]:
    """Every index a user can name: vsearch's (by the record it keeps of each) and those made by other tools."""
    with translate_errors("cannot list indexes"):
        recorded = sorted(cast(bytes, key).decode("utf-8", "replace")[len(record_key("")):]
                          for key in client.scan_iter(match=record_key("*"), count=1000))
    physical = _physical_indexes(client)
    foreign = [p for p in physical if not any(_generation_of(p, name) for name in recorded)]
    return sorted(recorded + foreign)


def check_owned(client: redis.Redis, name: str, prefix: str) -> None:
    """Refuse to scan or delete keys under `prefix` unless they can only be index NAME's own.

    An index made by another tool may have no prefix (it indexes every key) or share one with another index:
    deleting by such a prefix would delete other indexes' documents, or the whole database.
    """
    why = None
    if not prefix:
        why = "it has no key prefix, so it indexes every key in the database"
    elif overlaps(prefix, NAMESPACE):
        why = f"its prefix '{prefix}' overlaps vsearch's own keys"
    else:
        shared = [(p, owner) for p, owner in prefixes_in_use(client, ignore=name) if overlaps(prefix, p)]
        if shared:
            why = f"its prefix '{prefix}' overlaps index '{shared[0][1]}' (prefix '{shared[0][0] or '(none)'}')"
    if why:
        raise UsageError(f"vsearch will not delete documents of index '{name}' by prefix: {why}; drop it without "
                         "--delete-documents, and delete its keys yourself")


def stale_generations(client: redis.Redis, name: str, live: str | None) -> list[tuple[str, list[str]]]:
    """(physical index, its prefixes) for every generation of NAME but `live`: left behind by a killed rebuild."""
    found = []
    for physical in _physical_indexes(client):
        if physical != live and physical != name and _generation_of(physical, name):
            info = _info(client, physical)
            if info is not None:
                found.append((physical, _prefixes(info)))
    return found


def drop_stale_generations(client: redis.Redis, name: str, live: str | None) -> None:
    """Drop the generations of NAME that never went live (a killed rebuild's), with their documents."""
    stale = stale_generations(client, name, live)
    _check_all_owned(client, name, [prefix for _, prefixes in stale for prefix in prefixes])
    for physical, prefixes in stale:
        _drop(client, name, physical, prefixes, delete_documents=True)


def _check_all_owned(client: redis.Redis, name: str, prefixes: list[str]) -> None:
    for prefix in prefixes:
        check_owned(client, name, prefix)


def _drop(client: redis.Redis, name: str, physical: str | None, prefixes: list[str], delete_documents: bool) -> None:
    """Drop one generation's RediSearch index (None: it is gone already) and, if asked, every key under its
    prefixes, which the caller has checked are its own. Not FT.DROPINDEX DD: it skips documents Redis failed to
    index."""
    from vsearch.store.documents import delete_prefix

    if physical is not None:
        with translate_errors(f"cannot drop index '{name}'"):
            client.execute_command("FT.DROPINDEX", physical)
    if delete_documents:
        for prefix in prefixes:
            delete_prefix(client, prefix)


def create_index(client: redis.Redis, spec: IndexSpec, replacing: str | None = None) -> IndexSpec:
    """Create the RediSearch index of `spec` (generation 1 unless given) and the alias NAME pointing at it.

    With `replacing`, the alias is left alone: a rebuild makes the next generation beside the live one and
    swaps the alias itself once the new one is checked.
    """
    if not spec.vectors:
        raise UsageError("an index needs at least one vector field")
    spec = replace(spec, generation=spec.generation or 1)
    if replacing is None and index_exists(client, spec.name):
        raise StoreError(f"index '{spec.name}' already exists: drop it with `vsearch drop-index {spec.name}`, "
                         "or pick another name")
    check_prefix(spec.prefix, prefixes_in_use(client, ignore=replacing))
    with translate_errors(f"cannot create index '{spec.name}'"):
        client.execute_command("FT.CREATE", *create_args(spec))
        if replacing is None:
            try:
                client.execute_command("FT.ALIASADD", spec.name, spec.physical)
            except redis.ResponseError:
                client.execute_command("FT.DROPINDEX", spec.physical)
                raise
            client.set(record_key(spec.name), spec.to_json())
    return spec


def create_args(spec: IndexSpec) -> list[str | int | float]:
    args: list[str | int | float] = [spec.physical, "ON", spec.storage.value.upper(), "PREFIX", 1, spec.prefix, "SCHEMA"]
    for f in spec.fields:
        args += [*_field_path(spec, f.name), f.type.value.upper()]
        if f.type is FieldType.tag and spec.tag_separator:
            args += ["SEPARATOR", spec.tag_separator]
    for v in spec.vectors:
        attrs: list[str | int | float] = ["TYPE", v.datatype.value.upper(), "DIM", v.dim,
                                          "DISTANCE_METRIC", v.metric.value.upper()]
        for key, value in v.params.items():
            attrs += [key.upper(), value]
        args += [*layout_of(spec).vector_path(v), "VECTOR", v.algorithm.value.upper(), len(attrs), *attrs]
    if spec.stemmed_text:  # already stemmed by vsearch: NOSTEM, so RediSearch adds no second stem of its own
        args += [*_field_path(spec, STEMS_FIELD), "TEXT", "NOSTEM"]
    return args


def _field_path(spec: IndexSpec, name: str) -> list[str]:
    return layout_of(spec).field_path(name)


def swap_alias(client: redis.Redis, old: IndexSpec, new: IndexSpec) -> None:
    """Point NAME at the new generation and record it, in one transaction: queries see one or the other."""
    pipe = client.pipeline(transaction=True)
    if old.generation:
        pipe.execute_command("FT.ALIASUPDATE", new.name, new.physical)
    else:
        pipe.execute_command("FT.ALIASADD", new.name, new.physical)
    pipe.set(record_key(new.name), new.to_json())
    with translate_errors(f"cannot switch index '{new.name}' to its new generation"):
        pipe.execute()


def drop_physical(client: redis.Redis, spec: IndexSpec, delete_documents: bool) -> None:
    """Drop one generation vsearch made (its prefix is its own by construction) and, if asked, its documents."""
    _drop(client, spec.name, spec.physical, [spec.prefix], delete_documents)


def drop_index(client: redis.Redis, name: str, delete_documents: bool) -> None:
    """Drop index NAME (its alias, every generation, its record) and, if asked, its documents.

    Every check comes first: a refused drop changes nothing."""
    spec = get_spec(client, name)
    info = _info(client, spec.physical)
    prefixes = _prefixes(info) if info is not None else [spec.prefix]
    stale = stale_generations(client, name, spec.physical) if spec.generation else []
    _check_all_owned(client, name, (prefixes if delete_documents else []) + [p for _, ps in stale for p in ps])
    if spec.generation:
        with translate_errors(f"cannot drop index '{name}'"):
            client.execute_command("FT.ALIASDEL", name)
    _drop(client, name, spec.physical if info is not None else None, prefixes, delete_documents)
    for physical, stale_prefixes in stale:  # with their documents: they never served a query
        _drop(client, name, physical, stale_prefixes, delete_documents=True)
    with translate_errors(f"cannot drop index '{name}'"):
        client.delete(record_key(name))


def get_spec(client: redis.Redis, name: str) -> IndexSpec:
    """The index's spec: as vsearch recorded it, or read off FT.INFO for an index made elsewhere."""
    with translate_errors(f"cannot read index '{name}'"):
        recorded = client.get(record_key(name))
    if recorded:
        return IndexSpec.from_dict(json.loads(recorded), f"the record of index '{name}'")
    info = _info(client, name)
    if info is None:
        raise IndexNotFound(name)
    return _spec_from_info(name, info)


def _spec_from_info(name: str, info: list[Any]) -> IndexSpec:
    definition = after(info, "index_definition")
    fields, vectors = [], []
    separator = "" if str(after(definition, "key_type")).lower() == "json" else ","
    for attribute in after(info, "attributes"):  # type: ignore[union-attr]
        kind = str(after(attribute, "type")).lower()
        attribute_name = str(after(attribute, "attribute"))
        if kind == "vector":
            vectors.append(VectorField(
                name=attribute_name, embeds="image" if "image" in attribute_name else "text", model="",
                dim=int(after(attribute, "dim")), algorithm=Algorithm(str(after(attribute, "algorithm")).lower()),  # type: ignore[arg-type]
                metric=Metric(str(after(attribute, "distance_metric")).lower()),
                datatype=DataType(str(after(attribute, "data_type")).lower()),
            ))
        elif kind in FieldType.__members__:
            fields.append(Field(attribute_name, FieldType(kind)))
            if kind == "tag" and "SEPARATOR" in [str(a).upper() for a in attribute]:
                separator = str(after(attribute, "separator"))
    prefixes = after(definition, "prefixes") or [""]  # type: ignore[arg-type]
    return IndexSpec(name=name, prefix=str(prefixes[0]), storage=Storage(str(after(definition, "key_type")).lower()),  # type: ignore[index]
                     fields=tuple(fields), vectors=tuple(vectors), tag_separator=separator)


def index_stats(client: redis.Redis, spec: IndexSpec) -> IndexStats:
    info = _info(client, spec.physical)
    if info is None:
        raise IndexNotFound(spec.name)
    return IndexStats(
        documents=int(float(after(info, "num_docs"))),  # type: ignore[arg-type]
        indexing_failures=int(float(after(info, "hash_indexing_failures"))),  # type: ignore[arg-type]
        indexing=str(after(info, "indexing")) not in ("0", "False"),
        percent_indexed=float(after(info, "percent_indexed")),  # type: ignore[arg-type]
    )


def count_documents(client: redis.Redis, name: str) -> int:
    return index_stats(client, get_spec(client, name)).documents


def purge_replaced_entries(client: redis.Redis, spec: IndexSpec) -> bool:
    """Make RediSearch drop the index entries of documents that were rewritten or deleted; False if it would not.

    Until its garbage collector runs, RediSearch 2.10 keeps those entries, and BM25STD then counts a word in more
    documents than the index holds: the unsigned subtraction in its IDF wraps around, the word's IDF becomes ~42,
    and full-text ranking is noise (measured: after one reload of 3 documents, "blue boots" outscored "red leather
    boots" for "leather boots", 103 to 98). The collector waits for FORK_GC_CLEAN_THRESHOLD deletions (100 by
    default; the embedded server sets 0). FT.DEBUG is refused on some managed servers: then nothing changes.
    """
    if not spec.text_fields:
        return True  # no full-text statistics to repair; the collector's own pace is fine for vectors and tags
    try:
        client.execute_command("FT.DEBUG", "GC_FORCEINVOKE", spec.physical)
    except (redis.ResponseError, redis.TimeoutError):
        return False
    return True
