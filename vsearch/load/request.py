"""What a `load` run is asked to do, and what it reports: the use case's input and output, nothing else."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from vsearch.config import EngineOptions
from vsearch.errors import EXIT_OK
from vsearch.records import Format


@dataclass(frozen=True)
class LoadRequest:
    """Everything a `load` run needs to know, decided once before any record is read."""

    name: str
    source: str  # a file, a folder or glob of images or of text files, or - for stdin
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
    engine: EngineOptions = EngineOptions()  # where the models run: this process, or Ray actors
    kind: str = ""  # "records", "images" or "texts": what the source holds; "" until `plan.resolve_request`


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
    passages: int = 0  # passages embedded (an index that splits long texts): more than `embedded` when texts are long
    cut: int = 0  # texts embedded whole that run past what the model reads: their ends are not in their vectors
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
        if self.passages:
            done += f"; {self.passages} passages embedded"
        if self.cut:
            done += (f"; {self.cut} text(s) longer than the model reads were cut (their ends are not searchable by "
                     "vector: an index with passages, the default for new ones, embeds every part)")
        return f"{done}; {self.documents} documents in the index, {self.seconds:.1f} s"
