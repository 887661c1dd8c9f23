"""A record's values as a document's: one rule for each kind of field, each with the message a user needs.

Redis silently leaves out of the index a document whose indexed value it cannot parse, so every value an
index reads is checked or converted here, before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from vsearch.errors import InputError
from vsearch.records import Record, is_unicode
from vsearch.texts import join_texts
from vsearch.schema import TAG_SEPARATOR, DataType, FieldType, IndexSpec, Metric, Storage, VectorField



def document_id(record: Record, id_field: str) -> str:
    """The id exactly as the input has it (no stripping: `--like` must find it as typed); never blank."""
    value = record.value(id_field)
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"{record.where()}: field '{id_field}' must be a string or a number to be an id, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{record.where()}: field '{id_field}' is {value!r}, not an id")
    text = str(value)
    if not text.strip():
        raise InputError(f"{record.where()}: field '{id_field}' is empty")
    if not is_unicode(text):
        raise InputError(f"{record.where()}: field '{id_field}' is not valid Unicode text ({ascii(text)}): it "
                         "holds a lone surrogate or a byte that is not UTF-8")
    return text


def joined_text(record: Record, names: Iterable[str]) -> str:
    """The text fields joined by spaces; one of several may be empty (a paper without a title), not all."""
    names = tuple(names)
    text = join_texts(record.value(n) for n in names)
    if not text:
        raise InputError(f"{record.where()}: nothing to embed: {', '.join(repr(n) for n in names)} empty")
    return text


def image_path(record: Record, name: str, base: Path, root: Path) -> Path:
    """The record's image path (relative to `base`), resolved inside `root`: a path that leaves it (`..`, an
    absolute path, a symlink out) is refused before the file is touched, so an input file cannot read, or
    probe for, other files."""
    value = record.value(name)
    if value is None or not str(value).strip():
        raise InputError(f"{record.where()}: field '{name}' is empty")
    resolved = (base / str(value)).resolve()
    if not resolved.is_relative_to(root):
        raise InputError(f"{record.where()}: image path {str(value)!r} leaves the image root {root} (relative "
                         f"paths start at the input's folder, {base}; --image-root sets where they may lead)")
    check_regular_file(resolved, f"{record.where()}: image")
    return resolved


def check_regular_file(path: Path, what: str) -> None:
    """Refuse what is not a plain file before opening it: reading a FIFO or a device would wait forever (or
    never end), and a folder cannot be read. `stat` itself never blocks."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {path} is {_kind(mode)}, not a file")


def _kind(mode: int) -> str:
    return "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"


def open_regular_file(path: Path) -> BinaryIO:
    """`path` opened for reading only if it is a plain file, checked on the open file itself, so that a file
    swapped for a FIFO after `check_regular_file` still cannot block (O_NONBLOCK) or be read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"image file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        reason = "Is a directory" if stat.S_ISDIR(mode) else f"{_kind(mode)}, not a file"
        raise InputError(f"{path}: not a readable image ({reason})")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def given_vector(record: Record, column: str, vector: VectorField) -> np.ndarray:
    value = record.value(column)
    try:
        values = json.loads(value) if isinstance(value, str) else value
        with np.errstate(over="ignore"):  # a number past float32's range becomes infinite, refused below
            array = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError):
        raise InputError(f"{record.where()}: field '{column}' is not a JSON array of numbers") from None
    except OverflowError:  # a JSON integer of hundreds of digits: past even float64's range
        raise InputError(f"{record.where()}: field '{column}' holds a NaN, an infinite number or one past float32's "
                         "range (3.4e38)") from None
    if array.ndim != 1:  # a number, null, or arrays in an array
        raise InputError(f"{record.where()}: field '{column}' is not a JSON array of numbers")
    if array.size != vector.dim:
        raise InputError(f"{record.where()}: field '{column}' has {array.size} numbers, but {vector.name} holds "
                         f"{vector.dim}-d vectors")
    # One float64 sum: NaN or infinity in, NaN or infinity out, and 1,000s of float32 maxima cannot overflow it.
    # np.all(np.isfinite(...)) cost 7% of a load of given vectors (bench/report.py --part loading profiles it).
    # Infinities of both signs sum to NaN, which numpy would warn about on stderr.
    with np.errstate(invalid="ignore"):
        total = array.sum(dtype=np.float64)
    if not math.isfinite(total):
        raise InputError(f"{record.where()}: field '{column}' holds a NaN, an infinite number or one past float32's "
                         "range (3.4e38)")
    check_scorable(array, vector, f"{record.where()}: field '{column}'")
    return array


# The largest finite value of each element type narrower than the float32 a vector is parsed as: a value past it
# is stored as infinity, and every score against the document becomes NaN.
_TYPE_MAX = {DataType.float16: 65504.0}


def check_scorable(array: np.ndarray, vector: VectorField, what: str) -> None:
    """Refuse a vector that the index cannot score: all zeros on a COSINE index (no direction: its similarity
    to anything is NaN), or a value past the element type's range."""
    if vector.metric is Metric.cosine and not array.any():
        raise InputError(f"{what} is all zeros: a zero vector has no direction, so its cosine similarity to "
                         "anything is undefined")
    limit = _TYPE_MAX.get(vector.datatype)
    if limit is not None and float(np.abs(array).max()) > limit:
        raise InputError(f"{what} holds a value past {vector.datatype.value.upper()}'s range ({limit:g})")


def usable_rows(matrix: np.ndarray, vector: VectorField) -> np.ndarray:
    """Which rows of a batch of given vectors (a float32 matrix, one vector a row) `given_vector` accepts: its rules,
    for a whole batch at once (`load`'s batch path). A refused row's message is `given_vector`'s own."""
    with np.errstate(invalid="ignore"):  # infinity minus infinity: NaN, refused without a warning
        usable = np.isfinite(matrix.sum(axis=1, dtype=np.float64))  # as there: finite exactly when every number is
    if vector.metric is Metric.cosine:
        usable &= matrix.any(axis=1)
    limit = _TYPE_MAX.get(vector.datatype)
    if limit is not None and len(matrix):
        usable &= np.abs(matrix).max(axis=1) <= limit
    return usable


def document_fields(spec: IndexSpec, record: Record, skip: set[str]) -> dict[str, Any]:
    """Every input column becomes a document field, in a form Redis will index.

    Redis silently leaves out of the index a document whose indexed value it cannot parse (a NUMERIC `NaN`,
    a JSON TAG holding a number), and `load` must never call such a document loaded: each indexed value is
    checked or converted here, before anything is written.
    """
    types = spec.field_types()
    skip = skip | {v.name for v in spec.vectors}
    out: dict[str, Any] = {}
    for name, value in record.data.items():
        # `skip` first: a given vector may already be an array (CandidateMaker.given_batches), which == "" cannot test
        if name in skip or value is None or value == "" or name.startswith("__vsearch"):
            continue
        kind = types.get(name)
        if kind is FieldType.numeric:
            out[name] = _number(record, name, value)
        elif kind is FieldType.geo:
            out[name] = _geo(record, name, value)
        elif kind is FieldType.tag:
            out[name] = _tag(record, name, value, spec)
        elif kind is FieldType.text and spec.storage is Storage.json:
            # JSON TEXT indexes strings (or arrays of them) only: a number would fail the whole document.
            is_texts = isinstance(value, list) and all(isinstance(v, str) for v in value)
            out[name] = value if isinstance(value, str) or is_texts else str(_plain(_finite(record, name, value)))
        elif spec.storage is Storage.json:
            out[name] = _finite(record, name, value)
        else:
            out[name] = _plain(_finite(record, name, value))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _finite(record: Record, name: str, value: Any) -> Any:
    """JSON has no NaN or Infinity (Python's reader accepts them): refuse them anywhere in a value."""
    if isinstance(value, (str, int)):  # the common case, and neither can hold one
        return value
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise InputError(f"{record.where()}: field '{name}' holds NaN or Infinity, which JSON cannot store") from None
    return value


def _number(record: Record, name: str, value: Any) -> int | float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{record.where()}: field '{name}' is NUMERIC but holds {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{record.where()}: field '{name}' is NUMERIC but holds {value!r}, which is not a finite "
                         "number (Redis would not index the document)")
    if isinstance(value, int) or (number.is_integer() and abs(number) < 2**53):
        return int(number)
    return number


def _geo(record: Record, name: str, value: Any) -> str:
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        lon, lat = (float(p) for p in parts)
        if not (-180 <= lon <= 180 and -85.05112878 <= lat <= 85.05112878):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"{record.where()}: field '{name}' is GEO and needs 'longitude,latitude', not {value!r}") from None
    return f"{lon},{lat}"


def _tag(record: Record, name: str, value: Any, spec: IndexSpec) -> Any:
    """Tags are strings: JSON storage indexes only strings (a number or a mixed array fails the document).

    A list is several tags: a HASH holds them joined by the index's separator, so no tag may hold it.
    """
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, (list, dict)) or v is None for v in values):
        raise InputError(f"{record.where()}: field '{name}' is TAG and needs a string or a list of strings, not {value!r}")
    texts = [v if isinstance(v, str) else json.dumps(v) for v in values]
    if spec.tag_separator == TAG_SEPARATOR and any(TAG_SEPARATOR in t for t in texts):
        raise InputError(f"{record.where()}: field '{name}' holds the control character U+001F, which separates "
                         "tags in the index")
    if spec.storage is Storage.json:
        return texts if isinstance(value, list) else texts[0]
    return (spec.tag_separator or ",").join(texts)
