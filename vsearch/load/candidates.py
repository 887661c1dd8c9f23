"""Records to candidates: the document's id and fields, what each vector is made from, and its fingerprint.

No Redis and no model: a bad record becomes a reject here, with its file and line, before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vsearch.encode import VectorTable
from vsearch.errors import InputError
from vsearch.fields import document_fields, document_id, given_vector, image_path, joined_text, open_regular_file
from vsearch.load.diff import Candidate, Fingerprints, digest
from vsearch.load.plan import LoadPlan
from vsearch.records import Record
from vsearch.schema import IndexSpec
from vsearch.store.documents import FIELDS_DIGEST


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


def file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open_regular_file(path) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return digest.digest()
