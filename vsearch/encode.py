"""`encode`: text or images in, vectors out as JSONL, .npy or raw little-endian float32."""

from __future__ import annotations

import glob
import json
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path
from typing import IO

import numpy as np

from vsearch.config import EngineOptions, Settings
from vsearch.errors import InputError, UsageError, VsearchError
from vsearch.models import Encoder, Purpose, open_engine, open_images, prepare_image_query_encoder, prepare_query_encoder
from vsearch.output import VectorFormat
from vsearch.records import STDIN, EXTENSIONS, Format, Record, is_unicode, read_lines, read_records

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
FEW_ITEMS = 64  # inputs an encode counts as a handful (see run_encode)
NPY_HEADER = 128  # bytes reserved for the .npy header, patched with the row count at the end


@dataclass(frozen=True)
class Item:
    id: str
    payload: str  # a text, or an image path
    extra: dict[str, int] | None = None  # a passage's number and [start, end) in its text (`encode --passages`)


@dataclass(frozen=True)
class EncodeJob:
    items: Iterable[Item]
    images: bool
    count: int | None  # known up front for image files, not for streamed text


def plan_inputs(paths: list[str], image: bool, fmt: Format | None, field: str | None,
                id_field: str | None) -> EncodeJob:
    """What to encode: image files (by --image or their extensions), else texts."""
    if image or is_image_input(paths):
        files = expand_images(paths)
        return EncodeJob([Item(str(p), str(p)) for p in files], True, len(files))
    return EncodeJob(text_items(paths, fmt, field, id_field), False, None)


def format_for(output: Path | None) -> VectorFormat:
    suffix = output.suffix.lower().lstrip(".") if output else ""
    return VectorFormat(suffix) if suffix in (VectorFormat.npy.value, VectorFormat.f32.value) else VectorFormat.jsonl


@contextmanager
def open_output(path: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or a file that appears only when complete: written beside it, renamed into place on success."""
    if path is None:
        yield sys.stdout.buffer
        return
    if path.is_dir():  # found before any work, not when the finished file is renamed onto the folder
        raise UsageError(f"{path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")
    try:
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with handle:
            yield handle
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def ids_path(vectors: Path) -> Path:
    """Where the ids of a .npy or .f32 file's rows are kept: `names.npy` -> `names.ids.jsonl`, one {"id": ...}
    a row, in row order (a matrix holds no ids; `load NAME names.ids.jsonl --vectors names.npy` takes both)."""
    return vectors.with_suffix(".ids.jsonl")


def write_vectors(job: EncodeJob, encoder: Encoder, out: IO[bytes], fmt: VectorFormat, batch_size: int,
                  progress: Callable[[int], None], ids_out: IO[bytes] | None = None,
                  cut: TextsCut | None = None) -> tuple[int, int]:
    """Encode everything and write it (and, to `ids_out`, each row's id); returns (rows, dimension).

    `cut` counts the texts longer than the model reads (whose ends are not in their vectors)."""
    writer = VectorWriter(out, fmt)
    # Texts go 16 batches at a time so the model can sort them by length; images gain nothing from
    # that, and each decoded image holds up to a few MB, so they go one batch at a time.
    chunk = batch_size if job.images else batch_size * 16
    for items, vectors in encode_batches(job.items, encoder, job.images, batch_size, chunk=chunk):
        ids = [item.id for item in items]
        extras = [item.extra for item in items] if items and items[0].extra is not None else None
        writer.write(ids, vectors, extras)
        if cut is not None:
            cut.count([item.payload for item in items])
        if ids_out is not None:
            ids_out.write("".join(json.dumps({"id": item.id, **(item.extra or {})}, ensure_ascii=False) + "\n"
                                  for item in items).encode())
        progress(len(ids))
    writer.close()
    return writer.rows, writer.dim


class TextsCut:
    """Counts the texts a model reads only the start of, with its own tokenizer (none on this machine: 0)."""

    def __init__(self, model: str) -> None:
        from vsearch.passages import load_tokenizer, settings_for_model

        self.cut = 0
        try:
            self.tokenizer, self.limit = load_tokenizer(model), settings_for_model(model).max_tokens
        except VsearchError:
            self.tokenizer = None

    def count(self, texts: Sequence[str]) -> None:
        from vsearch.passages import count_tokens

        if self.tokenizer is not None:
            self.cut += sum(1 for t in texts if len(t) > self.limit and count_tokens(t, self.tokenizer) > self.limit)


def passage_items(items: Iterable[Item], model: str) -> Iterator[Item]:
    """Each text as its passages (`vsearch.passages`, the model's window), numbered, with their offsets."""
    from vsearch.passages import load_tokenizer, settings_for_model, split_passages

    tokenizer, settings = load_tokenizer(model), settings_for_model(model)
    for item in items:
        for number, passage in enumerate(split_passages(item.payload, tokenizer, settings.max_tokens,
                                                        settings.overlap)):
            yield Item(item.id, passage.text, {"passage": number, "start": passage.start, "end": passage.end})


def is_image_input(paths: list[str]) -> bool:
    return bool(paths) and all(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in paths)


def expand_images(patterns: list[str]) -> list[Path]:
    """Image files from paths and globs, in a stable order; a pattern that matches nothing is an error."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(f"no image files match {pattern}")
        for match in matches:
            if not is_unicode(match):  # its id would be no text: JSON could only write it as a lone surrogate
                raise InputError(f"the file name {ascii(match)} is not UTF-8 text: rename it to encode it")
        found.extend(Path(m) for m in matches)
    return found


def text_items(paths: list[str], fmt: Format | None, field: str | None, id_field: str | None) -> Iterator[Item]:
    """Texts to embed: one a line, or one field of each CSV/TSV/JSON/JSONL record."""
    for path in paths or [STDIN]:
        structured = fmt is not None or Path(path).suffix.lower() in EXTENSIONS
        if not structured:
            if field:
                raise UsageError(f"--field needs CSV/TSV/JSON/JSONL input; pass --format for {path}")
            yield from (Item(r.data["id"], r.data["text"]) for r in read_lines(path))
            continue
        if not field:
            raise UsageError("say which field holds the text: --field NAME")
        records = read_records(path, fmt or EXTENSIONS[Path(path).suffix.lower()])
        yield from (_record_item(record.check(), field, id_field) for record in records)


def _record_item(record: Record, field: str, id_field: str | None) -> Item:
    text = record.value(field)
    key = id_field or ("id" if "id" in record.data else None)
    item_id = str(record.value(key)) if key else str(record.line)
    return Item(item_id, "" if text is None else str(text))


def encode_items(items: Iterable[Item], encoder: Encoder, images: bool, batch_size: int,
                 chunk: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, vectors) per chunk. Texts go to the model `chunk` at a time, so it can sort them by length."""
    for batch, vectors in encode_batches(items, encoder, images, batch_size, chunk):
        yield [item.id for item in batch], vectors


def encode_batches(items: Iterable[Item], encoder: Encoder, images: bool, batch_size: int,
                   chunk: int) -> Iterator[tuple[list[Item], np.ndarray]]:
    iterator = iter(items)
    while batch := list(islice(iterator, chunk)):
        if images:
            decoded = open_images([Path(item.payload) for item in batch])
            if failed := next((image for image in decoded if isinstance(image, InputError)), None):
                raise failed
            vectors = encoder.encode_images(decoded, batch_size)  # type: ignore[arg-type]
        else:
            vectors = encoder.encode_texts([item.payload for item in batch], batch_size)
        yield batch, vectors


class VectorWriter:
    """Writes vectors as they come; a .npy file gets its header (and row count) when it is closed."""

    def __init__(self, out: IO[bytes], fmt: VectorFormat) -> None:
        self.out, self.fmt, self.rows, self.dim = out, fmt, 0, 0
        self.seekable = out.seekable() if fmt is VectorFormat.npy else False
        self.pending: list[np.ndarray] = []  # .npy to a pipe: no way back to the header, so hold rows
        if self.seekable:
            out.write(b"\0" * NPY_HEADER)

    def write(self, ids: list[str], vectors: np.ndarray, extras: list[dict[str, int] | None] | None = None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        self.dim = vectors.shape[1]
        self.rows += len(ids)
        if self.fmt is VectorFormat.jsonl:
            more = extras or [None] * len(ids)
            lines = (json.dumps({"id": i, **(e or {}), "vector": v}) for i, e, v in zip(ids, more, vectors.tolist()))
            self.out.write(("\n".join(lines) + "\n").encode())
        elif self.fmt is VectorFormat.f32 or self.seekable:
            self.out.write(vectors.tobytes())
        else:
            self.pending.append(vectors)

    def close(self) -> None:
        if self.fmt is not VectorFormat.npy:
            return
        header = _npy_header(self.rows, self.dim).ljust(NPY_HEADER - 1, b" ") + b"\n"
        if self.seekable:
            self.out.seek(0)
            self.out.write(header)
        else:
            self.out.write(header)
            for block in self.pending:
                self.out.write(block.tobytes())
        self.out.flush()


def _npy_header(rows: int, dim: int) -> bytes:
    """An .npy version 1.0 header, without its final newline (the caller pads it to length)."""
    text = repr({"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}).encode("latin1")
    if len(text) + 10 + 1 > NPY_HEADER:
        raise InputError(f"cannot write {rows} rows in one .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", NPY_HEADER - 10) + text


class VectorTable:
    """The rows of a .npy file (memory-mapped: never read whole) found by id, through its `ids_path` file."""

    def __init__(self, path: Path) -> None:
        ids = ids_path(path)
        try:
            self.matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise UsageError(f"--vectors {path}: not a readable .npy file ({reason})") from None
        if self.matrix.ndim != 2 or self.matrix.dtype.kind != "f":
            raise UsageError(f"--vectors {path}: expected a 2-D matrix of floats, not {self.matrix.dtype} "
                             f"{self.matrix.shape}")
        self.rows: dict[str, int] = {}
        try:
            with open(ids, encoding="utf-8") as handle:
                for number, line in enumerate(handle):
                    self.rows.setdefault(str(json.loads(line)["id"]), number)
                    count = number + 1
        except FileNotFoundError:
            raise UsageError(f"--vectors {path}: its ids file {ids} is missing (`vsearch encode -o {path.name}` "
                             "writes both)") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise UsageError(f"--vectors {path}: {ids} line {number + 1} is not a {{\"id\": ...}} object") from None
        if count != len(self.matrix):
            raise UsageError(f"--vectors {path}: {len(self.matrix)} rows but {count} ids in {ids}")
        self.path = path

    def vector(self, doc_id: str) -> np.ndarray:
        row = self.rows.get(doc_id)
        if row is None:
            raise InputError(f"no vector for id {doc_id!r} in {self.path}")
        return np.asarray(self.matrix[row], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# The use case, as the CLI calls it


@dataclass(frozen=True)
class EncodeResult:
    rows: int
    dim: int
    ids_file: Path | None  # where the ids went, beside a matrix that holds none
    cut: int = 0  # texts longer than the model reads: their ends are not in their vectors (see --passages)


def run_encode(settings: Settings, job: EncodeJob, output: Path | None, fmt: VectorFormat, batch_size: int,
               engine: EngineOptions, progress: Callable[[int], None], passages: bool = False) -> EncodeResult:
    """`encode`: every input's vector, written as it is made (JSONL, .npy or raw float32); with `passages`, one
    vector a passage of each text, with its number and offsets."""
    if passages:
        if job.images:
            raise UsageError("--passages splits texts: images have none")
        job = replace(job, items=passage_items(job.items, settings.model))
    cut = None if passages or job.images else TextsCut(settings.model)
    # A handful of inputs (`vsearch encode - <<< "red dress"`) go through the ONNX exports where they are made: a
    # process then never imports torch. Many keep torch, faster in bulk. The first FEW_ITEMS + 1 tell which.
    # One iterator: `job.items` may be a list (an image folder's files), which islice would not consume.
    items = iter(job.items)
    head = list(islice(items, FEW_ITEMS + 1))
    purpose = Purpose.FEW if len(head) <= FEW_ITEMS else Purpose.BULK
    job = replace(job, items=chain(head, items) if len(head) > FEW_ITEMS else head)
    with open_engine(engine, settings.device) as encoders:
        encoder = (encoders.image_encoder(settings.image_model, settings, purpose) if job.images
                   else encoders.text_encoder(settings.model, settings, purpose))
        # A matrix holds no ids: they go beside it, one a row, so that `load --vectors` can take both back.
        ids_file = ids_path(output) if output and fmt is not VectorFormat.jsonl else None
        with open_output(output) as out, open_output(ids_file) if ids_file else nullcontext() as ids_out:
            rows, dim = write_vectors(job, encoder, out, fmt, batch_size, progress, ids_out, cut)
    return EncodeResult(rows, dim, ids_file, cut.cut if cut else 0)


def prepare_query_model(settings: Settings) -> Path:
    """`models prepare`: the configured text model's ONNX export for queries, made once; its folder."""
    return prepare_query_encoder(settings.model, settings.home)


def prepare_image_query_model(settings: Settings) -> Path | None:
    """`models prepare`: the configured image model's ONNX export (a CNN; None for CLIP, which stays on torch)."""
    from vsearch.models import needs_query_export, onnx_image

    if not onnx_image.exportable(settings.image_model):
        return None
    return prepare_image_query_encoder(settings.image_model, settings.home) if needs_query_export(
        settings.image_model, settings.home, "image") else onnx_image.export_path(settings.home, settings.image_model)
