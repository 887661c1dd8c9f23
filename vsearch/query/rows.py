"""Hits as output rows: vsearch's own keys first, then the document's fields, one naming rule in every format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from vsearch.store import Hit

if TYPE_CHECKING:  # a one-query command never reads a batch file
    from vsearch.query.batch_file import BatchQuery


RESULT_KEYS = ("rank", "id", "score", "query", "query_id")  # what vsearch adds to each row
FIELD_PREFIX = "fields."


def result_rows(hits: list[Hit], keep: list[str] | None = None, extra: dict[str, object] | None = None) -> list[dict[str, object]]:
    """Rows for output: vsearch's own keys, then the document's fields.

    One rule in every format: a document field whose name is one of vsearch's keys (a column called `id` or
    `score`), or starts with `fields.`, is shown as `fields.NAME`, so it can never replace the result's own;
    one that only repeats the result's value (the usual `id` column) is left out.
    """
    rows = []
    for hit in hits:
        row: dict[str, object] = {**(extra or {}), "rank": hit.rank, "id": hit.id, "score": hit.score}
        for name, value in hit.fields.items():
            if keep is not None and name not in keep:
                continue
            if name in row and str(row[name]) == str(value):
                continue  # the input's own id column, which the result's id already shows
            row[field_column(name)] = value
        rows.append(row)
    return rows


def field_column(name: str) -> str:
    return f"{FIELD_PREFIX}{name}" if name in RESULT_KEYS or name.startswith(FIELD_PREFIX) else name


def batch_rows(results: Iterable[tuple[BatchQuery, list[Hit]]], keep: list[str] | None,
               streaming: bool) -> Iterator[list[dict[str, object]]]:
    """Result rows tagged with their query (and query_id): one list per query when streaming (JSONL), else all
    of them in one list (a table, JSON or CSV is written whole)."""
    rows: list[dict[str, object]] = []
    for query, hits in results:
        tag: dict[str, object] = {"query": query.label, **({"query_id": query.id} if query.id is not None else {})}
        rows += result_rows(hits, keep, tag)
        if streaming:
            yield rows
            rows = []
    if not streaming:
        yield rows
