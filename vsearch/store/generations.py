"""Zero-downtime rebuilds: a new generation of an index is built beside the live one, checked, and swapped in
behind the alias NAME in one transaction; then the old generation is dropped with its documents.

Queries name the alias, so they answer from the old generation until the swap and from the new one after.
A failed rebuild drops the half-built generation and leaves the live one serving.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import redis

from vsearch.errors import StoreError, UsageError
from vsearch.schema import IndexSpec
from vsearch.store.definitions import (create_index, drop_physical, drop_stale_generations, index_exists,
                                       index_stats, prefixes_in_use, swap_alias)
from vsearch.store.documents import check_persisted, delete_prefix
from vsearch.store.keys import check_prefix, default_prefix, generation_prefix
from vsearch.store.lock import Lease

INDEXING_WAIT_S = 600.0


def next_generation(client: redis.Redis, live: IndexSpec, spec: IndexSpec | None = None) -> IndexSpec:
    """The next generation of `live` (with `spec`'s schema when given), created empty and not yet aliased.

    Its prefix is checked against every other index before any key is deleted. Generations left behind by a
    killed rebuild are dropped first, with their documents: they never served a query.
    """
    if not live.generation:
        raise UsageError(f"index '{live.name}' was not created by vsearch (it has no alias to swap): "
                         "recreate it with `vsearch create-index` to rebuild it without downtime")
    generation = live.generation + 1
    base = replace(spec or live, name=live.name)
    given = live.prefix if spec is None or spec.prefix in (live.prefix, default_prefix(live.name)) else spec.prefix
    # with_stems: a rebuild rewrites every document, so an index made before the stems field (or the whole-value
    # TAG separator) gets it here.
    new = replace(base, generation=generation, prefix=generation_prefix(given, generation)).with_stems()
    check_prefix(new.prefix, prefixes_in_use(client, ignore=live.name))
    drop_stale_generations(client, live.name, live.physical)
    delete_prefix(client, new.prefix)  # keys of a killed rebuild whose index was already dropped
    return create_index(client, new, replacing=live.name)


def abandon(client: redis.Redis, new: IndexSpec) -> None:
    """Drop a generation that never went live, with whatever documents it has."""
    if index_exists(client, new.physical):
        drop_physical(client, new, delete_documents=True)
    else:
        delete_prefix(client, new.prefix)


def wait_indexed(client: redis.Redis, spec: IndexSpec, seconds: float = INDEXING_WAIT_S) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        stats = index_stats(client, spec)
        if not stats.indexing or time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


def go_live(client: redis.Redis, live: IndexSpec, new: IndexSpec, expected: int, lease: Lease) -> None:
    """Check the new generation (indexing finished, no failures, every document in), swap, drop the old one."""
    stats = wait_indexed(client, new)
    if stats.indexing:
        raise StoreError(f"the new generation of '{new.name}' was still indexing after {INDEXING_WAIT_S:.0f} s")
    if stats.indexing_failures:
        raise StoreError(f"Redis could not index {stats.indexing_failures} documents of the new generation of '{new.name}'")
    if stats.documents != expected:
        raise StoreError(f"the new generation of '{new.name}' holds {stats.documents} documents, but {expected} were written")
    check_persisted(client, f"the new generation's {stats.documents} document(s)")
    lease.check()
    swap_alias(client, live, new)
    drop_physical(client, live, delete_documents=True)
