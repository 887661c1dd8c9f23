"""`--batch FILE`: queries one text a line, or JSONL with "text" (or "image") and "id", read lazily."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vsearch.errors import InputError
from vsearch.records import is_unicode


@dataclass(frozen=True)
class BatchQuery:
    text: str  # "" for an image query
    id: str | None = None  # the input's own id for the query, when it gives one
    image: Path | None = None  # a JSONL line's "image": search the image vectors by this picture
    line: int = 0

    @property
    def label(self) -> str:
        """What a result row names as its query: the text, or the image's path."""
        return self.text if self.image is None else str(self.image)


def open_batch(path: str) -> Iterator[BatchQuery]:
    """The queries of a batch file (`-`: stdin), read lazily; an unreadable file is one InputError."""
    import sys

    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"--batch: cannot read {path}: {exc.strerror or exc}") from exc

    def lines() -> Iterator[str]:
        # Decoded a line at a time: a text stream decodes ahead in chunks, so its error named a later line.
        try:
            for number, raw in enumerate(stream, 1):
                try:
                    yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"--batch: {path} line {number} is not UTF-8 text") from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    return read_batch(lines(), Path.cwd() if path == "-" else Path(path).parent)


def read_batch(lines: Iterable[str], root: Path = Path(".")) -> Iterator[BatchQuery]:
    """Queries from a batch file: one text a line, or JSONL objects with "text" (or "image": a path, relative to
    `root`, the batch file's folder) and an optional "id".

    The first non-blank line decides: a JSON object makes the whole file JSONL. Blank lines are skipped.
    """
    jsonl: bool | None = None
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if jsonl is None:
            jsonl = line.lstrip().startswith("{")
        if not jsonl:
            yield BatchQuery(line, line=number)
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InputError(f"--batch line {number}: not a JSON object ({exc})") from exc
        image = item.get("image") if isinstance(item, dict) else None
        query_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(image, str) and image:
            if not is_unicode(image):
                raise InputError(f"--batch line {number}: \"image\" is not valid Unicode (a lone surrogate such as "
                                 "\\ud800)")
            yield BatchQuery("", None if query_id is None else str(query_id), root / image, number)
            continue
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"--batch line {number}: needs a non-empty string \"text\" (or \"image\": a path)")
        if not is_unicode(text):
            raise InputError(f"--batch line {number}: \"text\" is not valid Unicode (a lone surrogate such as \\ud800)")
        yield BatchQuery(text, None if query_id is None else str(query_id), line=number)
