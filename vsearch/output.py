"""Rendering result rows: a rich table for people, JSONL/JSON/CSV for pipes. stdout carries data only."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from enum import Enum
from typing import IO, Any


class OutputFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    csv = "csv"


def default_format(stream: IO[str]) -> OutputFormat:
    return OutputFormat.table if stream.isatty() else OutputFormat.jsonl


def render(rows: Sequence[dict[str, Any]], fmt: OutputFormat, title: str | None = None,
           stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    if fmt is OutputFormat.jsonl:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt is OutputFormat.json:
        stream.write(json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        columns = _columns(rows)
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    else:
        _table(rows, title, stream)
    stream.flush()


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _table(rows: Sequence[dict[str, Any]], title: str | None, stream: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = _columns(rows)
    for column in columns:
        numeric = column in ("rank", "score")
        table.add_column(column, justify="right" if numeric else "left", style="bold" if column == "id" else None,
                         overflow="fold", no_wrap=column in ("rank", "id", "score"))
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    if not rows:
        table.caption = "no results"
    Console(file=stream, soft_wrap=False).print(table)
