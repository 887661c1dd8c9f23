"""Reading records (CSV, TSV, JSON, JSONL, text lines) lazily, and writing vectors.

Every reader yields `Record`s that remember where they came from, so an error can name the file and line.
Nothing reads a whole file into memory: rows are parsed as they are consumed.
"""

from __future__ import annotations

import csv
import io
import os
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

import orjson

from vsearch.errors import InputError, UsageError

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
# Image files that a folder load lists so that it can say they are not supported, rather than skip them silently.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset({".svg", ".svgz", ".heic", ".heif"})


def read_source(source: str, fmt: Format | None) -> Iterator[Record]:
    """The records of a `load` input: a CSV/TSV/JSON/JSONL file or stdin, or a folder or glob of images,
    which become records {"id": path relative to `root`, "image": the same path}."""
    if is_image_source(source):
        yield from read_image_folder(source)
        return
    yield from read_records(source, detect_format(source, fmt))


def is_image_source(source: str) -> bool:
    """A folder, or a glob pattern: `load` reads images from it rather than records."""
    return source != STDIN and (Path(source).is_dir() or (_has_wildcard(source) and not Path(source).is_file()))


def _has_wildcard(text: str) -> bool:
    """glob.has_magic without importing glob on every command's start-up."""
    return any(c in text for c in "*?[")


def is_unicode(text: str) -> bool:
    """Whether `text` can be written as UTF-8: JSON's "\\ud800" and file names or arguments with bytes that are
    not UTF-8 (Python's surrogate escapes) cannot, and Redis keys and values are UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def image_folder(source: str) -> Path:
    """The folder an image source's ids and paths start from: a folder itself, or a glob's parts before the
    first one with a wildcard (`icons/*/*.png` -> `icons`)."""
    if Path(source).is_dir():
        return Path(source)
    parts = Path(source).parts
    fixed = next((i for i, part in enumerate(parts) if _has_wildcard(part)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path.cwd()


def read_image_folder(source: str) -> Iterator[Record]:
    """Each image of a folder (or glob) as a record whose id is its path relative to `image_folder(source)` as
    listed: a symlink keeps its own name, and where it leads is checked when the image is read."""
    import glob

    folder = Path(source)
    # is_file follows symlinks: a link to a folder or FIFO is left out, as those themselves are.
    listed = IMAGE_EXTENSIONS | UNSUPPORTED_IMAGE_EXTENSIONS
    paths = (sorted(p for p in folder.rglob("*") if p.suffix.lower() in listed and p.is_file())
             if folder.is_dir() else sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()))
    start = image_folder(source)
    for number, path in enumerate(paths, start=1):
        relative = os.path.relpath(path, start)
        if not is_unicode(relative):
            yield Record(source, number, {}, raw=str(path), error=f"file name {ascii(str(path))} is not UTF-8: "
                         "it cannot be an id; rename the file")
            continue
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
        raise UsageError(f"cannot tell the format of {where}: pass --format csv|tsv|json|jsonl")
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
        first, newline, _ = text.partition("\n")
        if not newline:
            # The first line goes on past what was peeked (a pipe gives 4 KiB at a time, a file 64 KiB here): a long
            # JSONL record, which cannot be parsed from its start. A JSON object all on one line reads the same as JSONL.
            return Format.jsonl
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
def open_bytes(path: str) -> Iterator[IO[bytes]]:
    """A byte stream for a path or `-`."""
    if path == STDIN:
        yield _stdin_bytes()
        return
    try:
        handle = open(path, "rb")
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        yield handle


def _text(raw: IO[bytes]) -> io.TextIOWrapper:
    """Text that never raises on bad bytes: they become lone surrogates, which `_checked` reports with
    the line they are on (a decode error inside TextIOWrapper knows no line). utf-8-sig drops the
    byte-order mark spreadsheets write; newline='' keeps line ends for the csv module."""
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def read_records(path: str, fmt: Format) -> Iterator[Record]:
    """Records from a file or stdin, parsed lazily. Raises InputError naming the file and line."""
    with open_bytes(path) as raw:
        yield from read_stream(raw, source_name(path), fmt)


def read_stream(raw: IO[bytes], name: str, fmt: Format) -> Iterator[Record]:
    """Records from an open byte stream; `name` is what errors call it."""
    handle = _text(raw)
    try:
        if fmt in (Format.csv, Format.tsv):
            yield from _read_delimited(handle, name, "\t" if fmt is Format.tsv else ",")
        elif fmt is Format.jsonl:
            yield from _read_jsonl(handle, name)
        else:
            yield from _read_json(handle, name)
    finally:
        _detach(handle)


def _detach(handle: io.TextIOWrapper) -> None:
    """Let go of the byte stream without closing it: closing the wrapper would close the caller's (stdin)."""
    try:
        handle.detach()
    except ValueError:  # already detached or closed, as when a generator is closed during interpreter exit
        pass


def read_lines(path: str) -> Iterator[Record]:
    """Non-blank lines of a text file or stdin, as records {"id": line number, "text": line}."""
    name = source_name(path)
    with open_bytes(path) as raw:
        handle = _text(raw)
        try:
            for number, line in _lines(handle, name):
                text = line.strip()
                if text:
                    yield Record(name, number, {"id": str(number), "text": text})
        finally:
            _detach(handle)


# One record (a line, a CSV field, a JSON array element) may be this long; longer is an error, not a
# process that eats all memory. Generous: a 50 MB text field is fine, the model reads only its start.
MAX_RECORD_CHARS = 1 << 28
# Deeper JSON nesting is refused before json's recursive decoder raises RecursionError.
MAX_JSON_DEPTH = 256
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _check_utf8(text: str, name: str, line: int, columns: bool = True) -> None:
    """InputError naming the line (and column) of the first byte that was not UTF-8, if any."""
    if not text.isascii() and (bad := _UNDECODABLE.search(text)):
        before = text[:bad.start()]
        where = f" at column {bad.start() - before.rfind(chr(10))}" if columns else ""
        raise InputError(f"{name} line {line + before.count(chr(10))}: not UTF-8 text "
                         f"(byte 0x{ord(bad.group()) - 0xDC00:02x}{where})")


def _lines(handle: IO[str], name: str, check: bool = True) -> Iterator[tuple[int, str]]:
    """(line number, line) with each line checked for length and, with `check`, undecodable bytes (else the
    caller rejects such a line as one bad record)."""
    number = 0
    while line := handle.readline(MAX_RECORD_CHARS + 1):
        number += 1
        if len(line) > MAX_RECORD_CHARS:
            raise InputError(f"{name} line {number}: longer than {MAX_RECORD_CHARS:,} characters")
        if check:
            _check_utf8(line, name, number)
        yield number, line


def _utf8_problem(text: str) -> str | None:
    """The not-UTF-8 message for a record's text (its raw lines), or None when it decoded cleanly."""
    try:
        _check_utf8(text, "", 1)
    except InputError as exc:
        return str(exc).split(": ", 1)[1]
    return None


def _read_delimited(handle: IO[str], name: str, delimiter: str) -> Iterator[Record]:
    consumed: list[str] = []  # the physical lines of the record being parsed, to hand back as received

    def lines() -> Iterator[str]:
        for _, line in _lines(handle, name, check=False):
            consumed.append(line)
            yield line

    # The csv module's own limit (131072 characters a field) is smaller than texts people embed.
    csv.field_size_limit(MAX_RECORD_CHARS)
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
        if (problem := _utf8_problem(raw)) is not None:
            yield Record(name, reader.line_num, {}, raw=raw, error=problem)
            continue
        if len(row) != len(header):
            yield Record(name, reader.line_num, {}, raw=raw,
                         error=f"{len(row)} fields, but the header has {len(header)}")
            continue
        yield Record(name, reader.line_num, dict(zip(header, row)), raw=raw)


def _loads(line: str) -> Any:
    """json.loads, through orjson first: faster on the long number arrays of precomputed vectors (parsing fell
    from 21% to 15% of a 10,000-vector load; bench/report.py --part loading profiles it). orjson refuses what the
    standard module takes (NaN, integers past 64 bits, lone surrogates) and words its errors its own way: any line
    it refuses is parsed again by the standard module, so what a line means and what an error says never depend on
    orjson."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _read_jsonl(handle: IO[str], name: str) -> Iterator[Record]:
    for number, line in _lines(handle, name, check=False):
        if not line.strip():
            continue
        if (problem := _utf8_problem(line)) is not None:
            yield Record(name, number, {}, raw=line, error=problem)
            continue
        try:
            data = _loads(line)
        except json.JSONDecodeError as exc:
            yield Record(name, number, {}, raw=line, error=f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield Record(name, number, {}, raw=line, error="JSON nested too deeply")
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


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_STRUCTURE = re.compile(r'[][{}"]')  # outside strings, only these change nesting
_JSON_STRING_STOP = re.compile(r'["\\]')
_JSON_SCALAR_END = re.compile(r"[ \t\n\r,\]}]")


class _JsonStream:
    """Just enough of a streaming JSON reader to walk one array.

    Before json's raw_decode sees a value, a small scanner finds where that value ends (tracking strings,
    escapes and nesting, its state kept across chunks, so every character is scanned once). raw_decode
    then sees a complete value: a decode error is real at once, instead of a reason to read on to the
    end of the file.
    """

    def __init__(self, handle: IO[str], name: str) -> None:
        self.handle, self.name = handle, name
        self.buffer, self.pos, self.line, self.eof = "", 0, 1, False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        # Read as much again as is buffered: one huge value costs a linear number of copies, not quadratic.
        chunk = self.handle.read(max(JSON_CHUNK, len(self.buffer) - self.pos))
        if not chunk:
            self.eof = True
            return False
        rest = len(self.buffer) - self.pos
        if rest + len(chunk) > MAX_RECORD_CHARS:
            raise InputError(f"{self.name} line {self.line}: a JSON value longer than {MAX_RECORD_CHARS:,} characters")
        _check_utf8(chunk, self.name, self.line + self.buffer.count("\n", self.pos), columns=False)
        self.buffer = self.buffer[self.pos:] + chunk
        self.pos = 0
        return True

    def _advance(self, end: int) -> None:
        self.line += self.buffer.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        """The next non-blank character, or '' at the end of input."""
        while True:
            self._advance(_JSON_SPACE.match(self.buffer, self.pos).end())  # type: ignore[union-attr]
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
        self._scan_value()
        try:
            data, end = self.decoder.raw_decode(self.buffer, self.pos)
        except json.JSONDecodeError as exc:
            line = self.line + self.buffer.count("\n", self.pos, exc.pos)
            raise InputError(f"{self.name} line {line}: malformed JSON ({exc.msg})") from exc
        start_line = self.line
        self._advance(end)
        return start_line, data

    def _scan_value(self) -> None:
        """Read on until the value at `pos` is complete in the buffer (or the input ends)."""
        scanned = 0  # relative to pos: a refill moves pos, not what was scanned
        depth, in_string, scalar = 0, False, False
        while True:
            text, i = self.buffer, self.pos + scanned
            while i < len(text):
                if in_string:
                    stop = _JSON_STRING_STOP.search(text, i)
                    if stop is None:
                        i = len(text)
                    elif stop.group() == '"':
                        in_string, i = False, stop.end()
                        if depth == 0:
                            return
                    elif stop.end() == len(text):
                        i = stop.start()  # a backslash whose escaped character is in the next chunk
                        break
                    else:
                        i = stop.end() + 1
                elif scalar:  # a number or literal: it may go on in the next chunk
                    if _JSON_SCALAR_END.search(text, i):
                        return
                    i = len(text)
                elif depth == 0:  # the value's first character
                    depth, in_string, scalar = int(text[i] in "[{"), text[i] == '"', text[i] not in '[{"'
                    i += 1 - scalar
                else:
                    mark = _JSON_STRUCTURE.search(text, i)
                    if mark is None:
                        i = len(text)
                        continue
                    i = mark.end()
                    if mark.group() == '"':
                        in_string = True
                    elif mark.group() in "[{":
                        depth += 1
                        if depth > MAX_JSON_DEPTH:
                            line = self.line + text.count("\n", self.pos, i)
                            raise InputError(f"{self.name} line {line}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
                    else:
                        depth -= 1
                        if depth == 0:
                            return
            scanned = i - self.pos
            if not self._fill():
                return
