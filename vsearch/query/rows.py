"""Hits as output rows: vsearch's own keys first, then the document's fields, one naming rule in every format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from vsearch.query.snippets import Match
from vsearch.snippets import make_snippet
from vsearch.store import Hit

if TYPE_CHECKING:  # a one-query command never reads a batch file
    from vsearch.query.batch_file import BatchQuery


# What vsearch adds to each row. snippet: the passage that matched best (text mode: the text around the query's
# words), shortened for a table; snippet_start/snippet_end: its [start, end) in snippet_field's value.
SNIPPET_KEYS = ("snippet", "snippet_field", "snippet_start", "snippet_end")
# copies: the ids of identical documents this result stands for (vsearch.query.collapse), only where it has any.
RESULT_KEYS = ("rank", "id", "score", "query", "query_id", *SNIPPET_KEYS, "copies")
FIELD_PREFIX = "fields."


def result_rows(hits: list[Hit], keep: list[str] | None = None, extra: dict[str, object] | None = None,
                short: bool = False) -> list[dict[str, object]]:
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
        if hit.snippet is not None and not (short and hit.snippet.whole):
            row.update(_snippet_columns(hit.snippet, short))
        if hit.copies:
            row["copies"] = _copies_cell(hit.copies) if short else list(hit.copies)
        rows.append(row)
    return rows


def _snippet_columns(match: Match, short: bool) -> dict[str, object]:
    """The match as columns: for a table (`short`), ~200 characters around the query's words."""
    if short:  # a person reads the words around the query's; the offsets are for programs
        return {"snippet": make_snippet(match.text, match.query).text}
    return {"snippet": match.text, "snippet_field": match.field, "snippet_start": match.start, "snippet_end": match.end}


def _copies_cell(copies: tuple[str, ...]) -> str:
    """A table's copies column: how many, and the first one's id (JSONL, JSON and CSV carry them all)."""
    return f"{len(copies)}: {copies[0]}{', …' if len(copies) > 1 else ''}"


def field_column(name: str) -> str:
    return f"{FIELD_PREFIX}{name}" if name in RESULT_KEYS or name.startswith(FIELD_PREFIX) else name


def batch_rows(results: Iterable[tuple[BatchQuery, list[Hit]]], keep: list[str] | None,
               streaming: bool, short: bool = False) -> Iterator[list[dict[str, object]]]:
    """Result rows tagged with their query (and query_id): one list per query when streaming (JSONL), else all
    of them in one list (a table, JSON or CSV is written whole)."""
    rows: list[dict[str, object]] = []
    for query, hits in results:
        tag: dict[str, object] = {"query": query.label, **({"query_id": query.id} if query.id is not None else {})}
        rows += result_rows(hits, keep, tag, short)
        if streaming:
            yield rows
            rows = []
    if not streaming:
        yield rows
