"""`vsearch export` and `load --from-export`: an index out of Redis as JSONL, and back in without any model.

The format, version 1: UTF-8 JSON, one object a line (lines end at LF; U+0085, U+2028 and U+2029 are escaped, so
no reader splits a line elsewhere).

- Line 1, the header: `{"format": "vsearch-export", "version": 1, "index": SPEC, "vectors": {"encoding":
  "base64" | "json", "byte_order": "little", "elements": {FIELD: TYPE}}, "documents": N, "exported": UTC,
  "consistency": "per-document"}`. SPEC is the index as vsearch records it (`vsearch info`'s layout: fields,
  vector fields with their models, storage, prefix, tag separator). `elements` says, per vector field, which
  element type a base64 vector holds: a HASH index's own datatype (the bytes exactly as stored: a FLOAT16 index's
  vectors are float16), for a JSON index float64 if its datatype is FLOAT64, else float32. `documents` is what
  the index counted when the export started.
- One line a document: `{"id": ID, "fields": {NAME: VALUE}, "vectors": {FIELD: BASE64 | [NUMBERS]},
  "fingerprint": {...}}`, and `"bytes": {NAME: BASE64}` for HASH values that are not UTF-8 text. Fields are
  every stored field but the vectors and vsearch's hidden ones (the stems field is made again on restore);
  the fingerprint is the stored one, so that `load` after a restore skips every unchanged record. A vector is
  base64 of `elements[FIELD]`, little-endian, or a JSON array of numbers (`--vectors json`). A JSON index's
  vectors are the float32 numbers its index holds (vsearch writes float32 values; RedisJSON prints some of them
  one unit in the last place off, and rounding takes them back); FLOAT64 ones are float64, snapped the same way
  only where a number lies within a few units of a float32.
- The last line: `{"end": "vsearch-export", "documents": N}`, N the document lines above it: a restore that
  finds no end line, or another count, says the file is incomplete.

Consistency: documents are found by SCAN over the index's prefix and read whole, one HGETALL or JSON.GET each, so
every line is one version of its document. Documents written while the export runs may be in it or not (one that
exists throughout is); one rewritten during a keyspace resize may appear twice (a restore keeps the later line).
The export is not a point-in-time snapshot of the whole index: stop the writers for one.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from vsearch import store
from vsearch.config import Settings
from vsearch.errors import EXIT_OK, EXIT_REJECTED, InputError, StoreError, UsageError
from vsearch.output import VectorEncoding
from vsearch.records import STDIN, is_unicode
from vsearch.schema import Algorithm, DataType, FieldType, IndexSpec, Storage, VectorField
from vsearch.store.definitions import create_index, get_spec, index_exists, index_stats, purge_replaced_entries
from vsearch.store.documents import StoredDocument, check_persisted, read_stored, scan_ids, write_stored
from vsearch.store.keys import base_prefix, default_prefix
from vsearch.store.lock import index_lock

if TYPE_CHECKING:
    import numpy as np

FORMAT = "vsearch-export"
VERSION = 1
EXPORT_PAGE = 1000  # keys read a round trip: memory stays at one page whatever the index's size
RESTORE_BATCH = 1000  # documents a MULTI/EXEC, as `load` writes given vectors
SHOWN_REJECTS = 10
_ITEM_SIZE = {DataType.float64: 8, DataType.float32: 4, DataType.float16: 2, DataType.bfloat16: 2}
_NUMPY_TYPE = {DataType.float64: "<f8", DataType.float32: "<f4", DataType.float16: "<f2"}
_DOCUMENT_KEYS = {"id", "fields", "vectors", "fingerprint", "bytes", "passages"}
# orjson writes these as they are; other readers (Python's str.splitlines) take them as line breaks.
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))
CONSISTENCY = ("per-document: each document is read whole, as one version; documents written while the export "
               "ran may be missing, or appear twice (the later line wins)")


class BadLine(Exception):
    """A line of an export that cannot become a document; the restore goes on without it (unless --strict)."""


# ---------------------------------------------------------------------------------------------------
# Export


@dataclass
class ExportReport:
    index: str
    documents: int = 0  # document lines written
    unwritable: int = 0  # documents whose id or a field name is not UTF-8 text: no JSON line can hold them
    seconds: float = 0.0

    def summary(self, where: str) -> str:
        left = (f"; {self.unwritable} left out (an id or field name that is not UTF-8 text)"
                if self.unwritable else "")
        return f"exported '{self.index}' to {where}: {self.documents} documents{left}, {self.seconds:.1f} s"


def elements(spec: IndexSpec) -> dict[str, DataType]:
    """The element type of each vector field's base64 vectors (see the module docstring)."""
    if spec.storage is Storage.hash:
        return {v.name: v.datatype for v in spec.vectors}
    return {v.name: DataType.float64 if v.datatype is DataType.float64 else DataType.float32 for v in spec.vectors}


def header(spec: IndexSpec, encoding: VectorEncoding, documents: int) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "index": spec.to_dict(),
            "vectors": {"encoding": encoding.value, "byte_order": "little",
                        "elements": {name: t.value for name, t in elements(spec).items()}},
            "documents": documents, "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "consistency": CONSISTENCY}


def export_index(client: store.Client, spec: IndexSpec, out: IO[bytes], encoding: VectorEncoding = VectorEncoding.base64,
                 progress: Callable[[int], None] = lambda n: None) -> ExportReport:
    """Write index `spec`'s documents to `out` in the export format, one SCAN page at a time."""
    if not spec.prefix:
        raise UsageError(f"index '{spec.name}' has no key prefix, so it indexes every key in the database: vsearch "
                         "cannot tell its documents from other keys and will not export it")
    started = time.perf_counter()
    report = ExportReport(spec.name)
    types = elements(spec)
    out.write(json_line(header(spec, encoding, index_stats(client, spec).documents)))
    ids = scan_ids(client, spec)
    while page := list(islice(ids, EXPORT_PAGE)):
        readable = [i for i in page if is_unicode(i)]
        report.unwritable += len(page) - len(readable)
        lines = []
        for doc in read_stored(client, spec, readable):
            if doc is None:
                continue  # deleted since SCAN found it, or a key of another type under the prefix
            if not all(is_unicode(name) for name in doc.fields):
                report.unwritable += 1
                continue
            lines.append(json_line(document_line(doc, spec, types, encoding)))
        out.write(b"".join(lines))
        report.documents += len(lines)
        progress(len(page))
    out.write(json_line({"end": FORMAT, "documents": report.documents}))
    out.flush()
    report.seconds = time.perf_counter() - started
    return report


def json_line(value: dict[str, Any]) -> bytes:
    line = orjson.dumps(value)
    for raw, escaped in _LINE_BREAKS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line + b"\n"


def document_line(doc: StoredDocument, spec: IndexSpec, types: dict[str, DataType],
                  encoding: VectorEncoding) -> dict[str, Any]:
    """A stored document as its export line."""
    fields = {name: value for name, value in doc.fields.items() if not isinstance(value, bytes)}
    passage_fields = {v.name for v in spec.vectors if v.passages is not None}
    line: dict[str, Any] = {"id": doc.id, "fields": fields,
                            "vectors": {name: ([_export_vector(row, spec, types[name], encoding) for row in value]
                                               if name in passage_fields and isinstance(value, list)
                                               else _export_vector(value, spec, types[name], encoding))
                                        for name, value in doc.vectors.items()},
                            "fingerprint": doc.fingerprint}
    if doc.passages:
        line["passages"] = doc.passages  # each passage field's text fields and [start, end) spans
    binary = {name: base64.b64encode(value).decode() for name, value in doc.fields.items() if isinstance(value, bytes)}
    if binary:
        line["bytes"] = binary
    return line


def _export_vector(value: Any, spec: IndexSpec, element: DataType, encoding: VectorEncoding) -> Any:
    if spec.storage is Storage.hash:
        if encoding is VectorEncoding.base64 or len(value) % _ITEM_SIZE[element]:
            return base64.b64encode(value).decode()  # as stored, bit for bit (a wrong length too: restore refuses it)
        return _decode(value, element).tolist()
    if not _numbers(value):
        return value  # as stored: restore refuses it
    import numpy as np

    numbers = np.asarray(value, dtype=np.float64)
    if element is DataType.float32:
        packed = numbers.astype("<f4")  # what the index holds, and what vsearch wrote
    else:
        # RedisJSON prints some doubles one unit in the last place off (16 digits where 17 are needed): a number
        # that close to a float32 is the float32 that vsearch wrote (its vectors are float32), so take that back.
        nearest = numbers.astype(np.float32).astype(np.float64)
        packed = np.where(np.abs(nearest - numbers) <= 4 * np.spacing(np.abs(numbers)), nearest, numbers).astype("<f8")
    if encoding is VectorEncoding.json:
        return packed.astype(np.float64).tolist()
    return base64.b64encode(packed.tobytes()).decode()


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def _decode(raw: bytes, element: DataType) -> np.ndarray:
    """Little-endian bytes of `element` as numbers (float64 stays float64; the others are exact in float32)."""
    import numpy as np

    from vsearch.store.vectors import bytes_vector

    if element is DataType.bfloat16:
        return bytes_vector(raw, element)
    return np.frombuffer(raw, dtype=_NUMPY_TYPE[element])


def _encode(numbers: np.ndarray, datatype: DataType) -> bytes:
    """Numbers as little-endian bytes of `datatype`, rounded once from float64 (past its range: infinite)."""
    import numpy as np

    from vsearch.store.vectors import vector_bytes

    with np.errstate(over="ignore"):
        if datatype is DataType.bfloat16:
            return vector_bytes(numbers.astype(np.float32), datatype)
        return numbers.astype(_NUMPY_TYPE[datatype]).tobytes()


# ---------------------------------------------------------------------------------------------------
# Reading an export


@dataclass(frozen=True)
class Export:
    """What an export's header says: the index it came from, and how its vectors are written."""

    spec: IndexSpec
    elements: dict[str, DataType]
    documents: int | None


def read_header(line: bytes | None, where: str) -> Export:
    """The header of an export, or a UsageError saying the file is not one."""
    hint = "make one with `vsearch export NAME -o FILE`"
    if line is None or not line.strip():
        raise UsageError(f"{where} is empty: not a vsearch export ({hint})")
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{where} is not a vsearch export: its first line is not an export header ({hint})")
    if data.get("version") != VERSION:
        raise UsageError(f"{where} is a vsearch export of format version {data.get('version')!r}, but this vsearch "
                         f"reads version {VERSION}: restore it with the vsearch that wrote it")
    try:
        spec = IndexSpec.from_dict(data["index"], f"{where} line 1")
        written = data["vectors"]["elements"]
        types = {v.name: DataType(str(written[v.name])) for v in spec.vectors}
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where} line 1: the export header's vectors.elements is missing or wrong ({exc})") from None
    if not spec.vectors:
        raise UsageError(f"{where} line 1: the export header's index has no vector field")
    documents = data.get("documents")
    return Export(spec, types, documents if isinstance(documents, int) else None)


def parse_document(line: bytes, spec: IndexSpec, types: dict[str, DataType]) -> StoredDocument:
    """One document line as the document to write into an index of `spec`, or BadLine saying what is wrong."""
    return _document(_json_object(line), spec, types)


def _json_object(line: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:  # its own "line 1" would only confuse: the caller names the line
        raise BadLine(f"not JSON ({exc.msg} at character {exc.pos + 1})") from None
    if not isinstance(data, dict):
        raise BadLine("not a JSON object")
    return data


def _document(data: dict[str, Any], spec: IndexSpec, types: dict[str, DataType]) -> StoredDocument:
    unknown = sorted(set(data) - _DOCUMENT_KEYS)
    if unknown:
        raise BadLine(f"unknown key {unknown[0]!r} (a document line has {', '.join(sorted(_DOCUMENT_KEYS))})")
    doc_id = data.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise BadLine(f"'id' must be a non-empty string, not {doc_id!r}")
    fields = dict(_mapping(data, "fields"))
    vectors = _mapping(data, "vectors")
    fingerprint = _mapping(data, "fingerprint")
    if not all(isinstance(v, str) for v in fingerprint.values()):
        raise BadLine("'fingerprint' must map names to strings")
    binary = _mapping(data, "bytes")
    if binary and spec.storage is Storage.json:
        raise BadLine("'bytes' is for HASH documents; this index stores JSON")
    for name, value in binary.items():
        if name in fields:
            raise BadLine(f"field {name!r} is both in 'fields' and in 'bytes'")
        try:
            fields[name] = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            fields[name] = None
        if fields[name] is None:
            raise BadLine(f"'bytes' value of field {name!r} is not base64")
    by_name = {v.name: v for v in spec.vectors}
    for name, value in fields.items():
        if name in by_name or name.startswith("__vsearch"):
            raise BadLine(f"field {name!r} is a vector or vsearch's own field: it cannot be a document field")
        _check_field(spec, name, value)
    passages = _mapping(data, "passages")
    stored = {}
    for name, value in vectors.items():
        if name not in by_name:
            raise BadLine(f"vector {name!r}: the index has no such vector field (it has: {', '.join(by_name)})")
        if by_name[name].passages is None:
            stored[name] = _restore_vector(name, value, by_name[name], types[name], spec.storage)
            continue
        # Vectors given whole (--vector-column) were stored as a list of one, without passages recorded.
        count = len(_spans(passages[name], name)) if name in passages else None
        if not isinstance(value, list) or not value or (count is not None and len(value) != count):
            raise BadLine(f"vector {name!r} must be a list of one vector a passage"
                          + (f" ({count} passages)" if count is not None else ""))
        stored[name] = [_restore_vector(name, row, by_name[name], types[name], spec.storage) for row in value]
    if unknown_passages := sorted(set(passages) - {n for n, v in by_name.items() if v.passages is not None}):
        raise BadLine(f"'passages' of {unknown_passages[0]!r}: the index splits no such field into passages")
    return StoredDocument(doc_id, fields, stored, dict(fingerprint), dict(passages))


def _spans(meta: Any, name: str) -> list[Any]:
    """A passage field's recorded passages: {"fields": [names], "spans": [[start, end], ...]}, checked."""
    ok = (isinstance(meta, dict) and set(meta) == {"fields", "spans"} and isinstance(meta["fields"], list)
          and all(isinstance(f, str) for f in meta["fields"]) and isinstance(meta["spans"], list)
          and all(isinstance(s, list) and len(s) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                                             for x in s) and s[0] <= s[1] for s in meta["spans"]))
    if not ok:
        raise BadLine(f"'passages' of {name!r} must be {{\"fields\": [...], \"spans\": [[start, end], ...]}}")
    return meta["spans"]


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise BadLine(f"{key!r} must be a JSON object, not {type(value).__name__}")
    return value


def _check_field(spec: IndexSpec, name: str, value: Any) -> None:
    """Refuse a value the index would fail to index: Redis stores such a document, but leaves it out of searches."""
    if spec.storage is Storage.hash and not isinstance(value, (str, bytes)):
        raise BadLine(f"field {name!r}: a HASH document's values are strings, not {type(value).__name__}")
    kind = spec.field_types().get(name)
    if kind is FieldType.numeric:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or (spec.storage is Storage.json and isinstance(value, str)):
            raise BadLine(f"field {name!r} is NUMERIC but holds {value!r}")
    elif kind is FieldType.geo:
        try:
            lon, lat = (float(p) for p in str(value).split(","))
            ok = -180 <= lon <= 180 and -85.05112878 <= lat <= 85.05112878
        except ValueError:
            ok = False
        if not ok:
            raise BadLine(f"field {name!r} is GEO and needs 'longitude,latitude', not {value!r}")
    elif kind in (FieldType.tag, FieldType.text) and spec.storage is Storage.json:
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise BadLine(f"field {name!r} is {kind.value.upper()} and needs a string or a list of strings, "
                          f"not {value!r}")


def _restore_vector(name: str, value: Any, vector: VectorField, element: DataType, storage: Storage) -> Any:
    """A vector of a line in the form the index stores it: HASH bytes of its datatype, JSON numbers."""
    import numpy as np

    from vsearch.fields import check_scorable

    raw = None
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadLine(f"vector {name!r} is not base64") from None
        size = vector.dim * _ITEM_SIZE[element]
        if len(raw) != size:
            raise BadLine(f"vector {name!r} holds {len(raw)} bytes, not the {size} of a {vector.dim}-d "
                          f"{element.value} vector")
        numbers = _decode(raw, element).astype(np.float64)
    elif _numbers(value):
        if len(value) != vector.dim:
            raise BadLine(f"vector {name!r} has {len(value)} numbers, but the index holds {vector.dim}-d vectors")
        numbers = np.asarray(value, dtype=np.float64)
    else:
        raise BadLine(f"vector {name!r} must be a base64 string or an array of numbers")
    if storage is Storage.json:
        stored: Any = numbers.tolist()
        scored = numbers
    else:
        stored = raw if raw is not None and element is vector.datatype else _encode(numbers, vector.datatype)
        scored = _decode(stored, vector.datatype)
    if not np.isfinite(scored).all():
        raise BadLine(f"vector {name!r} holds NaN, an infinite number, or one past {vector.datatype.value}'s range")
    try:
        check_scorable(scored, vector, f"vector {name!r}")
    except InputError as exc:
        raise BadLine(str(exc)) from None
    return stored


# ---------------------------------------------------------------------------------------------------
# Restore


@dataclass(frozen=True)
class RestoreRequest:
    name: str
    source: str  # an export file, or - for stdin
    batch_size: int = RESTORE_BATCH
    wait_s: float = 0.0
    strict: bool = False
    rejects: Path | None = None


@dataclass
class RestoreReport:
    index: str
    source: str
    read: int = 0  # document lines read, rejected ones included
    written: int = 0
    rejected: int = 0
    created: bool = False  # the index was made from the export's schema
    documents: int = 0  # in the index after the run
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTED if self.rejected else EXIT_OK

    def summary(self) -> str:
        made = " (created)" if self.created else ""
        return (f"restored '{self.index}'{made} from {self.source}: {self.read} read, {self.written} written, "
                f"{self.rejected} rejected; {self.documents} documents in the index, {self.seconds:.1f} s")


def restore_index(client: store.Client, request: RestoreRequest,
                  progress: Callable[[int, int], None] = lambda lines, size: None,
                  warn: Callable[[str], None] = lambda message: None) -> RestoreReport:
    """Write an export's documents into index `request.name`, made from the export's schema if there is none."""
    started = time.perf_counter()
    where = "<stdin>" if request.source == STDIN else request.source
    _check_rejects_path(request)
    report = RestoreReport(request.name, where)
    with _lines(request.source) as lines:
        export = read_header(next(lines, (1, None))[1], where)
        with index_lock(client, request.name, request.wait_s,
                        waiting=lambda: warn(f"waiting up to {request.wait_s:g} s for another run on '{request.name}'")
                        ) as lease, _Rejects(request, report, warn) as rejects:
            spec, report.created = _target_index(client, export.spec, request.name, where)
            stats = index_stats(client, spec)
            if stats.indexing:
                from vsearch.store.generations import wait_indexed

                stats = wait_indexed(client, spec)
            starts_empty = stats.documents == 0
            end = None
            try:
                while batch := list(islice(lines, request.batch_size)):
                    documents: dict[str, StoredDocument] = {}
                    read = report.read
                    for number, line in batch:
                        end = _take_line(number, line, end, export, spec, documents, report, rejects)
                    if documents:
                        lease.check()
                        write_stored(client, spec, list(documents.values()))
                        check_persisted(client, f"the last batch's {len(documents)} document(s)")
                        report.written += len(documents)
                    progress(report.read - read, sum(len(line) + 1 for _, line in batch))
            except StoreError as exc:  # a lost connection or lock: every write replaces whole documents, so rerun
                exc.args = (f"{exc} ({report.written} documents were restored before it; rerun the same command "
                            "to finish)",)
                raise
            _check_complete(end, report, where)
            _check_indexed(client, spec, stats.indexing_failures)
            if not starts_empty and not purge_replaced_entries(client, spec):
                warn("Redis refused FT.DEBUG GC_FORCEINVOKE: full-text scores of this index are unreliable until "
                     "its garbage collector has run")
    report.documents = index_stats(client, spec).documents
    report.seconds = time.perf_counter() - started
    return report


def _take_line(number: int, line: bytes, end: dict[str, Any] | None, export: Export, spec: IndexSpec,
               documents: dict[str, StoredDocument], report: RestoreReport, rejects: _Rejects) -> dict[str, Any] | None:
    """One line after the header: a document (into `documents`, the later of two with one id winning), the end
    line (returned), or a reject."""
    if not line.strip():
        return end
    try:
        data: dict[str, Any] | BadLine = _json_object(line)
    except BadLine as exc:
        data = exc
    if isinstance(data, dict) and end is None and data.get("end") == FORMAT and "id" not in data:
        return {**data, "read_before": report.read}
    report.read += 1
    try:
        if isinstance(data, BadLine):
            raise data
        if end is not None:
            raise BadLine("a line after the export's end line")
        doc = _document(data, spec, export.elements)
    except BadLine as exc:
        rejects.add(number, line, str(exc))
        return end
    documents.pop(doc.id, None)
    documents[doc.id] = doc
    return end


def _check_complete(end: dict[str, Any] | None, report: RestoreReport, where: str) -> None:
    if end is None:
        raise InputError(f"{where} ends without the export's end line: it is cut short or still being written "
                         f"({report.written} documents of it were restored; restore a complete export)")
    lines, read = end.get("documents"), end["read_before"]
    if lines != read:
        raise InputError(f"{where}: the export's end line counts {lines!r} documents, but {read} document "
                         f"lines were read: lines are missing or were added ({report.written} documents restored)")


def _check_indexed(client: store.Client, spec: IndexSpec, failures_before: int) -> None:
    from vsearch.store.generations import wait_indexed

    refused = wait_indexed(client, spec).indexing_failures - failures_before
    if refused > 0:
        raise StoreError(f"Redis could not index {refused} of the documents written to '{spec.name}' "
                         "(FT.INFO hash_indexing_failures): they are stored but not searchable")


def target_spec(exported: IndexSpec, name: str) -> IndexSpec:
    """The index an export makes under NAME: its schema and models; the default prefix of NAME where the export's
    was its own name's default, else the export's prefix (as its first generation's)."""
    prefix = base_prefix(exported.prefix)
    if prefix == default_prefix(exported.name):
        prefix = default_prefix(name)
    return replace(exported, name=name, prefix=prefix, generation=0)


def _target_index(client: store.Client, exported: IndexSpec, name: str, where: str) -> tuple[IndexSpec, bool]:
    """Index NAME as it is, if its schema is the export's; else made from the export. (spec, whether made)"""
    wanted = target_spec(exported, name)
    if not index_exists(client, name):
        return create_index(client, wanted), True
    existing = get_spec(client, name)
    difference = schema_difference(existing, wanted)
    if difference:
        raise UsageError(f"index '{name}' exists with another schema than {where}'s ({difference}): restore into a "
                         f"new name, or drop it first with `vsearch drop-index {name}`")
    return existing, False


def schema_difference(existing: IndexSpec, wanted: IndexSpec) -> str | None:
    """What differs between two schemas in what their documents hold, in words; None when nothing does."""
    if existing.storage is not wanted.storage:
        return f"it stores {existing.storage.value.upper()}, the export {wanted.storage.value.upper()}"
    ours, theirs = existing.field_types(), wanted.field_types()
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) is not theirs.get(name):
            return (f"field {name!r} is {_kind(ours.get(name))} there, {_kind(theirs.get(name))} in the export")
    # The search algorithm and its parameters decide how Redis finds the vectors, not what a document holds: an
    # export of a FLAT index restores into an HNSW one made with create-index (and back).
    vectors = {v.name: _held(v) for v in existing.vectors}
    for vector in wanted.vectors:
        if vectors.pop(vector.name, None) != _held(vector):
            found = next((v for v in existing.vectors if v.name == vector.name), None)
            return f"its {vector.name} is {_vector(found)}, the export's {_vector(vector)}"
    if vectors:
        return f"it has the vector field {next(iter(vectors))!r}, the export does not"
    if existing.tag_separator != wanted.tag_separator:
        return f"its TAG separator is {existing.tag_separator!r}, the export's {wanted.tag_separator!r}"
    return None


def _held(vector: VectorField) -> VectorField:
    """`vector` with what only the search uses left out."""
    return replace(vector, algorithm=Algorithm.flat, params={})


def _kind(kind: FieldType | None) -> str:
    return kind.value.upper() if kind else "not indexed"


def _vector(vector: VectorField | None) -> str:
    if vector is None:
        return "missing"
    params = "".join(f" {k.upper()}={v}" for k, v in sorted(vector.params.items()))
    return (f"{vector.dim}-d {vector.algorithm.value.upper()} {vector.metric.value.upper()} "
            f"{vector.datatype.value.upper()}{params} ({vector.embeds}, model {vector.model or 'unknown'!r})")


@contextmanager
def _lines(source: str) -> Iterator[Iterator[tuple[int, bytes]]]:
    """(line number, line without its line end) for each line of a file or stdin, read lazily."""
    if source == STDIN:
        yield _numbered(sys.stdin.buffer)
        return
    try:
        handle = open(source, "rb")
    except FileNotFoundError:
        raise UsageError(f"file not found: {source}") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    with handle:
        yield _numbered(handle)


def _numbered(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start=1):
        yield number, line.rstrip(b"\r\n")


def _check_rejects_path(request: RestoreRequest) -> None:
    path = request.rejects.expanduser() if request.rejects is not None else None
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--rejects {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"--rejects {path}: folder {path.parent} does not exist")
    if path.exists() and request.source != STDIN and Path(request.source).is_file() \
            and os.path.samefile(path, request.source):
        raise UsageError(f"--rejects {path} is the input file: writing it would destroy the input; give another file")


class _Rejects:
    """Bad lines: one message each on stderr (the first SHOWN_REJECTS), and the lines as read in --rejects."""

    def __init__(self, request: RestoreRequest, report: RestoreReport, warn: Callable[[str], None]) -> None:
        self.request, self.report, self.warn = request, report, warn
        self.out: IO[bytes] | None = None

    def __enter__(self) -> _Rejects:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.out is not None:
            self.out.close()

    def add(self, number: int, line: bytes, reason: str) -> None:
        message = f"{self.report.source} line {number}: {reason}"
        if self.request.strict:
            raise InputError(f"{message} (--strict: nothing of this batch or after it was written)")
        self.report.rejected += 1
        if self.report.rejected <= SHOWN_REJECTS:
            self.warn(f"rejected {message}")
        if self.request.rejects is not None:
            if self.out is None:  # 0600, as `load --rejects`: the lines are the user's data
                descriptor = os.open(self.request.rejects.expanduser(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                self.out = open(descriptor, "wb")
            self.out.write(line + b"\n")
            self.out.flush()


# ---------------------------------------------------------------------------------------------------
# The use cases, as the CLI calls them


@dataclass(frozen=True)
class ExportSource:
    """An index about to be exported: its document count first (for a progress bar), then `write`."""

    client: store.Client
    spec: IndexSpec

    @property
    def documents(self) -> int:
        return store.index_stats(self.client, self.spec).documents

    def write(self, out: IO[bytes], encoding: VectorEncoding, progress: Callable[[int], None]) -> ExportReport:
        return export_index(self.client, self.spec, out, encoding, progress)


def open_export(settings: Settings, name: str) -> ExportSource:
    client = store.connect(settings)
    return ExportSource(client, store.get_spec(client, name))


def restore(settings: Settings, request: RestoreRequest, progress: Callable[[int, int], None],
            warn: Callable[[str], None]) -> RestoreReport:
    """`load NAME FILE --from-export`."""
    return restore_index(store.connect(settings), request, progress, warn)
