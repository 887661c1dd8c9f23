"""`load`: one entry point that owns a whole run, from the input stream to the report.

A run reads records lazily, turns each into a candidate (`candidates`; or rejects it, with its file and line),
reads the stored fingerprints of its batch in one round trip, decides what is unchanged, changed or new (`diff`,
pure), embeds only what needs it (`embedding`), and writes each batch in one MULTI/EXEC. Around that: the index's
write lock, `--prune` (`prune`), `--dry-run`, `--rebuild` behind the alias (`rebuild`), and the report. Nothing
here parses command lines or prints; `progress` and `warn` are the caller's.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from itertools import islice
from typing import TypeVar

from vsearch import store
from vsearch.config import Settings
from vsearch.encode import VectorTable, open_output
from vsearch.errors import EXIT_OK, EXIT_REJECTED, ConnectionLost, InputError, StoreError, UsageError, VsearchError
from vsearch.load.prune import prune
from vsearch.load.rebuild import rebuild
from vsearch.load.candidates import CandidateMaker
from vsearch.load.diff import Candidate, Fingerprints, compare, is_incremental, reuse_stored, tally
from vsearch.load.embedding import Embedder
from vsearch.load.plan import (LoadPlan, check_known_dimensions, check_output_paths, model_for, plan_load, read_input,
                               resolve_request)
from vsearch.load.rejects import Rejects
from vsearch.load.request import LoadReport, LoadRequest
from vsearch.models import EncoderSource, model_identity, open_engine
from vsearch.records import Record
from vsearch.schema import IndexSpec, VectorField
from vsearch.store.documents import Document, StoredState
from vsearch.store.lock import Lease, index_lock
from vsearch.store.run_ids import RunIds

T = TypeVar("T")
RETRIES = 5
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def run_load(settings: Settings, request: LoadRequest,
             progress: Callable[[int, int], None] = lambda records, size: None,
             warn: Callable[[str], None] = lambda message: None,
             encoders: EncoderSource | None = None) -> LoadReport:
    """Load `request.source` into index `request.name`; see the module docstring for what a run does.

    Only the embedding step differs between engines, never what is written: `encoders` (an engine the caller
    already holds), else the one `request.engine` names, opened for this run."""
    check_output_paths(request)
    report = LoadReport(index=request.name, dry_run=request.dry_run, started=_now())
    started = time.perf_counter()
    try:
        client = store.connect(settings)
        with (nullcontext(encoders) if encoders else open_engine(request.engine, settings.device) as engine,
              collector_for_batches()):
            _load(client, settings, resolve_request(request), report, progress, warn, engine)
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


@contextmanager
def collector_for_batches() -> Iterator[None]:
    """Python's cyclic collector, set for a run of batches, and set back after. A batch holds some ten thousand
    containers (a record's dict, a given vector's list of numbers) until it is written: at the default thresholds (a
    young collection every 700 allocations, an older one every 10 of those) each batch was gone over again and again,
    its vectors' numbers included (a sixth of a load of given vectors; bench/report.py --part loading). What the
    process holds before the run (modules, the command line) is frozen out of collections, and young ones wait for
    50,000 allocations, so cyclic garbage still goes, a few batches later."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _load(client: store.Client, settings: Settings, request: LoadRequest, report: LoadReport,
          progress: Callable[[int, int], None], warn: Callable[[str], None], encoders: EncoderSource) -> None:
    spec = store.get_spec(client, request.name)
    plan = plan_load(spec, request)
    check_known_dimensions(spec, plan, settings, request)
    with index_lock(client, request.name, request.wait_s,
                    waiting=lambda: warn(f"waiting up to {request.wait_s:g} s for another run on '{request.name}'")
                    ) as lease:
        spec = store.get_spec(client, request.name)  # as it is now that this run holds the lock
        if request.rebuild and not request.dry_run:
            rebuild(client, spec, report, lambda new: Run(client, settings, spec, new, plan, request, report,
                                                                  progress, warn, encoders, lease), request, warn, lease)
        else:
            run = Run(client, settings, spec, spec, plan, request, report, progress, warn, encoders, lease)
            try:
                run.load()
                if request.prune:
                    prune(client, spec, run, request, report, warn)
            finally:
                run.ids.forget()
            run.check_indexed()
            if ((run.replaced or report.deleted or run.scan_raced) and not request.dry_run
                    and not store.purge_replaced_entries(client, spec)):
                warn("Redis refused FT.DEBUG GC_FORCEINVOKE: full-text scores of this index are unreliable until "
                     "its garbage collector has run")
        if not request.dry_run:
            store.check_persisted(client)  # prunes and a rebuild's swap write too
        report.documents = store.index_stats(client, store.get_spec(client, request.name)).documents


class Run:
    """One pass over the input: reads `request.source`, compares with `source` (the generation holding the current
    documents), and writes to `target` (the same generation, or a new one during a rebuild).

    Its methods are the steps of a batch (prepare, claim, store); each step that talks to Redis can be run again
    after a lost connection (`_with_retries`). Longer than ~80 lines on purpose: every step reads and updates the
    same run state (the lease, the run's ids, the rejects, the report's counts), and each step is short; the
    decisions themselves are in `diff`, the model step in `embedding`, prune and rebuild in their modules."""

    def __init__(self, client: store.Client, settings: Settings, source: IndexSpec, target: IndexSpec,
                 plan: LoadPlan, request: LoadRequest, report: LoadReport, progress: Callable[[int, int], None],
                 warn: Callable[[str], None], encoders: EncoderSource, lease: Lease | None = None) -> None:
        self.client, self.settings, self.source, self.target = client, settings, source, target
        self.in_place = source is target  # a plain load; a rebuild writes to an empty new generation
        self.lease = lease  # checked before every write: a run that lost its lock writes nothing more
        self.plan, self.request, self.report, self.progress, self.warn = plan, request, report, progress, warn
        # The ids this run has read live in Redis, not in this process, so that memory stays constant whatever
        # the input's size: for duplicates and for what --prune must keep.
        self.ids = RunIds(client)
        self.replaced = 0  # documents rewritten in place, whose old index entries linger until purged
        self.rejects = Rejects(request.rejects, request.strict, request.dry_run, warn)
        self.fingerprints = Fingerprints(target.vectors, self._made_by)
        table = VectorTable(request.vectors) if request.vectors is not None else None
        self.candidates = CandidateMaker(target, plan, self.fingerprints, table, self._reject)
        self.embedder = Embedder(target, settings, encoders, self.model_for, self._override_for, self._reject,
                                 warn, request.dry_run)
        self.batch_ids: list[tuple[str, Record]] = []
        self.writes = BatchWrites()
        stats = None if request.dry_run else self._wait_scanned()
        self.scan_raced = stats is not None and stats.indexing  # still scanning after the wait: purge at the end
        self.failures_before = stats.indexing_failures if stats else 0
        # An index that starts empty, with nothing refused or still being scanned, has no stored fingerprints to
        # compare with, and the lock keeps other loads out: every document of this run is new, so a first load
        # skips the fingerprint reads (a sixth of its time with given vectors; bench/report.py --part loading).
        self.starts_empty = (stats is not None and self.in_place and stats.documents == 0
                             and stats.indexing_failures == 0 and not stats.indexing)

    def _wait_scanned(self) -> store.IndexStats:
        stats = store.index_stats(self.client, self.target)
        if stats.indexing:
            # RediSearch is still scanning the keyspace for the keys this index should hold (it was just made,
            # on a server with many keys). A document written now is indexed twice, by the write and again by
            # the scan, and the duplicate entries break full-text ranking (a wrapped-around BM25 IDF): wait.
            stats = store.wait_indexed(self.client, self.target, seconds=10.0)
            if stats.indexing:  # only a wait long enough to notice is worth a line
                self.warn(f"waiting for Redis to finish scanning existing keys into '{self.request.name}'")
                stats = store.wait_indexed(self.client, self.target)
        return stats

    def model_for(self, vector: VectorField) -> str:
        return model_for(vector, self.request, self.settings)

    def _made_by(self, vector: VectorField) -> str:
        """What a vector's fingerprint names as its maker: the model, and for a passage field how texts are split
        (other settings, other passages: every document is embedded again)."""
        made_by = model_identity(self.model_for(vector))
        return made_by + (f"\0passages:{vector.passages.fingerprint()}" if vector.passages is not None else "")

    def _override_for(self, vector: VectorField) -> str | None:
        return self.request.image_model if vector.embeds == "image" else self.request.model

    @property
    def unknown_ids(self) -> bool:
        """Some rejected record had no readable id: --prune cannot know which documents are absent."""
        return self.rejects.unidentified > 0

    def check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def load(self) -> None:
        try:
            try:
                batches = self.candidates.given_batches if self.plan.all_given else _batches
                for batch in batches(read_input(self.request), self.request.batch_size or self.plan.batch_size):
                    candidates, claims = self._prepare(batch)
                    if claims:
                        self._with_retries(lambda: self._claim(claims))
                    candidates = [c for c in candidates if not c.rejected]
                    if candidates:
                        to_write, skipped = self._with_retries(lambda: self._store(candidates))
                        self._write_beside(to_write, skipped)
                    # Characters of the records as read: the bytes of the input where it is ASCII, for a progress bar.
                    self.progress(len(batch), sum(len(r.raw) for r in batch))
            finally:
                self.writes.finish()  # the last batch's write; an earlier batch's failure comes before a later one's
        except VsearchError as exc:
            if not isinstance(exc, (InputError, UsageError)):
                exc.args = (f"{exc} (this run had written {self.report.written} documents "
                            "before it; rerun the same command to finish)",)
            raise
        finally:
            self.rejects.close()
        self.embedder.warn_alike()
        self.report.passages, self.report.cut = self.embedder.passages, self.embedder.cut
        self.embedder.prepare_query_model()

    def _with_retries(self, step: Callable[[], T]) -> T:
        """Run a batch's Redis work again after a lost connection: every write replaces whole documents, so a
        batch sent twice leaves the same data. The embedded server is restarted (its AOF brings the data back)."""
        for attempt in range(RETRIES + 1):
            try:
                return step()
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

    def _reject(self, record: Record, reason: str, identified: bool = True) -> None:
        self.rejects.reject(record, reason, identified)
        self.report.rejected = self.rejects.count

    def _prepare(self, records: list[Record]) -> tuple[list[Candidate], list[tuple[str, Record, Candidate | None]]]:
        """Records to candidates, rejecting the bad ones: no Redis, so it runs once per batch.

        Also returns every readable id of the batch (rejected records' too: --prune must keep their documents).
        """
        first_batch = self.report.read == 0
        self.report.read += len(records)
        self.rejects.batch = []
        self.batch_ids = []
        candidates = (self.candidates.make_batch(records, self.batch_ids) if self.plan.all_given else
                      [c for c in (self.candidates.make(r, self.batch_ids) for r in records) if c is not None])
        batch_rejects = self.rejects.batch
        if first_batch and not candidates and batch_rejects and all(": no field '" in m for m in batch_rejects):
            # Not bad records but a wrong command line: no record has the field the options name.
            raise InputError(f"{batch_rejects[0]} (no record of the first batch has it: check the field options)")
        by_record = {id(c.record): c for c in candidates}
        return candidates, [(doc_id, record, by_record.get(id(record))) for doc_id, record in self.batch_ids]

    def _claim(self, claims: list[tuple[str, Record, Candidate | None]]) -> None:
        """Record this batch's ids as read; a candidate whose id an earlier record had is rejected.

        Idempotent: each claim stores where it was read, so a retried batch finds its own claims, not duplicates.
        """
        pending = [claim for claim in claims if not (claim[2] and claim[2].claimed)]
        if not pending:
            return
        found = self.ids.where_read([doc_id for doc_id, _, _ in pending])
        fresh: dict[str, str] = {}
        for (doc_id, record, candidate), where in zip(pending, found):
            mine = record.where()
            if where is not None and where != mine and doc_id not in fresh:
                self._reject_duplicate(doc_id, record, candidate, where)  # read by an earlier batch
            elif doc_id in fresh and fresh[doc_id] != mine:
                self._reject_duplicate(doc_id, record, candidate, fresh[doc_id])  # earlier in this batch
            else:
                fresh[doc_id] = mine
        self.ids.record(fresh)
        for _, _, candidate in pending:
            if candidate is not None:
                candidate.claimed = True

    def _reject_duplicate(self, doc_id: str, record: Record, candidate: Candidate | None, earlier: str) -> None:
        if candidate is not None and not candidate.rejected:
            candidate.rejected = True
            self._reject(record, f"id {doc_id!r} appeared earlier in this input ({earlier}); the first one was loaded")

    def _store(self, candidates: list[Candidate]) -> tuple[list[Candidate], int]:
        """Compare with what is stored and embed what changed: safe to run again after a lost connection. Returns
        what to write, and how many candidates are stored as the input has them."""
        candidates = [c for c in candidates if not c.rejected]
        states: list[StoredState | None] = ([None] * len(candidates) if self.starts_empty
                                            else store.read_states(self.client, self.source, [c.id for c in candidates]))
        diff = compare(candidates, states, self.in_place, self.fingerprints)
        # Only documents about to be rewritten have their stored vectors read, to reuse what is still valid.
        stored = self._stored_vectors(diff.changed)
        to_embed = reuse_stored(diff.changed, stored, self.source.vectors, self.in_place)
        if to_embed and self.embedder.incremental is None:
            self.embedder.incremental = is_incremental(len(to_embed), len(candidates))
        self.embedder.embed(to_embed)
        to_write = [c for c, _ in diff.changed if not c.rejected]
        if to_write and not self.request.dry_run:
            self.embedder.add_spans(to_write)  # here, not in the write's thread: the embedder is the run thread's
        return to_write, diff.skipped

    def _write_beside(self, to_write: list[Candidate], skipped: int) -> None:
        """Write a batch in the background (`BatchWrites`), beside the next batch's reading and embedding; a dry run,
        which writes nothing, counts it at once."""
        if self.request.dry_run:
            self._write(to_write, skipped)
            return
        sent = False

        def write() -> None:
            nonlocal sent
            if sent:  # a batch sent again may have landed the first time: each document replaces itself whole
                for c in to_write:
                    c.new = False
            sent = True
            self._write(to_write, skipped)

        self.writes.start(lambda: self._with_retries(write))

    def _write(self, to_write: list[Candidate], skipped: int) -> None:
        """Write one batch in one MULTI/EXEC, after renewing the lock, and count it."""
        if to_write and not self.request.dry_run:
            self.check_lease()
            # Given vectors only: the batch's commands go out without redis-py's per-command pipeline.
            write = store.write_batch if self.plan.all_given else store.write_documents
            write(self.client, self.target, [self._document(c) for c in to_write])
            store.check_persisted(self.client, f"the last batch's {len(to_write)} document(s)")
        # Counted only once the batch is stored, so a retried batch is not counted twice.
        counts = tally(to_write)
        self.report.skipped += skipped
        self.report.embedded += counts.embedded
        self.report.given += counts.given
        self.report.updated += counts.updated
        self.replaced += counts.replaced

    def _document(self, c: Candidate) -> Document:
        passages = {name: (self.plan.text_fields, spans) for name, spans in c.spans.items()}
        return Document(c.id, c.fields, c.vectors, c.fingerprint, c.record.where(), new=c.new, passages=passages)

    def _stored_vectors(self, changed: list[tuple[Candidate, StoredState | None]]) -> list[dict]:
        existing = [i for i, (_, state) in enumerate(changed) if state is not None]
        out: list[dict] = [{} for _ in changed]
        if existing:
            found = store.read_vectors(self.client, self.source, [changed[i][0].id for i in existing],
                                       self.source.vectors)
            for i, vectors in zip(existing, found):
                out[i] = vectors
        return out

    def check_indexed(self) -> None:
        """Redis silently leaves out of the index a document it cannot index: never report one as loaded."""
        if self.request.dry_run:
            return
        stats = store.wait_indexed(self.client, self.target)
        refused = stats.indexing_failures - self.failures_before
        if refused > 0:
            raise StoreError(f"Redis could not index {refused} of the documents written to '{self.target.name}' "
                             "(FT.INFO hash_indexing_failures): they are stored but not searchable")


class BatchWrites:
    """At most one batch write in flight, in a thread, beside the reading, checks and embedding of the next batch:
    the server's time on a batch (a FLAT or HNSW index's inserts) and the client's on the next one overlap. A batch is
    started only once the one before it is written, so batches land in input order, each in its own MULTI/EXEC, and
    a failed one is the last: its error is raised in the run's thread, at the next start or at the end. Everything
    that can reject a record stays in the run's thread, so rejects keep their order."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, write: Callable[[], object]) -> None:
        self.finish()

        def run() -> None:
            try:
                write()
            except BaseException as exc:  # noqa: BLE001 - raised again in the run's thread by finish()
                self.error = exc

        self.thread = threading.Thread(target=run, name="vsearch-load-write", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        """Wait for the write in flight, and raise its error if it failed."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(records, size)):
        yield batch
