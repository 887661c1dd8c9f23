"""Reading records (CSV, TSV, JSON, JSONL, text lines) lazily, and writing vectors.

Every reader yields `Record`s that remember where they came from, so an error can name the file and line.
Nothing reads a whole file into memory: rows are parsed as they are consumed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

from vsearch.errors import InputError

STDIN = "-"
JSON_CHUNK = 1 << 16


class Format(str, Enum):
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"


EXTENSIONS = {".csv": Format.csv, ".tsv": Format.tsv, ".tab": Format.tsv, ".json": Format.json,
              ".jsonl": Format.jsonl, ".ndjson": Format.jsonl}


@dataclass(frozen=True)
class Record:
    source: str  # a file name, or <stdin>
    line: int  # 1-based: where a CSV/TSV/JSONL record ends, where a JSON array element starts
    data: dict[str, Any]
    raw: str = ""  # the record exactly as received, for --rejects ("" where the reader cannot give it)
    error: str | None = None  # set on a record the reader could not parse; data is then empty

    def where(self) -> str:
        return f"{self.source} line {self.line}"

    def check(self) -> Record:
        """The record itself, or the InputError of a line the reader could not parse."""
        if self.error:
            raise InputError(f"{self.where()}: {self.error}")
        return self

    def value(self, name: str) -> Any:
        """The field's value, or an InputError naming the record and the fields it does have."""
        if name not in self.data:
            present = ", ".join(list(self.data)[:12])
            raise InputError(f"{self.where()}: no field '{name}' (fields: {present})")
        return self.data[name]


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def read_source(source: str, fmt: Format | None, root: Path) -> Iterator[Record]:
    """The records of a `load` input: a CSV/TSV/JSON/JSONL file or stdin, or a folder or glob of images,
    which become records {"id": path relative to `root`, "image": the same path}."""
    if is_image_source(source):
        yield from read_image_folder(source, root)
        return
    yield from read_records(source, detect_format(source, fmt))


def is_image_source(source: str) -> bool:
    """A folder, or a glob pattern: `load` reads images from it rather than records."""
    return source != STDIN and (Path(source).is_dir() or (any(c in source for c in "*?[") and not Path(source).is_file()))


def read_image_folder(source: str, root: Path) -> Iterator[Record]:
    import glob

    folder = Path(source)
    paths = (sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
             if folder.is_dir() else sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()))
    for number, path in enumerate(paths, start=1):
        relative = str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)
        yield Record(source, number, {"id": relative, "image": relative}, raw=str(path))


def source_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def detect_format(path: str, explicit: Format | None) -> Format:
    """--format if given, else the file extension, else a look at the first bytes (stdin, odd names)."""
    if explicit is not None:
        return explicit
    suffix = Path(path).suffix.lower()
    if path != STDIN and suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    head = _peek(path)
    sniffed = sniff_format(head)
    if sniffed is None:
        where = "stdin" if path == STDIN else f"'{path}'"
        raise InputError(f"cannot tell the format of {where}: pass --format csv|tsv|json|jsonl")
    return sniffed


_peekable_stdin: list[tuple[object, io.BufferedReader]] = []


def _stdin_bytes() -> io.BufferedReader:
    """stdin as bytes that can be peeked at and then read from the start: the same object every time."""
    raw = sys.stdin.buffer
    if isinstance(raw, io.BufferedReader):
        return raw
    if not _peekable_stdin or _peekable_stdin[0][0] is not raw:  # a test runner's in-memory stdin
        _peekable_stdin[:] = [(raw, io.BufferedReader(raw))]  # type: ignore[arg-type,type-var]
    return _peekable_stdin[0][1]


def sniff_format(head: bytes) -> Format | None:
    """JSON starts with '[', JSONL with an object a line; a header line with tabs or commas is TSV or CSV."""
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if not text:
        return None
    if text.startswith("["):
        return Format.json
    if text.startswith("{"):
        first = text.split("\n", 1)[0]
        try:
            json.loads(first)
            return Format.jsonl
        except json.JSONDecodeError:
            return Format.json  # an object over several lines
    header = text.split("\n", 1)[0]
    if "\t" in header:
        return Format.tsv
    if "," in header:
        return Format.csv
    return None


def _peek(path: str) -> bytes:
    if path == STDIN:
        return _stdin_bytes().peek(1 << 16)
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 16)
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


@contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    """A text stream for a path or `-`; utf-8-sig drops the byte-order mark spreadsheets write."""
    if path == STDIN:
        yield io.TextIOWrapper(_stdin_bytes(), encoding="utf-8-sig", newline="")
        return
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        yield handle


def read_records(path: str, fmt: Format) -> Iterator[Record]:
    """Records from a file or stdin, parsed lazily. Raises InputError naming the file and line."""
    name = source_name(path)
    with open_text(path) as handle:
        try:
            if fmt in (Format.csv, Format.tsv):
                yield from _read_delimited(handle, name, "\t" if fmt is Format.tsv else ",")
            elif fmt is Format.jsonl:
                yield from _read_jsonl(handle, name)
            else:
                yield from _read_json(handle, name)
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: not UTF-8 text ({exc.reason})") from exc


def read_lines(path: str) -> Iterator[Record]:
    """Non-blank lines of a text file or stdin, as records {"id": line number, "text": line}."""
    name = source_name(path)
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                text = line.strip()
                if text:
                    yield Record(name, number, {"id": str(number), "text": text})
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: not UTF-8 text ({exc.reason})") from exc


def _read_delimited(handle: IO[str], name: str, delimiter: str) -> Iterator[Record]:
    consumed: list[str] = []  # the physical lines of the record being parsed, to hand back as received

    def lines() -> Iterator[str]:
        for line in handle:
            consumed.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{name} line {reader.line_num}: malformed {kind} header ({exc})") from exc
    if header is None:
        return
    header = [column.strip() for column in header]
    if len(set(header)) != len(header) or "" in header:
        raise InputError(f"{name} line 1: the header needs unique, non-empty column names")
    while True:
        consumed.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader is left at the next line: the bad record is rejected and the rest still read.
            yield Record(name, reader.line_num, {}, raw="".join(consumed), error=f"malformed {kind} ({exc})")
            continue
        if not row:
            continue
        raw = "".join(consumed)
        if len(row) != len(header):
            yield Record(name, reader.line_num, {}, raw=raw,
                         error=f"{len(row)} fields, but the header has {len(header)}")
            continue
        yield Record(name, reader.line_num, dict(zip(header, row)), raw=raw)


def _read_jsonl(handle: IO[str], name: str) -> Iterator[Record]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Record(name, number, {}, raw=line, error=f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield Record(name, number, {}, raw=line, error=f"expected a JSON object, got {type(data).__name__}")
            continue
        yield Record(name, number, data, raw=line)


def _read_json(handle: IO[str], name: str) -> Iterator[Record]:
    """A JSON array of objects (or one object), decoded one element at a time."""
    stream = _JsonStream(handle, name)
    first = stream.peek()
    if first == "{":
        yield from (Record(name, line, data) for line, data in [stream.value()])
        stream.expect_end()
        return
    stream.expect("[")
    if stream.peek() == "]":
        stream.expect("]")
        stream.expect_end()
        return
    while True:
        line, data = stream.value()
        if not isinstance(data, dict):
            raise InputError(f"{name} line {line}: expected a JSON object, got {type(data).__name__}")
        yield Record(name, line, data)
        if stream.peek() == "]":
            stream.expect("]")
            stream.expect_end()
            return
        stream.expect(",")


class _JsonStream:
    """Just enough of a streaming JSON reader to walk one array: values come from json's raw_decode."""

    def __init__(self, handle: IO[str], name: str) -> None:
        self.handle, self.name = handle, name
        self.buffer, self.pos, self.line, self.eof = "", 0, 1, False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        chunk = self.handle.read(JSON_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buffer = self.buffer[self.pos:] + chunk
        self.pos = 0
        return True

    def _advance(self, end: int) -> None:
        self.line += self.buffer.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        """The next non-blank character, or '' at the end of input."""
        while True:
            stripped = len(self.buffer) - len(self.buffer[self.pos:].lstrip())
            self._advance(stripped)
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise InputError(f"{self.name} line {self.line}: malformed JSON (expected '{char}', found {found!r})")
        self._advance(self.pos + 1)

    def expect_end(self) -> None:
        if (found := self.peek()) != "":
            raise InputError(f"{self.name} line {self.line}: malformed JSON (extra data {found!r} after the end)")

    def value(self) -> tuple[int, Any]:
        self.peek()
        while True:
            try:
                data, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if not self.eof and self._fill():
                    continue  # the value may continue in the next chunk
                line = self.line + self.buffer.count("\n", self.pos, exc.pos)
                raise InputError(f"{self.name} line {line}: malformed JSON ({exc.msg})") from exc
            # A number at the very end of a chunk may be cut short: read on before trusting it.
            if end == len(self.buffer) and not self.eof and self._fill():
                continue
            start_line = self.line
            self._advance(end)
            return start_line, data
