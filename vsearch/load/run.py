"""`load`: one entry point that owns a whole run, from the input stream to the report.

A run reads records lazily, turns each into a document (or rejects it, with its file and line), fingerprints
what each vector is made from, reads the stored fingerprints of its batch in one round trip, embeds only what
is new or changed, rewrites what changed otherwise with the stored vectors, and writes each batch in one
MULTI/EXEC. Around that: the index's write lock, `--prune`, `--dry-run`, `--rebuild` behind the alias, and
the report. Nothing here parses command lines or prints; `progress` and `warn` are the caller's.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np
import redis

from vsearch.config import Settings
from vsearch.errors import (EXIT_OK, EXIT_REJECTED, ConnectionLost, InputError, PruneRefused, StoreError,
                            UsageError, VsearchError)
from vsearch.embed import VectorTable, open_output
from vsearch.models import (Encoder, encoder_for, known_dim, model_identity, model_name_for, open_images,
                            prepare_query_encoder)
from vsearch.records import Format, Record, detect_format, image_folder, is_image_source, read_source
from vsearch.schema import DataType, IndexSpec, VectorField
from vsearch import store
from vsearch.fields import document_fields, document_id, given_vector, image_path, joined_text, open_regular_file
from vsearch.rebuild import abandon, go_live, next_generation, wait_indexed
from vsearch.store.definitions import check_owned, get_spec, index_stats, purge_replaced_entries
from vsearch.store.documents import (FIELDS_DIGEST, Document, StoredState, check_persisted, read_states, read_vectors,
                                     scan_ids)
from vsearch.store.keys import NAMESPACE
from vsearch.store.lock import Lease, index_lock

VECTORS_COLUMN = "__vsearch_vectors"  # what --vectors fills, as --vector-column would a column
ALIKE_TRACKED = 100_000  # image vectors compared for identical ones; past that memory matters more
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
    vectors: Path | None = None  # a .npy file of vectors (from `encode -o`), found by the records' ids
    batch_size: int | None = None  # documents a batch (one MULTI/EXEC); None: `batch_size_for` the plan
    prune: bool = False
    prune_limit: float = 0.1  # the share of the index --prune may delete without --force
    force: bool = False
    dry_run: bool = False
    strict: bool = False
    rejects: Path | None = None
    report: Path | None = None  # written by the caller; checked here, before anything is read
    rebuild: bool = False
    wait_s: float = 0.0
    model: str | None = None
    image_model: str | None = None


@dataclass
class LoadReport:
    index: str
    read: int = 0  # records read from the input, rejected ones included
    embedded: int = 0  # documents whose vectors were computed by a model
    given: int = 0  # documents whose new vectors were all given (--vector-column): written without a model
    updated: int = 0  # documents rewritten with their stored vectors: only other fields changed
    skipped: int = 0  # documents already stored exactly as the input has them
    deleted: int = 0  # documents --prune removed
    rejected: int = 0
    documents: int = 0  # documents in the index after the run
    seconds: float = 0.0
    dry_run: bool = False
    rebuilt: bool = False
    prune_skipped: str | None = None  # why --prune did nothing, when it did not run
    would_delete: list[str] | None = None  # --dry-run --prune: the ids a real run would delete
    started: str = ""  # UTC, ISO 8601: which night's run a report is from
    finished: str = ""
    exit_code: int = EXIT_OK  # the exit code of the run, failed runs included
    error: str | None = None  # the error line of a failed run

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @property
    def written(self) -> int:
        return self.embedded + self.given + self.updated

    def attention(self) -> str:
        """What of a run needs a person's look, in one line: `--quiet` prints it when there is any."""
        parts = [f"{self.rejected} record(s) rejected"] if self.rejected else []
        if self.prune_skipped:
            parts.append(f"--prune skipped ({self.prune_skipped})")
        return f"load '{self.index}': {'; '.join(parts) or 'nothing to report'}"

    def summary(self) -> str:
        verb = "would load" if self.dry_run else "loaded"
        parts = [f"{self.read} read", f"{self.embedded} embedded", *([f"{self.given} given"] if self.given else []),
                 f"{self.updated} updated",
                 f"{self.skipped} skipped", f"{self.deleted} deleted", f"{self.rejected} rejected"]
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
    hashed: dict[str, tuple[bool, bytes]]  # vector name -> (given, the bytes its fingerprint digests)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    embedded: bool = False  # a vector of it was made in this run (not reused from Redis): by a model, or given
    modelled: bool = False  # a vector of it was computed by a model in this run
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
    progress: Callable[[int, int], None] = lambda records, size: None,
    warn: Callable[[str], None] = lambda message: None,
    encoders: EncoderSource = encoder_for,
) -> LoadReport:
    """Load `request.source` into index `request.name`; see the module docstring for what a run does.

    `encoders` makes the models: only the embedding step differs between engines, never what is written."""
    check_output_paths(request)
    report = LoadReport(index=request.name, dry_run=request.dry_run, started=_now())
    started = time.perf_counter()
    try:
        _load(client, settings, request, report, progress, warn, encoders)
        report.exit_code = EXIT_REJECTED if report.rejected else EXIT_OK
    except VsearchError as exc:
        report.exit_code, report.error = exc.exit_code, " ".join(str(exc).split())
        raise
    except KeyboardInterrupt:
        report.exit_code, report.error = 130, "interrupted"
        raise
    finally:
        report.seconds = time.perf_counter() - started
        report.finished = _now()
        if request.report is not None:
            # Failed runs too, so that a cron job's monitor never reads the previous night's report as this one's.
            # Written whole (a reader never sees half a report) and private to its owner (0600).
            with open_output(request.report.expanduser()) as out:
                out.write((report.to_json() + "\n").encode())
    return report


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _load(client: redis.Redis, settings: Settings, request: LoadRequest, report: LoadReport,
          progress: Callable[[int, int], None], warn: Callable[[str], None], encoders: EncoderSource) -> None:
    if not is_image_source(request.source):
        request = replace(request, input_format=detect_format(request.source, request.input_format))
    spec = get_spec(client, request.name)
    plan = plan_load(spec, request)
    _check_known_dimensions(spec, plan, settings, request)
    with index_lock(client, request.name, request.wait_s,
                    waiting=lambda: warn(f"waiting up to {request.wait_s:g} s for another run on '{request.name}'")
                    ) as lease:
        spec = get_spec(client, request.name)  # as it is now that this run holds the lock
        if request.rebuild and not request.dry_run:
            _rebuild(client, settings, spec, plan, request, report, progress, warn, encoders, lease)
        else:
            run = _Run(client, settings, spec, spec, plan, request, report, progress, warn, encoders, lease)
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
        if not request.dry_run:
            check_persisted(client)  # prunes and a rebuild's swap write too
        report.documents = index_stats(client, get_spec(client, request.name)).documents


def check_output_paths(request: LoadRequest) -> None:
    """Refuse --rejects and --report paths that cannot be written, or that would overwrite the input, before
    anything is read: a rejects file opened on the input truncates it while it is read."""
    outputs = [(option, path.expanduser()) for option, path in (("--rejects", request.rejects),
                                                                  ("--report", request.report)) if path is not None]
    if len(outputs) == 2 and _same_file(outputs[0][1], outputs[1][1]):
        raise UsageError("--rejects and --report name the same file: give each its own")
    for option, path in outputs:
        if path.is_dir():
            raise UsageError(f"{option} {path}: is a folder; give a file name")
        if not path.parent.is_dir():
            raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
        if _is_input(path, request.source):
            raise UsageError(f"{option} {path} is the input file: writing it would destroy the input; "
                             "give another file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _is_input(path: Path, source: str) -> bool:
    if not path.exists():
        return False
    try:
        if source == "-":  # stdin redirected from that very file (`< data.jsonl --rejects data.jsonl`)
            ours, theirs = os.fstat(0), os.stat(path)
            return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)
        return Path(source).is_file() and os.path.samefile(source, path)
    except (OSError, ValueError):
        return False


def plan_load(spec: IndexSpec, request: LoadRequest) -> LoadPlan:
    text_vector = spec.vector("text") if request.text_fields else None
    image_vector = spec.vector("image") if request.image_field else None
    if request.text_fields and text_vector is None:
        raise UsageError(f"index '{spec.name}' has no text vector field to hold --text-field embeddings")
    if request.image_field and image_vector is None:
        raise UsageError(f"index '{spec.name}' has no image vector field: create it with "
                         f"`vsearch create-index {spec.name} --image`")
    precomputed = None
    if request.vectors is not None and request.vector_column:
        raise UsageError("give --vector-column or --vectors, not both")
    given = request.vector_column or (VECTORS_COLUMN if request.vectors is not None else None)
    if given:
        column, _, target = given.partition("=")
        precomputed = spec.vector_named(target) if target else _only_free_vector(spec, text_vector, image_vector)
        if precomputed in (text_vector, image_vector):
            raise UsageError(f"--vector-column fills {precomputed.name}, which --text-field/--image-field also fill")
    if not request.text_fields and not request.image_field and precomputed is None:
        wanted = " or ".join(f"--{kind}-field" for kind in ("text", "image") if spec.vector(kind))
        raise UsageError(f"say which field to embed: {wanted or '--text-field'} (or --vector-column)")
    base = (Path.cwd() if request.source == "-" else _source_root(request.source)).resolve()
    root = request.image_root.resolve() if request.image_root else base
    return LoadPlan(request.id_field, request.text_fields, request.image_field, root, base, text_vector,
                    image_vector, precomputed, (given or "").partition("=")[0])


def _only_free_vector(spec: IndexSpec, *taken: VectorField | None) -> VectorField:
    free = [v for v in spec.vectors if v not in taken]
    if len(free) != 1:
        names = ", ".join(v.name for v in spec.vectors)
        raise UsageError(f"say which vector field --vector-column fills: --vector-column COLUMN=FIELD (fields: {names})")
    return free[0]


def _source_root(source: str) -> Path:
    """Where a source's relative paths start: an image folder or glob's `records.image_folder`; a file's folder."""
    if is_image_source(source):
        return image_folder(source)
    path = Path(source)
    return path.parent if path.parent != Path("") else Path.cwd()


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
            raise UsageError(_dimension_message(spec, vector, name, dim))


def _dimension_message(spec: IndexSpec, vector: VectorField, model: str, dim: int) -> str:
    return (f"model '{model}' makes {dim}-d vectors but {vector.name} in index '{spec.name}' holds {vector.dim}-d "
            f"ones: load with the model the index was made for ({vector.model or 'unknown'})")


# ---------------------------------------------------------------------------------------------------
# One pass over the input


class _Run:
    """Reads `request.source`, compares with `source` (the generation holding the current documents), and
    writes to `target` (the same generation, or a new one during a rebuild)."""

    def __init__(self, client: redis.Redis, settings: Settings, source: IndexSpec, target: IndexSpec, plan: LoadPlan,
                 request: LoadRequest, report: LoadReport, progress: Callable[[int, int], None],
                 warn: Callable[[str], None], encoders: EncoderSource = encoder_for,
                 lease: Lease | None = None) -> None:
        self.client, self.settings, self.source, self.target = client, settings, source, target
        self.lease = lease  # checked before every write: a run that lost its lock writes nothing more
        self.make_encoder = encoders
        self.plan, self.request, self.report, self.progress, self.warn = plan, request, report, progress, warn
        # The ids this run has read live in Redis, not in this process, so that memory stays constant whatever
        # the input's size: a hash id -> where it was read, for duplicates and for what --prune must keep.
        self.seen_key = f"{NAMESPACE}run:{secrets.token_hex(8)}:ids"
        self.unidentified = 0  # rejected records whose id could not be read: --prune cannot know them
        self.replaced = 0  # documents rewritten in place, whose old index entries linger until purged
        self.encoders: dict[str, Encoder] = {}
        self.fingerprint_heads: dict[tuple[str, bool, DataType | None], bytes] = {}
        self.incremental: bool | None = None  # decided by the first batch that needs a model
        self.rejects: IO[str] | None = None
        self.vector_table = VectorTable(request.vectors) if request.vectors is not None else None
        self.vectors_seen: dict[bytes, tuple[str, str]] = {}  # an image vector's digest -> (its file's, its id)
        self.alike = 0
        self.alike_example: tuple[str, str] | None = None
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
            for batch in _batches(read_source(self.request.source, self.request.input_format),
                                  self.request.batch_size or batch_size_for(self.plan)):
                candidates, claims = self._prepare(batch)
                if claims:
                    self._with_retries(lambda: self._claim(claims))
                candidates = [c for c in candidates if not c.rejected]
                if candidates:
                    self._with_retries(lambda: self._store(candidates))
                # Characters of the records as read: the bytes of the input where it is ASCII, for a progress bar.
                self.progress(len(batch), sum(len(r.raw) for r in batch))
        except VsearchError as exc:
            if not isinstance(exc, (InputError, UsageError)):
                exc.args = (f"{exc} (this run had written {self.report.written} documents "
                            "before it; rerun the same command to finish)",)
            raise
        finally:
            if self.rejects is not None:
                self.rejects.close()
        self.warn_alike()
        self._prepare_query_model()

    def _prepare_query_model(self) -> None:
        """After a load that embedded texts with torch, export the text model for queries if it is not yet: the
        first text query would otherwise spend ~20 s on it, in the middle of the user's query (measured 23 s)."""
        if self.request.dry_run or self.make_encoder is not encoder_for:
            return
        from vsearch.onnx_text import exportable, exported

        for vector in self.target.vectors:
            if vector.embeds != "text" or vector.name not in self.encoders:
                continue
            name = self.model_for(vector)
            # A model the export cannot reproduce (CLIP) answers queries through torch, as before.
            if exported(self.settings.home, name) or not exportable(name):
                continue
            self.warn(f"preparing the fast query model for '{name}' (once, ~20 s), so that text queries start in "
                      "under a second")
            try:
                prepare_query_encoder(name, self.settings.home)
            except VsearchError as exc:  # not exportable: queries use sentence-transformers, only slower to start
                self.warn(f"no fast query model: {exc}")

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

    def check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

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
            if state is not None:
                self._accept_older(candidate, state)
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
            self.check_lease()
            store.write_documents(self.client, self.target, [
                Document(c.id, c.fields, c.vectors, c.fingerprint, c.record.where(), new=c.new) for c in to_write])
            check_persisted(self.client, f"the last batch's {len(to_write)} document(s)")
        # Counted only once the batch is stored, so a retried batch is not counted twice.
        self.report.skipped += skipped
        self.report.embedded += sum(1 for c in to_write if c.modelled)
        self.report.given += sum(1 for c in to_write if c.embedded and not c.modelled)
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
        doc_id = None
        try:
            if record.error:
                raise Rejected(record.error)
            doc_id = document_id(record, self.plan.id_field)
            self.batch_ids.append((doc_id, record))
            fields = document_fields(self.target, record, {self.plan.vector_column} - {""})
            contents = self._contents(record, doc_id)
            hashed: dict[str, tuple[bool, bytes]] = {}
            fingerprint = {name: self._fingerprint(name, content, hashed) for name, content in contents.items()}
        except (Rejected, InputError) as exc:
            self._reject(record, str(exc), identified=doc_id is not None)
            return None
        try:
            fields_json = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # JSON's "\ud800": Redis would refuse the whole batch over it
            self._reject(record, "a field is not valid Unicode text (it holds a lone surrogate such as \\ud800)")
            return None
        fingerprint[FIELDS_DIGEST] = _digest(fields_json)
        return _Candidate(record, doc_id, fields, contents, fingerprint, hashed)

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
        """A digest of what this vector is made from: the model, the field's name and dimension, the content
        (what was hashed goes into `hashed`, for `_accept_older`)."""
        given = isinstance(content, np.ndarray)
        if given:
            data = np.asarray(content, dtype="<f4").tobytes()
        else:
            data = _file_digest(content) if isinstance(content, Path) else str(content).encode("utf-8", "surrogatepass")
        hashed[name] = (given, data)
        return _digest(self._fingerprint_head(name, given) + data)

    def _fingerprint_head(self, name: str, given: bool, datatype: DataType | None = None) -> bytes:
        """The model and the field's shape, as a fingerprint starts: the same for every record of a run.

        Not the element type: the vector a model makes is the same whatever the index stores it as, and
        `create-index --replace --type float16` converts stored vectors, so an unchanged reload must not embed
        them again. Fingerprints written before this held it (`datatype`: that older head)."""
        if (head := self.fingerprint_heads.get((name, given, datatype))) is None:
            vector = next(v for v in self.target.vectors if v.name == name)
            # A local model directory is named by its files, so one changed in place re-embeds (models.model_identity).
            model = "given" if given else model_identity(self.model_for(vector))
            head = f"{model}\0{name}\0{vector.dim}\0".encode()
            if datatype is not None:
                head += f"{datatype.value}\0".encode()
            self.fingerprint_heads[name, given, datatype] = head
        return head

    def _accept_older(self, candidate: _Candidate, state: StoredState) -> None:
        """Take a stored fingerprint made with the older head (with the element type) as this run's, where the
        content is the same: tried only where the fingerprints differ, the index's own type first."""
        for name, (given, data) in candidate.hashed.items():
            stored = state.fingerprint.get(name)
            if stored is None or stored == candidate.fingerprint[name]:
                continue
            vector = next(v for v in self.target.vectors if v.name == name)
            for datatype in sorted(DataType, key=lambda t: t is not vector.datatype):
                if _digest(self._fingerprint_head(name, given, datatype) + data) == stored:
                    state.fingerprint[name] = candidate.fingerprint[name]
                    break

    def model_for(self, vector: VectorField) -> str:
        override = self.request.image_model if vector.embeds == "image" else self.request.model
        return model_name_for(vector, override, self.settings)

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
            for c in wanting:
                c.modelled = True
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
                        self._note_alike(c, vector.name, vec)
            else:
                for c, vec in zip(wanting, encoder.encode_texts([c.contents[vector.name] for c in wanting])):
                    c.vectors[vector.name] = vec

    def _note_alike(self, candidate: _Candidate, name: str, vec: np.ndarray) -> None:
        """Count images of different files that embed identically: blank or transparent ones look alike to the
        model, and a folder of them would answer every query with all of them."""
        if len(self.vectors_seen) >= ALIKE_TRACKED:
            return
        key = hashlib.blake2b(np.asarray(vec, dtype="<f4").tobytes(), digest_size=16).digest()
        first = self.vectors_seen.setdefault(key, (candidate.fingerprint[name], candidate.id))
        if first[0] != candidate.fingerprint[name]:
            self.alike += 1
            self.alike_example = self.alike_example or (first[1], candidate.id)

    def warn_alike(self) -> None:
        if self.alike:
            a, b = self.alike_example or ("", "")
            self.warn(f"{self.alike} image(s) embedded exactly like another, different file (e.g. {a!r} and {b!r}): "
                      "blank, one-colour or transparent images all look alike to the image model")

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
                raise UsageError(_dimension_message(self.target, vector, encoder.name, encoder.dim))
            self.encoders[vector.name] = encoder
        return self.encoders[vector.name]

    def _exported(self, vector: VectorField, override: str | None) -> bool:
        """A text model already exported for queries (`vsearch models prepare`, or an earlier text query)."""
        from vsearch.onnx_text import exported

        return vector.embeds == "text" and exported(self.settings.home, model_name_for(vector, override, self.settings))

    # -- rejects -----------------------------------------------------------------------------------

    def _reject(self, record: Record, reason: str, identified: bool = True) -> None:
        """`identified`: the record's id was read, so --prune knows to keep its document."""
        message = reason if reason.startswith(record.source) else f"{record.where()}: {reason}"
        self.batch_rejects.append(message)
        if self.request.strict:
            raise InputError(f"{message} (--strict: nothing of this batch or after it was written)")
        self.report.rejected += 1
        if not identified:
            self.unidentified += 1
        if self.report.rejected <= SHOWN_REJECTS:
            self.warn(f"rejected {message}")
        if self.request.rejects is not None and not self.request.dry_run:
            if self.rejects is None:
                # surrogateescape: a line that was not UTF-8 goes back out as the bytes it came in as.
                # 0600, as --report: rejected records are the user's data, never for other local users.
                descriptor = os.open(self.request.rejects.expanduser(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                self.rejects = open(descriptor, "w", encoding="utf-8", errors="surrogateescape", newline="")
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
        with open_regular_file(path) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return digest.digest()


# ---------------------------------------------------------------------------------------------------
# Prune and rebuild


def _prune(client: redis.Redis, spec: IndexSpec, run: _Run, request: LoadRequest, report: LoadReport,
           warn: Callable[[str], None]) -> None:
    if run.unknown_ids:
        _skip_prune(run, report, warn)
        return
    check_owned(client, spec.name, spec.prefix)
    absent: list[str] = []
    for page in _pages(scan_ids(client, spec)):
        absent += [i for i, read in zip(page, run.was_read(page)) if not read]
    _check_prune_limit(len(absent), index_stats(client, spec).documents, request)
    if request.dry_run:
        absent.sort()  # SCAN's order is the server's: sorted, a person can read it and tools can diff it
        report.would_delete, report.deleted = absent, len(absent)
        if absent:
            shown = ", ".join(repr(i) for i in absent[:SHOWN_REJECTS])
            hidden = len(absent) - SHOWN_REJECTS
            more = f" and {hidden} more (--report FILE lists them all)" if hidden > 0 else ""
            warn(f"--prune would delete {shown}{more}")
        return
    run.check_lease()
    report.deleted = store.delete_documents(client, spec, absent)


def _skip_prune(run: _Run, report: LoadReport, warn: Callable[[str], None]) -> None:
    report.prune_skipped = f"{run.unidentified} rejected record(s) had no readable id"
    warn(f"--prune skipped: {report.prune_skipped}, so no document can safely be called absent")


def _check_prune_limit(dropping: int, total: int, request: LoadRequest) -> None:
    """The safety net of a nightly run: a truncated or empty export must not empty the index."""
    total = max(total, 1)
    if dropping and dropping / total > request.prune_limit and not request.force:
        what = "--rebuild" if request.rebuild else "--prune"
        raise PruneRefused(f"{what} would delete {dropping} of {total} documents ({dropping / total:.0%}), more "
                           f"than --prune-limit {request.prune_limit:.0%}: check the input, or pass --force")


def _pages(ids: Iterator[str]) -> Iterator[list[str]]:
    while page := list(islice(ids, PRUNE_PAGE)):
        yield page


def _rebuild(client: redis.Redis, settings: Settings, live: IndexSpec, plan: LoadPlan, request: LoadRequest,
             report: LoadReport, progress: Callable[[int, int], None], warn: Callable[[str], None],
             encoders: EncoderSource, lease: Lease) -> None:
    """Load the whole input into a new generation beside the live one (reusing the live vectors whose content
    did not change), settle the live documents the input did not bring, then let `rebuild.go_live` check the new
    generation and swap it in."""
    new = next_generation(client, live)
    run = _Run(client, settings, live, new, plan, request, report, progress, warn, encoders, lease)
    try:
        try:
            run.load()
            carried = _settle_left_out(client, live, new, run, request, report, warn)
        finally:
            run.forget_ids()
        run.check_indexed()
        go_live(client, live, new, report.written + carried, lease)
    except BaseException:
        abandon(client, new)
        raise
    report.rebuilt = True


def _settle_left_out(client: redis.Redis, live: IndexSpec, new: IndexSpec, run: _Run, request: LoadRequest,
                     report: LoadReport, warn: Callable[[str], None]) -> int:
    """The live documents a rebuild did not write: those of rejected records stay (as a plain load keeps them),
    and so do those the input no longer has, unless --prune drops them, within --prune-limit as a plain prune.
    Returns how many were carried over to the new generation."""
    rejected: list[str] = []
    absent: list[str] = []
    for page in _pages(scan_ids(client, live)):
        for doc_id, read, written in zip(page, run.was_read(page), store.exist(client, new, page)):
            if not written:
                (rejected if read else absent).append(doc_id)
    drop = request.prune and not run.unknown_ids
    if request.prune and run.unknown_ids and absent:
        _skip_prune(run, report, warn)
    if drop:
        _check_prune_limit(len(absent), index_stats(client, live).documents, request)
        report.deleted = len(absent)
    keep = rejected + ([] if drop else absent)
    if keep:
        _check_carried_vectors(live, run, len(keep))
        run.check_lease()
    return store.copy_documents(client, live, new, keep)


def _check_carried_vectors(live: IndexSpec, run: _Run, count: int) -> None:
    """A carried-over document keeps its vectors: refuse when this rebuild makes them with another model."""
    for vector in live.vectors:
        if vector in run.plan.planned and vector.model and run.model_for(vector) != vector.model:
            raise UsageError(f"this rebuild embeds {vector.name} with '{run.model_for(vector)}' instead of "
                             f"'{vector.model}', but {count} live document(s) are not in the input or were rejected, "
                             "and their vectors cannot be made again: load the full input, or add --prune to drop "
                             "the absent ones")
