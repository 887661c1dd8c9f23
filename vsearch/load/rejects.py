"""Rejected records: one line each on stderr (the first few), counted, and written to `--rejects` as received."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from vsearch.errors import InputError
from vsearch.records import Record

SHOWN_REJECTS = 10  # reject lines printed on stderr before the rest are only counted


class Rejects:
    def __init__(self, path: Path | None, strict: bool, dry_run: bool, warn: Callable[[str], None]) -> None:
        self.path = path.expanduser() if path is not None and not dry_run else None
        self.strict, self.warn = strict, warn
        self.count = 0
        self.unidentified = 0  # rejected records whose id could not be read: --prune cannot know them
        self.batch: list[str] = []  # this batch's messages, for the check that the options name no field at all
        self.file: IO[str] | None = None

    def reject(self, record: Record, reason: str, identified: bool = True) -> None:
        """`identified`: the record's id was read, so --prune knows to keep its document."""
        message = reason if reason.startswith(record.source) else f"{record.where()}: {reason}"
        self.batch.append(message)
        if self.strict:
            raise InputError(f"{message} (--strict: nothing of this batch or after it was written)")
        self.count += 1
        if not identified:
            self.unidentified += 1
        if self.count <= SHOWN_REJECTS:
            self.warn(f"rejected {message}")
        if self.path is not None:
            if self.file is None:
                # surrogateescape: a line that was not UTF-8 goes back out as the bytes it came in as.
                # 0600, as --report: rejected records are the user's data, never for other local users.
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                self.file = open(descriptor, "w", encoding="utf-8", errors="surrogateescape", newline="")
            raw = record.raw or json.dumps(record.data, ensure_ascii=False)
            self.file.write(raw if raw.endswith("\n") else raw + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
