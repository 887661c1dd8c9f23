"""Identical documents shown once: five copies of one changelog (or 435 icons that embed alike) fill a top 5 with
one answer. Copies are documents whose every vector was made from the same input under the same model: the same
text, the same image bytes, the same given vector (two products of one name but different photos are not copies).
The load already records that as each vector's fingerprint (`load.diff.Fingerprints`), so telling copies apart
costs no model and no vector, one pipelined read of the hits' fingerprints.

The first of a group keeps its rank and score and lists the others' ids in `copies`; the ranking is then cut into
the page asked for. To fill a page after collapsing, a query asks for twice the hits it shows (everything before
the page included, so page 2 continues page 1) and asks again for twice as many while copies leave it short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from vsearch.query.request import MAX_K
from vsearch.store import Hit

Fetch = Callable[[int], list[Hit]]  # the best n hits, ranked from the first
ContentKeys = Callable[[Sequence[str]], Mapping[str, str]]  # id -> what its vector was made from, where known
DEPTH_LIMIT = MAX_K - 1  # the most hits a query asks for: a --like query asks for one more than it shows


def collapse(hits: Sequence[Hit], keys: Mapping[str, str]) -> list[Hit]:
    """The hits with each group of copies as its best-ranked member, the others' ids in its `copies`, ranks
    renumbered from 1. A hit with no key (a document written without a fingerprint) is nobody's copy."""
    firsts: dict[str, int] = {}
    kept: list[Hit] = []
    copies: list[list[str]] = []
    for hit in hits:
        key = keys.get(hit.id)
        if key is not None and key in firsts:
            copies[firsts[key]].append(hit.id)
            continue
        if key is not None:
            firsts[key] = len(kept)
        kept.append(hit)
        copies.append([])
    return [replace(hit, rank=i + 1, copies=(*hit.copies, *more)) for i, (hit, more) in enumerate(zip(kept, copies))]


def collapsed_page(fetch: Fetch, keys_of: ContentKeys, offset: int, k: int, first: list[Hit] | None = None,
                   limit: int = DEPTH_LIMIT) -> list[Hit]:
    """Hits offset + 1 .. offset + k of the collapsed ranking. `fetch(n)` gives the best n hits (n at most
    `limit`); `first`, when given, is what `fetch(first_ask(offset, k))` gave (a batch searched them together)."""
    want = offset + k
    asked = min(limit, first_ask(offset, k))
    hits = first if first is not None else fetch(asked)
    while True:
        groups = collapse(hits, keys_of([hit.id for hit in hits]))
        if len(groups) >= want or len(hits) < asked or asked >= limit:  # full, or nothing more to ask for
            return [replace(hit, rank=offset + i + 1) for i, hit in enumerate(groups[offset:want])]
        asked = min(limit, asked * 2)
        hits = fetch(asked)


def first_ask(offset: int, k: int, collapse: bool = True) -> int:
    """How many hits a page asks for first: twice what it shows and skips when copies are collapsed, so one copy
    of each hit rarely leaves it short; else just those."""
    return min(DEPTH_LIMIT, 2 * (offset + k)) if collapse else offset + k
