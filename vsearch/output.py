"""Rendering result rows: a rich table for people, JSONL/JSON/CSV for pipes. stdout carries data only.

Stored fields and query text are anyone's data, so a table shows them literally: no rich markup, emoji or
highlighting, and control characters (terminal escapes, C1 codes, bidi overrides) escaped visibly, since a
terminal would obey them. JSON and JSONL escape them already. CSV is data for other programs and stays
byte-exact; sending CSV to a terminal shows whatever the data holds, as `cat` would.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Sequence
from enum import Enum
from typing import IO, Any


class OutputFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    csv = "csv"


class VectorFormat(str, Enum):
    """How `encode` writes vectors: JSONL rows, a NumPy .npy matrix, or raw little-endian float32."""

    jsonl = "jsonl"
    npy = "npy"
    f32 = "f32"


class VectorEncoding(str, Enum):
    """How `export` writes a document's vectors: base64 of their little-endian bytes, or JSON arrays of numbers."""

    base64 = "base64"
    json = "json"


# Characters that Python's str.splitlines (and some other readers) take as line breaks, which JSON allows raw
# inside strings: escaped, so one JSONL row stays one line for every reader.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029", "\x1c": "\\u001c",
                "\x1d": "\\u001d", "\x1e": "\\u001e", "\x0b": "\\u000b", "\x0c": "\\u000c"}
_LINE_BREAK_TABLE = str.maketrans(_LINE_BREAKS)


def json_line(row: object) -> str:
    """One JSONL line: UTF-8 text as it is, except characters any reader could split a line on."""
    return _json(row).translate(_LINE_BREAK_TABLE)


def _json(value: object, indent: int | None = None) -> str:
    """Valid JSON whatever the value holds: a NaN or infinite score (a document another tool stored with a zero
    vector) becomes null, where json.dumps would write a bare NaN that no JSON parser reads."""
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, indent=indent)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def default_format(stream: IO[str]) -> OutputFormat:
    return OutputFormat.table if stream.isatty() else OutputFormat.jsonl


def render(rows: Sequence[dict[str, Any]], fmt: OutputFormat, title: str | None = None,
           stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    if fmt is OutputFormat.jsonl:
        for row in rows:
            stream.write(json_line(row) + "\n")
    elif fmt is OutputFormat.json:
        stream.write(_json(list(rows), indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        columns = _columns(rows)
        _csv_row(stream, columns)
        for row in rows:
            _csv_row(stream, [_cell(row.get(c)) for c in columns])
    else:
        _table(rows, title, stream)
    stream.flush()


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _csv_row(stream: IO[str], cells: Sequence[str]) -> None:
    """One CSV line ending in LF. The csv module quotes a field that holds a character of its line terminator,
    so with LF alone a bare CR went out unquoted and a reader saw two rows: such a row is written with CRLF as
    its terminator (CR then gets quoted), and its own CRLF is put back to LF."""
    import csv  # here: only CSV output needs it

    if not any("\r" in cell for cell in cells):
        csv.writer(stream, lineterminator="\n").writerow(cells)
        return
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow(cells)
    stream.write(line.getvalue()[:-2] + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


# C0 and C1 controls (ESC, CSI 0x9b, OSC...), DEL, and the invisible characters that reorder or hide text
# (bidi embeddings, overrides and isolates, zero-width marks, line/paragraph separators), and lone surrogates
# (a file name's bytes that were not UTF-8), which no terminal encoding can write.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_UNSAFE_OR_NEWLINE = re.compile(_UNSAFE.pattern[:-1] + "\n]")


def safe_text(text: str, newlines: bool = True) -> str:
    """`text` with every control character written as a visible escape (\\x1b, \\u202e); newlines kept
    unless `newlines` is False (a one-line title)."""
    pattern = _UNSAFE if newlines else _UNSAFE_OR_NEWLINE
    return pattern.sub(lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


TABLE_CELL_CHARS = 300  # a table shows this much of a long value (a document's whole text): --format json has all


def _table_cell(text: str) -> str:
    """A long value shortened for a table cell: whitespace runs folded, cut at a word, "…" where more is."""
    if len(text) <= TABLE_CELL_CHARS:
        return text
    folded = " ".join(text[:TABLE_CELL_CHARS * 2].split())
    if len(folded) <= TABLE_CELL_CHARS:
        return folded + "…"
    cut = folded.rfind(" ", 0, TABLE_CELL_CHARS)
    return folded[:cut if cut > TABLE_CELL_CHARS // 2 else TABLE_CELL_CHARS] + "…"


def _table(rows: Sequence[dict[str, Any]], title: str | None, stream: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text objects are never parsed as markup: '[/x]' prints as itself instead of raising MarkupError.
    table = Table(title=Text(safe_text(title, newlines=False)) if title else None, title_justify="left")
    columns = _columns(rows)
    for column in columns:
        numeric = column in ("rank", "score")
        table.add_column(Text(safe_text(column, newlines=False)), justify="right" if numeric else "left",
                         style="bold" if column == "id" else None, overflow="fold",
                         no_wrap=column in ("rank", "id", "score"))
    for row in rows:
        table.add_row(*(Text(safe_text(_table_cell(_cell(row.get(c))))) for c in columns))
    if not rows:
        table.caption = "no results"
    console = Console(file=stream, soft_wrap=False, markup=False, emoji=False, highlight=False)
    if not columns:  # rich prints nothing at all for a table without columns, its title and caption included
        console.print(Text(f"{safe_text(title, newlines=False)}\nno results" if title else "no results"))
        return
    console.print(table)
