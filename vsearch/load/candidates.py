"""Records to candidates: the document's id and fields, what each vector is made from, and its fingerprint.

No Redis and no model: a bad record becomes a reject here, with its file and line, before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from vsearch.encode import VectorTable
from vsearch.errors import InputError
from vsearch.fields import (document_fields, document_id, given_vector, image_path, joined_text, open_regular_file,
                            usable_rows)
from vsearch.load.diff import Candidate, Fingerprints, digest
from vsearch.load.plan import LoadPlan
from vsearch.records import Record
from vsearch.schema import IndexSpec, VectorField
from vsearch.store.documents import FIELDS_DIGEST


# What `make` digests as a record's fields: json.dumps(fields, sort_keys=True, ensure_ascii=False), made once.
_FIELDS_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
_MISSING = object()


class Rejected(Exception):
    """A record that cannot become a document; the run goes on without it (unless --strict)."""


class CandidateMaker:
    def __init__(self, target: IndexSpec, plan: LoadPlan, fingerprints: Fingerprints,
                 vector_table: VectorTable | None, reject: Callable[..., None]) -> None:
        self.target, self.plan, self.fingerprints = target, plan, fingerprints
        self.vector_table = vector_table
        self.reject = reject

    def make(self, record: Record, ids: list[tuple[str, Record]]) -> Candidate | None:
        """The record's candidate, or None when it is rejected. Its id, when readable, goes into `ids` even so:
        --prune must keep the document of a rejected record."""
        doc_id = None
        try:
            if record.error:
                # A reader that could read the id of a bad record gives it (a text file that is not UTF-8): --prune
                # then keeps that document instead of being skipped for want of it.
                known = record.data.get(self.plan.id_field) if record.data else None
                if isinstance(known, str) and known:
                    doc_id = known
                    ids.append((doc_id, record))
                raise Rejected(record.error)
            doc_id = document_id(record, self.plan.id_field)
            ids.append((doc_id, record))
            fields = document_fields(self.target, record, {self.plan.vector_column} - {""})
            contents = self._contents(record, doc_id)
            hashed: dict[str, tuple[bool, bytes]] = {}
            fingerprint = {name: self._fingerprint(name, content, hashed) for name, content in contents.items()}
        except (Rejected, InputError) as exc:
            self.reject(record, str(exc), identified=doc_id is not None)
            return None
        try:
            fields_json = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # JSON's "\ud800": Redis would refuse the whole batch over it
            self.reject(record, "a field is not valid Unicode text (it holds a lone surrogate such as \\ud800)")
            return None
        fingerprint[FIELDS_DIGEST] = digest(fields_json)
        return Candidate(record, doc_id, fields, contents, fingerprint, hashed)

    def given_batches(self, records: Iterator[Record], size: int) -> Iterator[list[Record]]:
        """The input's batches for `make_batch`, as `run._batches` makes them, with each given vector that is a JSON
        list of numbers already the float32 array `given_vector` makes of it: converted as its record is read, while
        its numbers are still in the processor's cache, and the list let go at once rather than with its batch (~6% of
        a load of given vectors). A record without its text as read (a JSON array's element: rejects write its data)
        keeps its list; whatever does not convert is left as it is, for `make` to reject."""
        vector, column = self.plan.precomputed, self.plan.vector_column
        convert = vector is not None and self.vector_table is None
        while True:
            batch = []
            with np.errstate(over="ignore"):  # past float32's range: infinite, refused as given_vector refuses it
                for record in islice(records, size):
                    value = record.data.get(column) if convert else None
                    if type(value) is list and len(value) == vector.dim and record.raw:  # type: ignore[union-attr]
                        try:
                            array = np.asarray(value, dtype=np.float32)
                        except Exception:  # noqa: BLE001 - left for make, which rejects it in its place
                            array = None
                        if array is not None and array.ndim == 1:
                            record = Record(record.source, record.line, {**record.data, column: array}, record.raw,
                                            record.error)
                    batch.append(record)
            if not batch:
                return
            yield batch

    def make_batch(self, records: list[Record], ids: list[tuple[str, Record]]) -> list[Candidate]:
        """`make` for each record of a batch whose every planned vector is given (--vector-column, --vectors): the
        same candidates, fingerprints and rejects (in record order, each with its line), with the batch's vectors made,
        checked and hashed as one matrix rather than record by record. A record that does not pass the matrix's checks
        goes through `make` itself, so that its reject is word for word the one it gets there."""
        vector = self.plan.precomputed
        assert vector is not None and not {self.plan.text_vector, self.plan.image_vector} - {None}
        prepared = [self._prepare_given(record) for record in records]
        fast = [i for i, ready in enumerate(prepared) if ready is not None]
        matrix, usable = self._given_matrix([prepared[i][2] for i in fast], vector)  # type: ignore[index]
        row_of = {i: row for row, i in enumerate(fast) if usable[row]}
        out: list[Candidate] = []
        for i, record in enumerate(records):
            row = row_of.get(i)
            if row is None:  # the slow path decides: a reject, or (never yet seen) a candidate after all
                if (made := self.make(record, ids)) is not None:
                    out.append(made)
                continue
            doc_id, fields, _, fields_json = prepared[i]  # type: ignore[misc]
            ids.append((doc_id, record))
            data = matrix[row].tobytes()
            out.append(Candidate(record, doc_id, fields, {vector.name: matrix[row]},
                                 {vector.name: self.fingerprints.of(vector.name, True, data),
                                  FIELDS_DIGEST: digest(fields_json)}, {vector.name: (True, data)}))
        return out

    def _prepare_given(self, record: Record) -> tuple[str, dict[str, Any], Any, bytes] | None:
        """A record's id, fields, given vector (as read, or its row in --vectors) and fields' JSON; None for a record
        that `make` must see (it rejects it, with the message it has for it)."""
        plan = self.plan
        if record.error:
            return None
        try:
            doc_id = document_id(record, plan.id_field)
            fields = document_fields(self.target, record, {plan.vector_column} - {""})
            fields_json = _FIELDS_JSON.encode(fields).encode()
            if self.vector_table is not None:
                value: Any = self.vector_table.rows.get(doc_id, _MISSING)
            else:
                value = record.data.get(plan.vector_column, _MISSING)
                if isinstance(value, str):
                    value = _parse_json(value)
        except Exception:  # noqa: BLE001 - whatever it is, `make` meets it again, in its place among the records
            return None
        return None if value is _MISSING else (doc_id, fields, value, fields_json)

    def _given_matrix(self, values: list[Any], vector: VectorField) -> tuple[np.ndarray, np.ndarray]:
        """The batch's given vectors as one float32 matrix, and which rows `given_vector` would accept."""
        dim = vector.dim
        if not values:
            return np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=bool)
        if self.vector_table is not None:  # row numbers of the --vectors matrix, read as VectorTable.vector reads one
            matrix = np.asarray(self.vector_table.matrix[np.asarray(values, dtype=np.intp)], dtype=np.float32)
            if matrix.ndim != 2 or matrix.shape[1] != dim:
                return matrix, np.zeros(len(values), dtype=bool)
            return matrix, usable_rows(matrix, vector)
        with np.errstate(over="ignore"):  # a number past float32's range becomes infinite, refused by usable_rows
            try:
                matrix = np.array(values, dtype=np.float32)
            except Exception:  # noqa: BLE001 - ragged, or not numbers: row by row below
                matrix = np.zeros(0, dtype=np.float32)
            if matrix.shape == (len(values), dim):
                return matrix, usable_rows(matrix, vector)
            matrix, shaped = np.zeros((len(values), dim), dtype=np.float32), np.zeros(len(values), dtype=bool)
            for i, value in enumerate(values):
                try:
                    row = np.asarray(value, dtype=np.float32)
                except Exception:  # noqa: BLE001 - `make` rejects it, in its place among the records
                    continue
                if row.ndim == 1 and row.size == dim:
                    matrix[i], shaped[i] = row, True
        return matrix, shaped & usable_rows(matrix, vector)

    def _contents(self, record: Record, doc_id: str) -> dict[str, Any]:
        plan, contents = self.plan, {}
        if plan.text_vector is not None:
            contents[plan.text_vector.name] = joined_text(record, plan.text_fields)
        if plan.image_vector is not None and plan.image_field:
            contents[plan.image_vector.name] = image_path(record, plan.image_field, plan.image_base, plan.image_root)
        if plan.precomputed is not None and self.vector_table is not None:
            vector = self.vector_table.vector(doc_id)
            contents[plan.precomputed.name] = given_vector(Record(record.source, record.line, {"vector": vector}),
                                                          "vector", plan.precomputed)
        elif plan.precomputed is not None:
            contents[plan.precomputed.name] = given_vector(record, plan.vector_column, plan.precomputed)
        return contents

    def _fingerprint(self, name: str, content: Any, hashed: dict[str, tuple[bool, bytes]]) -> str:
        """A digest of what this vector is made from (what was hashed goes into `hashed`, for `accept_older`)."""
        given = isinstance(content, np.ndarray)
        if given:
            data = np.asarray(content, dtype="<f4").tobytes()
        else:
            data = file_digest(content) if isinstance(content, Path) else str(content).encode("utf-8", "surrogatepass")
        hashed[name] = (given, data)
        return self.fingerprints.of(name, given, data)


def _parse_json(text: str) -> Any:
    """json.loads, through orjson first (as `records` reads JSONL): what orjson refuses, json parses or refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open_regular_file(path) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return digest.digest()
