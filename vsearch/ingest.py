"""`load`: one entry point that owns a whole run, from the input stream to the report.

A run reads records lazily, turns each into a document (or rejects it, with its file and line), fingerprints
what each vector is made from, reads the stored fingerprints of its batch in one round trip, embeds only what
is new or changed, rewrites what changed otherwise with the stored vectors, and writes each batch in one
MULTI/EXEC. Around that: the index's write lock, `--prune`, `--dry-run`, `--rebuild` behind the alias, and
the report. Nothing here parses command lines or prints; `progress` and `warn` are the caller's.
"""

from __future__ import annotations

import hashlib
import secrets
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np
import redis

from vsearch.config import Settings
from vsearch.errors import EXIT_OK, EXIT_REJECTED, ConnectionLost, InputError, ModelError, StoreError, UsageError, VsearchError
from vsearch.models import Encoder, encoder_for, known_dim, model_identity, model_name_for, open_images
from vsearch.records import Format, Record, detect_format, is_image_source, read_source
from vsearch.schema import IndexSpec, VectorField
from vsearch import store
from vsearch.fields import document_fields, document_id, given_vector, image_path, joined_text
from vsearch.rebuild import abandon, go_live, next_generation, wait_indexed
from vsearch.store.definitions import get_spec, index_stats, purge_replaced_entries
from vsearch.store.documents import FIELDS_DIGEST, Document, StoredState, read_states, read_vectors, scan_ids
from vsearch.store.keys import NAMESPACE
from vsearch.store.lock import index_lock

SHOWN_REJECTS = 10  # reject lines printed on stderr before the rest are only counted
RETRIES = 5
SEEN_TTL_S = 3600  # renewed by every batch: a killed run's id list is gone within the hour
PRUNE_PAGE = 1000
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)

# Where a run gets its models: `models.encoder_for` (this process), or `RayEngine.encoder` (a pool of Ray actors).
EncoderSource = Callable[[VectorField, str | None, Settings], Encoder]


@dataclass(frozen=True)
class LoadRequest:
    """Everything a `load` run needs to know, decided once before any record is read."""

    name: str
    source: str  # a file, a folder or glob of images, or - for stdin
    input_format: Format | None = None
    id_field: str = "id"
    text_fields: tuple[str, ...] = ()
    image_field: str | None = None
    image_root: Path | None = None  # where image paths may point; default: the input file's folder
    vector_column: str | None = None  # a column that already holds the vector (embedded elsewhere)
    batch_size: int | None = None  # documents a batch (one MULTI/EXEC); None: `batch_size_for` the plan
    prune: bool = False
    prune_limit: float = 0.1  # the share of the index --prune may delete without --force
    force: bool = False
    dry_run: bool = False
    strict: bool = False
    rejects: Path | None = None
    rebuild: bool = False
    wait_s: float = 0.0
    model: str | None = None
    image_model: str | None = None


@dataclass
class LoadReport:
    index: str
    read: int = 0  # records read from the input, rejected ones included
    embedded: int = 0  # documents whose vectors were computed by a model (or taken from --vector-column)
    updated: int = 0  # documents rewritten with their stored vectors: only other fields changed
    skipped: int = 0  # documents already stored exactly as the input has them
    deleted: int = 0  # documents --prune removed
    rejected: int = 0
    documents: int = 0  # documents in the index after the run
    seconds: float = 0.0
    dry_run: bool = False
    rebuilt: bool = False
    prune_skipped: str | None = None  # why --prune did nothing, when it did not run

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTED if self.rejected else EXIT_OK

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def summary(self) -> str:
        verb = "would load" if self.dry_run else "loaded"
        parts = [f"{self.read} read", f"{self.embedded} embedded", f"{self.updated} updated",
                 f"{self.skipped} unchanged", f"{self.deleted} deleted", f"{self.rejected} rejected"]
        done = f"{verb} '{self.index}'{' (rebuilt)' if self.rebuilt else ''}: {', '.join(parts)}"
        return f"{done}; {self.documents} documents in the index, {self.seconds:.1f} s"


# Documents a batch when --batch-size is not given. Embedding: small enough to show progress often. Given vectors
# cost nothing to embed: as many as a raw redis-py pipeline writes at once.
EMBED_BATCH = 256
GIVEN_BATCH = 1000


def batch_size_for(plan: LoadPlan) -> int:
    return EMBED_BATCH if plan.text_vector is not None or plan.image_vector is not None else GIVEN_BATCH


@dataclass(frozen=True)
class LoadPlan:
    """Which fields make which vectors."""

    id_field: str
    text_fields: tuple[str, ...]
    image_field: str | None
    image_root: Path  # image paths must resolve inside it
    image_base: Path  # relative image paths start here: the input file's folder
    text_vector: VectorField | None
    image_vector: VectorField | None
    precomputed: VectorField | None  # filled from vector_column
    vector_column: str = ""

    @property
    def planned(self) -> tuple[VectorField, ...]:
        return tuple(v for v in (self.text_vector, self.image_vector, self.precomputed) if v is not None)


@dataclass
class _Candidate:
    """A record turned into a document-to-be: fields checked, contents known, fingerprints computed."""

    record: Record
    id: str
    fields: dict[str, Any]
    contents: dict[str, Any]  # vector name -> text, image Path, or a ready vector
    fingerprint: dict[str, str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    embedded: bool = False  # a vector of it was computed in this run (not reused from Redis)
    claimed: bool = False  # its id is recorded as read by this run
    new: bool = False  # no document has its id yet
    rejected: bool = False  # its image could not be read


def _missing(candidate: _Candidate) -> set[str]:
    """The vectors a candidate still needs."""
    return set(candidate.contents) - set(candidate.vectors)


class Rejected(Exception):
    """A record that cannot become a document; the run goes on without it (unless --strict)."""


# ---------------------------------------------------------------------------------------------------
# The entry point


def run_load(
    client: redis.Redis,
    settings: Settings,
    request: LoadRequest,
    progress: Callable[[int], None] = lambda n: None,
    warn: Callable[[str], None] = lambda message: None,
    encoders: EncoderSource = encoder_for,
) -> LoadReport:
    """Load `request.source` into index `request.name`; see the module docstring for what a run does.

    `encoders` makes the models: only the embedding step differs between engines, never what is written."""
    started = time.perf_counter()
    if not is_image_source(request.source):
        request = replace(request, input_format=detect_format(request.source, request.input_format))
    spec = get_spec(client, request.name)
    plan = plan_load(spec, request)
    _check_known_dimensions(spec, plan, settings, request)
    report = LoadReport(index=request.name, dry_run=request.dry_run)
    with index_lock(client, request.name, request.wait_s,
                    waiting=lambda: warn(f"waiting up to {request.wait_s:g} s for another run on '{request.name}'")):
        spec = get_spec(client, request.name)  # as it is now that this run holds the lock
        if request.rebuild and not request.dry_run:
            _rebuild(client, settings, spec, plan, request, report, progress, warn, encoders)
        else:
            run = _Run(client, settings, spec, spec, plan, request, report, progress, warn, encoders)
            try:
                run.load()
                if request.prune:
                    _prune(client, spec, run, request, report, warn)
            finally:
                run.forget_ids()
            run.check_indexed()
            if ((run.replaced or report.deleted or run.scan_raced) and not request.dry_run
                    and not purge_replaced_entries(client, spec)):
                warn("Redis refused FT.DEBUG GC_FORCEINVOKE: full-text scores of this index are unreliable until "
                     "its garbage collector has run")
        report.documents = index_stats(client, get_spec(client, request.name)).documents
    report.seconds = time.perf_counter() - started
    return report


def plan_load(spec: IndexSpec, request: LoadRequest) -> LoadPlan:
    text_vector = spec.vector("text") if request.text_fields else None
    image_vector = spec.vector("image") if request.image_field else None
    if request.text_fields and text_vector is None:
        raise UsageError(f"index '{spec.name}' has no text vector field to hold --text-field embeddings")
    if request.image_field and image_vector is None:
        raise UsageError(f"index '{spec.name}' has no image vector field: create it with "
                         f"`vsearch create-index {spec.name} --image`")
    precomputed = None
    if request.vector_column:
        column, _, target = request.vector_column.partition("=")
        precomputed = spec.vector_named(target) if target else _only_free_vector(spec, text_vector, image_vector)
        if precomputed in (text_vector, image_vector):
            raise UsageError(f"--vector-column fills {precomputed.name}, which --text-field/--image-field also fill")
    if not request.text_fields and not request.image_field and precomputed is None:
        wanted = " or ".join(f"--{kind}-field" for kind in ("text", "image") if spec.vector(kind))
        raise UsageError(f"say which field to embed: {wanted or '--text-field'} (or --vector-column)")
    base = (Path.cwd() if request.source == "-" else _source_root(request.source)).resolve()
    root = request.image_root.resolve() if request.image_root else base
    return LoadPlan(request.id_field, request.text_fields, request.image_field, root, base, text_vector,
                    image_vector, precomputed, (request.vector_column or "").partition("=")[0])


def _only_free_vector(spec: IndexSpec, *taken: VectorField | None) -> VectorField:
    free = [v for v in spec.vectors if v not in taken]
    if len(free) != 1:
        names = ", ".join(v.name for v in spec.vectors)
        raise UsageError(f"say which vector field --vector-column fills: --vector-column COLUMN=FIELD (fields: {names})")
    return free[0]


def _source_root(source: str) -> Path:
    path = Path(source)
    return path if path.is_dir() else path.parent if path.parent != Path("") else Path.cwd()


def _check_known_dimensions(spec: IndexSpec, plan: LoadPlan, settings: Settings, request: LoadRequest) -> None:
    """Refuse a model of the wrong dimension before reading anything, where its dimension is known by name.

    Other models are checked when first loaded, which is before their first vector is written.
    """
    for vector, override in ((plan.text_vector, request.model), (plan.image_vector, request.image_model)):
        if vector is None:
            continue
        name = model_name_for(vector, override, settings)
        dim = known_dim(name)
        if dim is not None and dim != vector.dim:
            raise ModelError(_dimension_message(spec, vector, name, dim))


def _dimension_message(spec: IndexSpec, vector: VectorField, model: str, dim: int) -> str:
    return (f"model '{model}' makes {dim}-d vectors but {vector.name} in index '{spec.name}' holds {vector.dim}-d "
            f"ones: load with the model the index was made for ({vector.model or 'unknown'})")


# ---------------------------------------------------------------------------------------------------
# One pass over the input


class _Run:
    """Reads `request.source`, compares with `source` (the generation holding the current documents), and
    writes to `target` (the same generation, or a new one during a rebuild)."""

    def __init__(self, client: redis.Redis, settings: Settings, source: IndexSpec, target: IndexSpec, plan: LoadPlan,
                 request: LoadRequest, report: LoadReport, progress: Callable[[int], None],
                 warn: Callable[[str], None], encoders: EncoderSource = encoder_for) -> None:
        self.client, self.settings, self.source, self.target = client, settings, source, target
        self.make_encoder = encoders
        self.plan, self.request, self.report, self.progress, self.warn = plan, request, report, progress, warn
        # The ids this run has read live in Redis, not in this process, so that memory stays constant whatever
        # the input's size: a hash id -> where it was read, for duplicates and for what --prune must keep.
        self.seen_key = f"{NAMESPACE}run:{secrets.token_hex(8)}:ids"
        self.unidentified = 0  # rejected records whose id could not be read: --prune cannot know them
        self.replaced = 0  # documents rewritten in place, whose old index entries linger until purged
        self.encoders: dict[str, Encoder] = {}
        self.fingerprint_heads: dict[tuple[str, bool], bytes] = {}
        self.incremental: bool | None = None  # decided by the first batch that needs a model
        self.rejects: IO[str] | None = None
        self.batch_rejects: list[str] = []
        stats = None if request.dry_run else index_stats(client, target)
        if stats is not None and stats.indexing:
            # RediSearch is still scanning the keyspace for the keys this index should hold (it was just made,
            # on a server with many keys). A document written now is indexed twice, by the write and again by
            # the scan, and the duplicate entries break full-text ranking (a wrapped-around BM25 IDF): wait.
            stats = wait_indexed(client, target, seconds=10.0)
            if stats.indexing:  # only a wait long enough to notice is worth a line
                warn(f"waiting for Redis to finish scanning existing keys into '{request.name}'")
                stats = wait_indexed(client, target)
        self.scan_raced = stats is not None and stats.indexing  # still scanning after the wait: purge at the end
        self.failures_before = stats.indexing_failures if stats else 0
        # An index that starts empty, with nothing refused or still being scanned, has no stored fingerprints to
        # compare with, and the lock keeps other loads out: every document of this run is new, so a first load
        # skips the fingerprint reads (a sixth of its time with given vectors; bench/report.py --part loading).
        self.starts_empty = (stats is not None and source is target and stats.documents == 0
                             and stats.indexing_failures == 0 and not stats.indexing)

    def load(self) -> None:
        try:
            for batch in _batches(read_source(self.request.source, self.request.input_format, self.plan.image_base),
                                  self.request.batch_size or batch_size_for(self.plan)):
                candidates, claims = self._prepare(batch)
                if claims:
                    self._with_retries(lambda: self._claim(claims))
                candidates = [c for c in candidates if not c.rejected]
                if candidates:
                    self._with_retries(lambda: self._store(candidates))
                self.progress(len(batch))
        except VsearchError as exc:
            if not isinstance(exc, (InputError, UsageError)):
                exc.args = (f"{exc} (this run had written {self.report.embedded + self.report.updated} documents "
                            "before it; rerun the same command to finish)",)
            raise
        finally:
            if self.rejects is not None:
                self.rejects.close()

    def _with_retries(self, step: Callable[[], None]) -> None:
        """Run a batch's Redis work again after a lost connection: every write replaces whole documents, so a
        batch sent twice leaves the same data. The embedded server is restarted (its AOF brings the data back)."""
        for attempt in range(RETRIES + 1):
            try:
                step()
                return
            except ConnectionLost:
                if attempt == RETRIES:
                    raise
                self.warn(f"lost the connection to Redis; retrying in {RETRY_DELAYS_S[attempt]:g} s")
                time.sleep(RETRY_DELAYS_S[attempt])
                if self.settings.embedded:
                    from vsearch import server

                    try:
                        server.ensure_running(self.settings.home)
                    except VsearchError as exc:
                        self.warn(f"cannot restart the embedded server yet: {exc}")

    def _prepare(self, records: list[Record]) -> tuple[list[_Candidate], list[tuple[str, Record, _Candidate | None]]]:
        """Records to candidates, rejecting the bad ones: no Redis, so it runs once per batch.

        Also returns every readable id of the batch (rejected records' too: --prune must keep their documents).
        """
        first_batch = self.report.read == 0
        self.report.read += len(records)
        self.batch_rejects = []
        self.batch_ids: list[tuple[str, Record]] = []
        candidates = [c for c in (self._candidate(r) for r in records) if c is not None]
        if first_batch and not candidates and self.batch_rejects and all(": no field '" in m for m in self.batch_rejects):
            # Not bad records but a wrong command line: no record has the field the options name.
            raise InputError(f"{self.batch_rejects[0]} (no record of the first batch has it: check the field options)")
        by_record = {id(c.record): c for c in candidates}
        return candidates, [(doc_id, record, by_record.get(id(record))) for doc_id, record in self.batch_ids]

    def _claim(self, claims: list[tuple[str, Record, _Candidate | None]]) -> None:
        """Record this batch's ids as read; a candidate whose id an earlier record had is rejected.

        Idempotent: each claim stores where it was read, so a retried batch finds its own claims, not duplicates.
        """
        pending = [claim for claim in claims if not (claim[2] and claim[2].claimed)]
        if not pending:
            return
        with store.translate_errors("cannot record the ids of this run"):
            found = self.client.hmget(self.seen_key, [doc_id for doc_id, _, _ in pending])
            fresh = {}
            for (doc_id, record, candidate), where in zip(pending, found):
                mine = record.where()
                if where is not None and where.decode("utf-8", "replace") != mine and (doc_id not in fresh):
                    if candidate is not None and not candidate.rejected:
                        candidate.rejected = True
                        self._reject(record, f"id {doc_id!r} appeared earlier in this input "
                                             f"({where.decode('utf-8', 'replace')}); the first one was loaded")
                elif doc_id in fresh and fresh[doc_id] != mine:
                    if candidate is not None and not candidate.rejected:
                        candidate.rejected = True
                        self._reject(record, f"id {doc_id!r} appeared earlier in this input ({fresh[doc_id]}); "
                                             "the first one was loaded")
                else:
                    fresh[doc_id] = mine
            if fresh:
                pipe = self.client.pipeline(transaction=False)
                pipe.hset(self.seen_key, mapping=fresh)
                pipe.expire(self.seen_key, SEEN_TTL_S)
                pipe.execute()
        for _, _, candidate in pending:
            if candidate is not None:
                candidate.claimed = True

    def was_read(self, ids: list[str]) -> list[bool]:
        with store.translate_errors("cannot read the ids of this run"):
            return [found is not None for found in self.client.hmget(self.seen_key, ids)] if ids else []

    def forget_ids(self) -> None:
        try:
            self.client.unlink(self.seen_key)
        except redis.RedisError:
            pass  # it expires by itself

    def _store(self, candidates: list[_Candidate]) -> None:
        """Compare with what is stored, embed what changed, write: safe to run again after a lost connection."""
        candidates = [c for c in candidates if not c.rejected]
        states: list[StoredState | None] = ([None] * len(candidates) if self.starts_empty
                                            else read_states(self.client, self.source, [c.id for c in candidates]))
        skipped = 0
        changed: list[tuple[_Candidate, StoredState | None]] = []
        for candidate, state in zip(candidates, states):
            if (self.source is self.target and state is not None
                    and all(state.fingerprint.get(k) == v for k, v in candidate.fingerprint.items())):
                skipped += 1  # stored exactly as the input has it: not even its vectors are read
            else:
                changed.append((candidate, state))
        # Only documents about to be rewritten have their stored vectors read, to reuse what is still valid.
        stored_vectors = self._stored_vectors([c for c, _ in changed], [state for _, state in changed])
        to_write: list[_Candidate] = []
        to_embed: list[_Candidate] = []
        for (candidate, state), stored in zip(changed, stored_vectors):
            candidate.new = state is None or self.source is not self.target  # a rebuild writes to an empty generation
            old = state.fingerprint if state else {}
            for vector in self.source.vectors:  # reuse every stored vector still made from the same content
                name = vector.name
                if name in stored and (old.get(name) == candidate.fingerprint.get(name) or name not in candidate.contents):
                    candidate.vectors[name] = stored[name]
                    if name not in candidate.contents and name in old:
                        candidate.fingerprint[name] = old[name]
            if _missing(candidate):
                to_embed.append(candidate)
            to_write.append(candidate)
        if to_embed and self.incremental is None:
            # The first batch that needs a model tells what kind of run this is: a reload that embeds a few
            # changed records, or a load that embeds nearly everything.
            self.incremental = len(to_embed) * 2 < len(candidates)
        self._embed(to_embed)
        to_write = [c for c in to_write if not c.rejected]
        if to_write and not self.request.dry_run:
            store.write_documents(self.client, self.target, [
                Document(c.id, c.fields, c.vectors, c.fingerprint, c.record.where(), new=c.new) for c in to_write])
        # Counted only once the batch is stored, so a retried batch is not counted twice.
        self.report.skipped += skipped
        self.report.embedded += sum(1 for c in to_write if c.embedded)
        self.report.updated += sum(1 for c in to_write if not c.embedded)
        self.replaced += sum(1 for c in to_write if not c.new)

    def _stored_vectors(self, candidates: list[_Candidate], states: list[Any]) -> list[dict[str, np.ndarray]]:
        existing = [i for i, state in enumerate(states) if state is not None]
        out: list[dict[str, np.ndarray]] = [{} for _ in candidates]
        if existing:
            found = read_vectors(self.client, self.source, [candidates[i].id for i in existing], self.source.vectors)
            for i, vectors in zip(existing, found):
                out[i] = vectors
        return out

    # -- records to candidates --------------------------------------------------------------------

    def _candidate(self, record: Record) -> _Candidate | None:
        try:
            if record.error:
                raise Rejected(record.error)
            doc_id = document_id(record, self.plan.id_field)
            self.batch_ids.append((doc_id, record))
            fields = document_fields(self.target, record, {self.plan.vector_column} - {""})
            contents = self._contents(record)
            fingerprint = {name: self._fingerprint(name, content) for name, content in contents.items()}
        except (Rejected, InputError) as exc:
            self._reject(record, str(exc))
            return None
        fingerprint[FIELDS_DIGEST] = _digest(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode())
        return _Candidate(record, doc_id, fields, contents, fingerprint)

    def _contents(self, record: Record) -> dict[str, Any]:
        plan, contents = self.plan, {}
        if plan.text_vector is not None:
            contents[plan.text_vector.name] = joined_text(record, plan.text_fields)
        if plan.image_vector is not None and plan.image_field:
            contents[plan.image_vector.name] = image_path(record, plan.image_field, plan.image_base, plan.image_root)
        if plan.precomputed is not None:
            contents[plan.precomputed.name] = given_vector(record, plan.vector_column, plan.precomputed)
        return contents

    def _fingerprint(self, name: str, content: Any) -> str:
        """A digest of what this vector is made from: the model, the field's shape, and the content."""
        if isinstance(content, np.ndarray):
            return _digest(self._fingerprint_head(name, given=True) + np.asarray(content, dtype="<f4").tobytes())
        data = _file_digest(content) if isinstance(content, Path) else str(content).encode("utf-8", "surrogatepass")
        return _digest(self._fingerprint_head(name, given=False) + data)

    def _fingerprint_head(self, name: str, given: bool) -> bytes:
        """The model and the field's shape, as a fingerprint starts: the same for every record of a run."""
        if (head := self.fingerprint_heads.get((name, given))) is None:
            vector = next(v for v in self.target.vectors if v.name == name)
            model = "given" if given else self._model(vector)
            head = f"{model}\0{name}\0{vector.dim}\0{vector.datatype.value}\0".encode()
            self.fingerprint_heads[name, given] = head
        return head

    def _model(self, vector: VectorField) -> str:
        override = self.request.image_model if vector.embeds == "image" else self.request.model
        return model_identity(model_name_for(vector, override, self.settings))

    # -- embedding ---------------------------------------------------------------------------------

    def _embed(self, candidates: list[_Candidate]) -> None:
        """Compute the missing vectors; a record whose image cannot be read is rejected, the rest go on."""
        for vector in self.target.vectors:
            wanting = [c for c in candidates if vector.name in _missing(c) and not c.rejected]
            for c in wanting:
                c.embedded = True
            given = [c for c in wanting if isinstance(c.contents[vector.name], np.ndarray)]
            for c in given:
                c.vectors[vector.name] = c.contents[vector.name]
            wanting = [c for c in wanting if not isinstance(c.contents[vector.name], np.ndarray)]
            if not wanting or self.request.dry_run:
                for c in wanting:
                    c.vectors[vector.name] = np.zeros(vector.dim, dtype=np.float32)  # never written
                continue
            encoder = self._encoder(vector)
            if vector.embeds == "image":
                images, kept = [], []
                for c, image in zip(wanting, open_images([c.contents[vector.name] for c in wanting])):
                    if isinstance(image, InputError):
                        c.rejected = True
                        self._reject(c.record, str(image))
                    else:
                        images.append(image)
                        kept.append(c)
                if kept:
                    for c, vec in zip(kept, encoder.encode_images(images)):
                        c.vectors[vector.name] = vec
            else:
                for c, vec in zip(wanting, encoder.encode_texts([c.contents[vector.name] for c in wanting])):
                    c.vectors[vector.name] = vec

    def _encoder(self, vector: VectorField) -> Encoder:
        """Loaded on first use: a reload with nothing new to embed never loads a model."""
        if vector.name not in self.encoders:
            override = self.request.image_model if vector.embeds == "image" else self.request.model
            if self.incremental and self.make_encoder is encoder_for and self._exported(vector, override):
                # A few texts: the torch-free ONNX export starts in ~0.1 s against ~5 s for torch, which would
                # dominate a nightly reload; a bulk load keeps sentence-transformers, faster for big batches.
                encoder = encoder_for(vector, override, self.settings, query=True)
            else:
                encoder = self.make_encoder(vector, override, self.settings)
            if encoder.dim != vector.dim:
                raise ModelError(_dimension_message(self.target, vector, encoder.name, encoder.dim))
            self.encoders[vector.name] = encoder
        return self.encoders[vector.name]

    def _exported(self, vector: VectorField, override: str | None) -> bool:
        """A text model already exported for queries (`vsearch models prepare`, or an earlier text query)."""
        if vector.embeds != "text":
            return False
        from vsearch.onnx_text import export_path

        try:
            return export_path(self.settings.home, model_name_for(vector, override, self.settings)).is_dir()
        except VsearchError:
            return False

    # -- rejects -----------------------------------------------------------------------------------

    def _reject(self, record: Record, reason: str) -> None:
        message = reason if reason.startswith(record.source) else f"{record.where()}: {reason}"
        self.batch_rejects.append(message)
        if self.request.strict:
            raise InputError(f"{message} (--strict: nothing of this batch or after it was written)")
        self.report.rejected += 1
        if not record.data and record.error:
            self.unidentified += 1
        if self.report.rejected <= SHOWN_REJECTS:
            self.warn(f"rejected {message}")
        if self.request.rejects is not None and not self.request.dry_run:
            if self.rejects is None:
                # surrogateescape: a line that was not UTF-8 goes back out as the bytes it came in as.
                self.rejects = open(self.request.rejects, "w", encoding="utf-8", errors="surrogateescape", newline="")
            raw = record.raw or json.dumps(record.data, ensure_ascii=False)
            self.rejects.write(raw if raw.endswith("\n") else raw + "\n")
            self.rejects.flush()

    def check_indexed(self) -> None:
        """Redis silently leaves out of the index a document it cannot index: never report one as loaded."""
        if self.request.dry_run:
            return
        stats = wait_indexed(self.client, self.target)
        refused = stats.indexing_failures - self.failures_before
        if refused > 0:
            raise StoreError(f"Redis could not index {refused} of the documents written to '{self.target.name}' "
                             "(FT.INFO hash_indexing_failures): they are stored but not searchable")

    @property
    def unknown_ids(self) -> bool:
        return self.unidentified > 0


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(records, size)):
        yield batch


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise InputError(f"image file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return digest.digest()


# ---------------------------------------------------------------------------------------------------
# Prune and rebuild


def _prune(client: redis.Redis, spec: IndexSpec, run: _Run, request: LoadRequest, report: LoadReport,
           warn: Callable[[str], None]) -> None:
    if run.unknown_ids:
        report.prune_skipped = f"{run.unidentified} rejected record(s) had no readable id"
        warn(f"--prune skipped: {report.prune_skipped}, so no document can safely be called absent")
        return
    absent: list[str] = []
    page: list[str] = []
    for doc_id in scan_ids(client, spec):
        page.append(doc_id)
        if len(page) >= PRUNE_PAGE:
            absent += [i for i, read in zip(page, run.was_read(page)) if not read]
            page = []
    absent += [i for i, read in zip(page, run.was_read(page)) if not read]
    total = max(index_stats(client, spec).documents, 1)
    if absent and len(absent) / total > request.prune_limit and not request.force:
        raise UsageError(f"--prune would delete {len(absent)} of {total} documents ({len(absent) / total:.0%}), more "
                         f"than --prune-limit {request.prune_limit:.0%}: check the input, or pass --force")
    report.deleted = len(absent) if request.dry_run else store.delete_documents(client, spec, absent)


def _rebuild(client: redis.Redis, settings: Settings, live: IndexSpec, plan: LoadPlan, request: LoadRequest,
             report: LoadReport, progress: Callable[[int], None], warn: Callable[[str], None],
             encoders: EncoderSource = encoder_for) -> None:
    """Load the whole input into a new generation beside the live one (reusing the live vectors whose content
    did not change), then let `rebuild.go_live` check it and swap it in."""
    new = next_generation(client, live)
    run = _Run(client, settings, live, new, plan, request, report, progress, warn, encoders)
    try:
        try:
            run.load()
        finally:
            run.forget_ids()
        run.check_indexed()
        go_live(client, live, new, report.embedded + report.updated)
    except BaseException:
        abandon(client, new)
        raise
    report.rebuilt = True
