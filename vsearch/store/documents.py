"""Documents: batched writes, the fingerprints that let a reload skip unchanged records, reads, scans, deletes.

A document's key is PREFIX + id. Beside its fields and vectors it holds one hidden field, FINGERPRINT_FIELD: a
JSON object with a digest per vector field of what that vector was made from, and one of the other fields. An
index with TEXT fields has a second one, STEMS_FIELD: the stems its text and hybrid modes rank by (vsearch.stems).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from vsearch.errors import StoreError
from vsearch.schema import DataType, IndexSpec, Storage, VectorField
from vsearch.store.connection import transaction, translate_errors
from vsearch.store.layouts import FINGERPRINT_FIELD, PASSAGES_FIELD, Document, StoredDocument, layout_of  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import numpy as np

FIELDS_DIGEST = "_fields"  # the fingerprint's entry for the document's non-vector fields
SCAN_COUNT = 1000
DELETE_BATCH = 1000


@dataclass(frozen=True)
class StoredState:
    """What a reload needs to know of a stored document: its fingerprint (empty if none)."""

    fingerprint: dict[str, str]


def key_of(spec: IndexSpec, doc_id: str) -> str:
    return spec.prefix + doc_id


def write_documents(client: redis.Redis, spec: IndexSpec, documents: Sequence[Document]) -> None:
    """Write a batch in one MULTI/EXEC, each document replacing any older version whole.

    Every command is built (and every JSON body serialised) before anything is sent, so a bad value fails
    the batch before Redis sees it. For HASH storage the batch is all-or-nothing. For JSON storage Redis
    cannot promise that: a JSON.SET that fails inside EXEC does not undo the others, so every reply is
    checked and a failure names the documents Redis refused.
    """
    layout = layout_of(spec)
    pipe = client.pipeline(transaction=True)
    owners: list[Document] = []  # the document each queued command writes
    for doc in documents:
        owners += [doc] * layout.write(pipe, spec, key_of(spec, doc.id), doc)
    with translate_errors(f"cannot write to index '{spec.name}'"):
        replies = pipe.execute(raise_on_error=False)
    _check_replies(replies, [doc.where or doc.id for doc in owners], len(documents))


def write_batch(client: redis.Redis, spec: IndexSpec, documents: Sequence[Document]) -> None:
    """`write_documents` for a batch of given vectors: the same commands (the layout's `write_batch`) in one
    MULTI/EXEC, with the same promises, sent without redis-py's per-command pipeline (`connection.transaction`)."""
    layout = layout_of(spec)
    commands, owners = layout.write_batch(spec, [key_of(spec, doc.id) for doc in documents], documents)
    with translate_errors(f"cannot write to index '{spec.name}'"):
        replies = transaction(client, commands)
    _check_replies(replies, [doc.where or doc.id for doc in owners], len(documents))


def _check_replies(replies: Sequence[Any], owners: Sequence[str], documents: int) -> None:
    """Raise when Redis refused a command of a batch of `documents`, naming the documents (`owners`: whose each
    command was) it refused: a JSON.SET that fails inside EXEC does not undo the others."""
    failed = [i for i, reply in enumerate(replies) if isinstance(reply, Exception)]
    if failed:
        names = sorted({owners[i] for i in failed})
        raise StoreError(f"Redis refused {len(names)} document(s) of a batch ({'; '.join(names[:5])}): "
                         f"{replies[failed[0]]}; {documents - len(names)} other document(s) of that batch were written")


def check_persisted(client: redis.Redis, what: str = "the last writes") -> None:
    """Fail when Redis could not put the last writes on disk (a full disk, a read-only file system).

    Redis writes its append-only file before it answers, and answers a write it could not persist as if it had
    succeeded; only INFO tells (`aof_last_write_status:err`; `rdb_last_bgsave_status` where it saves snapshots).
    Such documents live in memory only and are gone when the server stops.
    """
    with translate_errors("cannot check that Redis saved the documents"):
        info = cast(dict[str, Any], client.info("persistence"))
    failed = [name for name, enabled in (("aof_last_write_status", info.get("aof_enabled")),
                                         ("rdb_last_bgsave_status", True)) if enabled and info.get(name) == "err"]
    if failed:
        raise StoreError(f"Redis could not write its data to disk ({failed[0]}: err; is the disk full?): {what} "
                         "are in its memory only and are lost if it stops; free disk space, then rerun")


def read_states(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> list[StoredState | None]:
    """The stored fingerprint of each id, None where no document exists.

    One pipelined command a document; only those without a fingerprint get a second look (EXISTS), to tell a
    new document from one written by something else.
    """
    fingerprints = _fingerprints(client, spec, ids)
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        unknown = [i for i, fingerprint in enumerate(fingerprints) if fingerprint is None]
        exists = client.pipeline(transaction=False)
        for i in unknown:
            exists.exists(key_of(spec, ids[i]))
        found = dict(zip(unknown, exists.execute() if unknown else []))
    return [None if found.get(i, 1) == 0 else StoredState(fingerprint or {}) for i, fingerprint in enumerate(fingerprints)]


def _fingerprints(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> list[dict[str, str] | None]:
    """Each id's stored fingerprint in one round trip: None where there is none (no document, or not vsearch's)."""
    layout = layout_of(spec)
    pipe = client.pipeline(transaction=False)
    for doc_id in ids:
        layout.get_fingerprint(pipe, key_of(spec, doc_id))
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        return [layout.fingerprint(raw) for raw in pipe.execute(raise_on_error=False)]


def content_keys(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> dict[str, str]:
    """What each document's vectors were made from, as the load recorded it (each vector's fingerprint entry: the
    model and a digest of the text, image bytes or given vector), for the ids that have all of them; one round
    trip. Two documents with the same key embed the same inputs: no query can tell them apart by their vectors."""
    if not ids:
        return {}
    found = {}
    for doc_id, stored in zip(ids, _fingerprints(client, spec, ids)):
        fingerprint = stored or {}
        parts = [fingerprint.get(vector.name) for vector in spec.vectors]
        if parts and all(isinstance(part, str) for part in parts):
            found[doc_id] = " ".join(parts)  # type: ignore[arg-type]
    return found


def read_vectors(client: redis.Redis, spec: IndexSpec, ids: Sequence[str],
                 vectors: Sequence[VectorField]) -> list[dict[str, np.ndarray]]:
    """The stored vectors of each id (missing ones left out), to rewrite a document without re-embedding it."""
    layout = layout_of(spec)
    pipe = client.pipeline(transaction=False)
    for doc_id in ids:
        for vector in vectors:
            layout.get_vector(pipe, key_of(spec, doc_id), vector)
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        replies = iter(pipe.execute(raise_on_error=False))
    out: list[dict[str, np.ndarray]] = []
    for _ in ids:
        found: dict[str, np.ndarray] = {}
        for vector in vectors:
            value = layout.vector(next(replies), vector)
            if value is not None:
                found[vector.name] = value
        out.append(found)
    return out


def document_vector(client: redis.Redis, spec: IndexSpec, doc_id: str, vector: VectorField) -> np.ndarray | bytes:
    """A stored document's vector: its bytes as stored where that is FLOAT32 in a HASH, float32 bytes for a JSON
    document (a passage field: the mean of its passages, what they share), else an array. No numpy where it can be
    helped: a `--like` query then starts without it (a tenth of a second)."""
    found: np.ndarray | bytes | None
    if spec.storage is Storage.json:
        found = _json_vector(client, spec, doc_id, vector)
    elif vector.datatype is DataType.float32:
        with translate_errors(f"cannot read documents of index '{spec.name}'"):
            found = cast("bytes | None", client.hget(key_of(spec, doc_id), vector.name))
        if found is not None and len(found) != 4 * vector.dim:
            raise StoreError(f"document '{doc_id}' in index '{spec.name}' holds a {vector.name} of {len(found)} "
                             f"bytes, not the {4 * vector.dim} of a {vector.dim}-d FLOAT32 vector")
    else:
        found = read_vectors(client, spec, [doc_id], [vector])[0].get(vector.name)
    if found is None:
        others = [v.name for v in spec.vectors if v.name != vector.name]
        hint = f"; to search another vector field: --field {others[0]}" if others else ""
        raise StoreError(f"document '{doc_id}' not found in index '{spec.name}' (no {vector.name} at key "
                         f"{key_of(spec, doc_id)!r}){hint}")
    return found


def _json_vector(client: redis.Redis, spec: IndexSpec, doc_id: str, vector: VectorField) -> bytes | None:
    from array import array

    import orjson

    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        raw = client.execute_command("JSON.GET", key_of(spec, doc_id), f"$.{vector.name}")
    try:
        values = orjson.loads(raw)[0] if raw else None
    except (orjson.JSONDecodeError, IndexError):
        return None
    if not isinstance(values, list) or not values:
        return None
    rows = values if isinstance(values[0], list) else [values]
    if any(len(row) != vector.dim or not all(isinstance(x, (int, float)) for x in row) for row in rows):
        raise StoreError(f"document '{doc_id}' in index '{spec.name}' holds a {vector.name} that is not "
                         f"{vector.dim}-d numbers")
    mean = [sum(column) / len(rows) for column in zip(*rows)] if len(rows) > 1 else rows[0]
    return array("f", mean).tobytes()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def scan_ids(client: redis.Redis, spec: IndexSpec) -> Iterator[str]:
    """Every document id under the index's prefix (prefixes never overlap, so these are all its own)."""
    pattern = _glob_escape(spec.prefix) + "*"
    with translate_errors(f"cannot list documents of index '{spec.name}'"):
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            yield cast(bytes, key).decode("utf-8", errors="surrogateescape")[len(spec.prefix):]


def delete_documents(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> int:
    deleted = 0
    for start in range(0, len(ids), DELETE_BATCH):
        keys = [key_of(spec, i) for i in ids[start:start + DELETE_BATCH]]
        with translate_errors(f"cannot delete documents of index '{spec.name}'"):
            deleted += int(client.delete(*keys))
    return deleted


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    if not prefix:  # the callers check ownership first; an empty prefix would match every key of the database
        raise StoreError("refusing to delete keys by an empty prefix")
    pattern = _glob_escape(prefix) + "*"
    deleted = 0
    with translate_errors(f"cannot delete keys under '{prefix}'"):
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(cast(bytes, key))
            if len(batch) >= DELETE_BATCH:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
    return deleted


COPY_BATCH = 500


def exist(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> list[bool]:
    """Whether each id has a document under the index's prefix."""
    pipe = client.pipeline(transaction=False)
    for doc_id in ids:
        pipe.exists(key_of(spec, doc_id))
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        return [bool(found) for found in pipe.execute()] if ids else []


def copy_documents(client: redis.Redis, source: IndexSpec, target: IndexSpec, ids: Iterable[str]) -> int:
    """Copy documents from one generation to another, as the target's schema stores them: vectors converted to its
    element types, and the stems field made again from its TEXT fields (a schema that gains a TEXT field would
    otherwise keep stems that lack it, and text mode would not find its words). Returns how many were copied."""
    conversions = {v.name: (old.datatype, v.datatype) for v in target.vectors
                   for old in source.vectors if old.name == v.name and old.datatype is not v.datatype}
    if source.storage is not target.storage:
        raise StoreError("documents cannot be copied between HASH and JSON storage")
    reader = layout_of(source)
    copied = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal copied
        read = client.pipeline(transaction=False)
        for doc_id in batch:
            reader.get_all(read, key_of(source, doc_id))
        with translate_errors(f"cannot read documents of index '{source.name}'"):
            bodies = read.execute()
        write = client.pipeline(transaction=True)
        for doc_id, body in zip(batch, bodies):
            if not body:
                continue  # deleted meanwhile
            reader.copy(write, body, key_of(target, doc_id), target, conversions)
            copied += 1
        with translate_errors(f"cannot write to the new generation of '{target.name}'"):
            write.execute()
        batch.clear()

    for doc_id in ids:
        batch.append(doc_id)
        if len(batch) >= COPY_BATCH:
            flush()
    if batch:
        flush()
    return copied


@dataclass(frozen=True)
class StoredPassages:
    """A passage-indexed document's passages: their vectors (one row each), [start, end) offsets, and the values
    of the text fields they were cut from (`fields.join_texts` of them is the text the offsets point into)."""

    vectors: list[list[float]]
    spans: list[tuple[int, int]]
    fields: list[str]
    texts: list[Any]


def read_passages(client: redis.Redis, spec: IndexSpec, ids: Sequence[str], vector: VectorField) -> list[StoredPassages | None]:
    """Each document's passages of `vector` (None for a document without them), in one round trip; the vectors as
    lists of numbers (no numpy: a cached query never imports it)."""
    import orjson

    pipe = client.pipeline(transaction=False)
    for doc_id in ids:
        pipe.execute_command("JSON.GET", key_of(spec, doc_id), "$")
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        replies = pipe.execute(raise_on_error=False)
    out: list[StoredPassages | None] = []
    for raw in replies:
        try:
            body = orjson.loads(raw)[0] if isinstance(raw, (bytes, str)) else None
            meta = body[PASSAGES_FIELD][vector.name]
            vectors = body[vector.name]
            spans = [(int(start), int(end)) for start, end in meta["spans"]]
            names = [str(name) for name in meta["fields"]]
            texts = [body.get(name) for name in names]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            out.append(None)  # written before passages, or by another tool
            continue
        ok = isinstance(vectors, list) and len(vectors) == len(spans) and all(isinstance(v, list) for v in vectors)
        out.append(StoredPassages(vectors, spans, names, texts) if ok and spans else None)
    return out


# ---------------------------------------------------------------------------------------------------
# Documents as Redis holds them, for `vsearch export` and `load --from-export` (vsearch.transfer)


def read_stored(client: redis.Redis, spec: IndexSpec, ids: Sequence[str]) -> list[StoredDocument | None]:
    """The documents of `ids`, one pipelined read each (HGETALL or JSON.GET: each document is read whole, as one
    version); None where there is none now (deleted meanwhile) or the key is not one of the index's type."""
    layout = layout_of(spec)
    pipe = client.pipeline(transaction=False)
    for doc_id in ids:
        layout.get_all(pipe, key_of(spec, doc_id))
    with translate_errors(f"cannot read documents of index '{spec.name}'"):
        replies = pipe.execute(raise_on_error=False)
    vector_names = {v.name for v in spec.vectors}
    return [None if not reply or isinstance(reply, Exception)  # gone, or WRONGTYPE: a key that is no document
            else layout.stored(doc_id, reply, vector_names) for doc_id, reply in zip(ids, replies)]


def write_stored(client: redis.Redis, spec: IndexSpec, documents: Sequence[StoredDocument]) -> None:
    """Write a batch of documents as stored elsewhere (an export) in one MULTI/EXEC, each replacing any older
    version whole: fields and vectors as they are, the fingerprint and passages, the stems made again.

    As `write_documents`: HASH all-or-nothing; JSON replies checked one by one, a failure naming the documents."""
    layout = layout_of(spec)
    pipe = client.pipeline(transaction=True)
    owners: list[StoredDocument] = []
    for doc in documents:
        owners += [doc] * layout.write_stored(pipe, spec, key_of(spec, doc.id), doc)
    with translate_errors(f"cannot write to index '{spec.name}'"):
        replies = pipe.execute(raise_on_error=False)
    _check_replies(replies, [repr(doc.id) for doc in owners], len(documents))
