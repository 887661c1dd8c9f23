"""`load --rebuild`: the whole input into a new generation beside the live one, then swapped in behind the alias
(`store.generations`), so queries never see a half-built index."""

from __future__ import annotations

from collections.abc import Callable

from vsearch import store
from vsearch.load.prune import LoadedRun, settle_left_out
from vsearch.load.request import LoadReport, LoadRequest
from vsearch.schema import IndexSpec
from vsearch.store.lock import Lease


class RebuildRun(LoadedRun):
    """A run that loads into the new generation (`run.Run`)."""

    def load(self) -> None: ...

    def check_indexed(self) -> None: ...


def rebuild(client: store.Client, live: IndexSpec, report: LoadReport, make_run: Callable[[IndexSpec], RebuildRun],
            request: LoadRequest, warn: Callable[[str], None], lease: Lease) -> None:
    """Load the whole input into a new generation (reusing the live vectors whose content did not change), settle
    the live documents the input did not bring, then let `generations.go_live` check the new generation and swap
    it in. Anything that fails drops the new generation; the live one keeps serving."""
    new = store.next_generation(client, live)
    run = make_run(new)
    try:
        try:
            run.load()
            carried = settle_left_out(client, live, new, run, request, report, warn)
        finally:
            run.ids.forget()
        run.check_indexed()
        store.go_live(client, live, new, report.written + carried, lease)
    except BaseException:
        store.abandon(client, new)
        raise
    report.rebuilt = True
