"""`--prune`: delete the documents a full snapshot no longer has, held to `--prune-limit`; and the rebuild's
version of it, which settles the live documents the new generation did not get."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Protocol

from vsearch import store
from vsearch.errors import PruneRefused, UsageError
from vsearch.load.diff import left_out, prune_share_exceeded
from vsearch.load.plan import LoadPlan
from vsearch.load.rejects import SHOWN_REJECTS, Rejects
from vsearch.load.request import LoadReport, LoadRequest
from vsearch.schema import IndexSpec, VectorField
from vsearch.store.run_ids import RunIds


class LoadedRun(Protocol):
    """What pruning needs of the run that read the input (`run.Run`)."""

    ids: RunIds
    plan: LoadPlan
    rejects: Rejects

    @property
    def unknown_ids(self) -> bool: ...

    def check_lease(self) -> None: ...

    def model_for(self, vector: VectorField) -> str: ...

PRUNE_PAGE = 1000


def prune(client: store.Client, spec: IndexSpec, run: LoadedRun, request: LoadRequest, report: LoadReport,
          warn: Callable[[str], None]) -> None:
    if run.unknown_ids:
        skip_prune(run, report, warn)
        return
    store.check_owned(client, spec.name, spec.prefix)
    absent: list[str] = []
    for page in pages(store.scan_ids(client, spec)):
        absent += [i for i, read in zip(page, run.ids.were_read(page)) if not read]
    check_prune_limit(len(absent), store.index_stats(client, spec).documents, request)
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


def skip_prune(run: LoadedRun, report: LoadReport, warn: Callable[[str], None]) -> None:
    report.prune_skipped = f"{run.rejects.unidentified} rejected record(s) had no readable id"
    warn(f"--prune skipped: {report.prune_skipped}, so no document can safely be called absent")


def check_prune_limit(dropping: int, total: int, request: LoadRequest) -> None:
    """The safety net of a nightly run: a truncated or empty export must not empty the index."""
    if prune_share_exceeded(dropping, total, request.prune_limit) and not request.force:
        total = max(total, 1)
        what = "--rebuild" if request.rebuild else "--prune"
        raise PruneRefused(f"{what} would delete {dropping} of {total} documents ({dropping / total:.0%}), more "
                           f"than --prune-limit {request.prune_limit:.0%}: check the input, or pass --force")


def pages(ids: Iterator[str]) -> Iterator[list[str]]:
    while page := list(islice(ids, PRUNE_PAGE)):
        yield page


def settle_left_out(client: store.Client, live: IndexSpec, new: IndexSpec, run: LoadedRun, request: LoadRequest,
                    report: LoadReport, warn: Callable[[str], None]) -> int:
    """The live documents a rebuild did not write: those of rejected records stay (as a plain load keeps them),
    and so do those the input no longer has, unless --prune drops them, within --prune-limit as a plain prune.
    Returns how many were carried over to the new generation."""
    rejected: list[str] = []
    absent: list[str] = []
    for page in pages(store.scan_ids(client, live)):
        kept, gone = left_out(page, run.ids.were_read(page), store.exist(client, new, page))
        rejected += kept
        absent += gone
    drop = request.prune and not run.unknown_ids
    if request.prune and run.unknown_ids and absent:
        skip_prune(run, report, warn)
    if drop:
        check_prune_limit(len(absent), store.index_stats(client, live).documents, request)
        report.deleted = len(absent)
    keep = rejected + ([] if drop else absent)
    if keep:
        _check_carried_vectors(live, run, len(keep))
        run.check_lease()
    return store.copy_documents(client, live, new, keep)


def _check_carried_vectors(live: IndexSpec, run: LoadedRun, count: int) -> None:
    """A carried-over document keeps its vectors: refuse when this rebuild makes them with another model."""
    for vector in live.vectors:
        if vector in run.plan.planned and vector.model and run.model_for(vector) != vector.model:
            raise UsageError(f"this rebuild embeds {vector.name} with '{run.model_for(vector)}' instead of "
                             f"'{vector.model}', but {count} live document(s) are not in the input or were rejected, "
                             "and their vectors cannot be made again: load the full input, or add --prune to drop "
                             "the absent ones")
