"""The decisions of an incremental load, pure: no Redis, no model, so they are tested in milliseconds.

A record becomes a `Candidate` with a fingerprint: per vector field, a digest of what the vector is made from (the
model, the field's name and dimension, the content), and one of the other fields. Against the stored fingerprint:

- unchanged: every digest matches, so nothing is read or written (`skipped`);
- fields only: the vectors' digests match, so the stored vectors are reused and only the fields rewritten
  (`updated`);
- changed or new: what no stored vector is made from gets embedded (`embedded`), or taken as given (`given`).

A rebuild writes every candidate to an empty generation, so none is skipped, but stored vectors are still reused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vsearch.records import Record
from vsearch.schema import DataType, VectorField

if TYPE_CHECKING:
    import numpy as np

    from vsearch.store.documents import StoredState


@dataclass
class Candidate:
    """A record turned into a document-to-be: fields checked, contents known, fingerprints computed."""

    record: Record
    id: str
    fields: dict[str, Any]
    contents: dict[str, Any]  # vector name -> text, image Path, or a ready vector
    fingerprint: dict[str, str]
    hashed: dict[str, tuple[bool, bytes]]  # vector name -> (given, the bytes its fingerprint digests)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # a passage field: one row a passage
    spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # a passage field's [start, end) offsets
    embedded: bool = False  # a vector of it was made in this run (not reused from Redis): by a model, or given
    modelled: bool = False  # a vector of it was computed by a model in this run
    claimed: bool = False  # its id is recorded as read by this run
    new: bool = False  # no document has its id yet (or a rebuild writes it to an empty generation)
    rejected: bool = False  # its image could not be read, or its id appeared earlier in the input

    @property
    def missing(self) -> set[str]:
        """The vectors it still needs."""
        return set(self.contents) - set(self.vectors)


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Fingerprints:
    """Fingerprint digests for one run: `identity(vector)` names the model a vector field is made with."""

    def __init__(self, vectors: Sequence[VectorField], identity: Callable[[VectorField], str]) -> None:
        self.vectors = {v.name: v for v in vectors}
        self.identity = identity
        self.heads: dict[tuple[str, bool, DataType | None], bytes] = {}

    def of(self, name: str, given: bool, data: bytes) -> str:
        return digest(self.head(name, given) + data)

    def head(self, name: str, given: bool, datatype: DataType | None = None) -> bytes:
        """The model and the field's shape, as a fingerprint starts: the same for every record of a run.

        Not the element type: the vector a model makes is the same whatever the index stores it as, and
        `create-index --replace --type float16` converts stored vectors, so an unchanged reload must not embed
        them again. Fingerprints written before this held it (`datatype`: that older head)."""
        if (head := self.heads.get((name, given, datatype))) is None:
            vector = self.vectors[name]
            model = "given" if given else self.identity(vector)
            head = f"{model}\0{name}\0{vector.dim}\0".encode()
            if datatype is not None:
                head += f"{datatype.value}\0".encode()
            self.heads[name, given, datatype] = head
        return head

    def accept_older(self, candidate: Candidate, state: StoredState) -> None:
        """Take a stored fingerprint made with the older head (with the element type) as this run's, where the
        content is the same: tried only where the fingerprints differ, the index's own type first."""
        for name, (given, data) in candidate.hashed.items():
            stored = state.fingerprint.get(name)
            if stored is None or stored == candidate.fingerprint[name]:
                continue
            vector = self.vectors[name]
            for datatype in sorted(DataType, key=lambda t: t is not vector.datatype):
                if digest(self.head(name, given, datatype) + data) == stored:
                    state.fingerprint[name] = candidate.fingerprint[name]
                    break


@dataclass
class BatchDiff:
    skipped: int  # stored exactly as the input has them
    changed: list[tuple[Candidate, StoredState | None]]  # to be written; their stored vectors are worth reading


def compare(candidates: Sequence[Candidate], states: Sequence[StoredState | None], in_place: bool,
            fingerprints: Fingerprints) -> BatchDiff:
    """Which candidates are stored exactly as the input has them. `in_place`: the run writes where it compares
    (a plain load); a rebuild writes every candidate to the new generation."""
    skipped, changed = 0, []
    for candidate, state in zip(candidates, states):
        if state is not None:
            fingerprints.accept_older(candidate, state)
        if (in_place and state is not None
                and all(state.fingerprint.get(k) == v for k, v in candidate.fingerprint.items())):
            skipped += 1  # not even its vectors are read
        else:
            changed.append((candidate, state))
    return BatchDiff(skipped, changed)


def reuse_stored(changed: Sequence[tuple[Candidate, StoredState | None]],
                 stored_vectors: Sequence[dict[str, np.ndarray]], vectors: Sequence[VectorField],
                 in_place: bool) -> list[Candidate]:
    """Give each changed candidate every stored vector still made from the same content (and keep the stored
    fingerprint of a vector the input does not fill); returns those that still need a vector made."""
    to_embed = []
    for (candidate, state), stored in zip(changed, stored_vectors):
        candidate.new = state is None or not in_place
        old = state.fingerprint if state else {}
        for vector in vectors:
            name = vector.name
            if name in stored and (old.get(name) == candidate.fingerprint.get(name) or name not in candidate.contents):
                candidate.vectors[name] = stored[name]
                if name not in candidate.contents and name in old:
                    candidate.fingerprint[name] = old[name]
        if candidate.missing:
            to_embed.append(candidate)
    return to_embed


@dataclass
class Tally:
    embedded: int = 0  # a vector computed by a model
    given: int = 0  # every new vector given, none computed
    updated: int = 0  # only fields rewritten, vectors reused
    replaced: int = 0  # rewrote a document already stored (its old index entries linger until purged)


def tally(written: Sequence[Candidate]) -> Tally:
    return Tally(embedded=sum(1 for c in written if c.modelled),
                 given=sum(1 for c in written if c.embedded and not c.modelled),
                 updated=sum(1 for c in written if not c.embedded),
                 replaced=sum(1 for c in written if not c.new))


def is_incremental(to_embed: int, candidates: int) -> bool:
    """The first batch that needs a model tells what kind of run this is: a reload that embeds a few changed
    records (a fast-starting encoder pays), or a load that embeds nearly everything (a bulk one)."""
    return to_embed * 2 < candidates


def left_out(ids: Sequence[str], read: Sequence[bool], written: Sequence[bool]) -> tuple[list[str], list[str]]:
    """A rebuild's live documents that the new generation did not get: (those the input had but rejected,
    those the input no longer has)."""
    rejected, absent = [], []
    for doc_id, was_read, was_written in zip(ids, read, written):
        if not was_written:
            (rejected if was_read else absent).append(doc_id)
    return rejected, absent


def prune_share_exceeded(dropping: int, total: int, limit: float) -> bool:
    """Whether deleting `dropping` of `total` documents passes `--prune-limit` (a share, 0.1 for 10%)."""
    return bool(dropping) and dropping / max(total, 1) > limit
