"""Everything a `load` run decides before it reads a record: the source's kind and format, which fields make which
vectors, the batch size, and the checks that must fail before anything is read or written."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from vsearch.config import Settings
from vsearch.errors import UsageError
from vsearch.models import known_dim, model_name_for
from vsearch.records import detect_format, image_folder, is_image_source, read_image_folder, read_records
from vsearch.schema import IndexSpec, VectorField
from vsearch.load.request import LoadRequest

VECTORS_COLUMN = "__vsearch_vectors"  # what --vectors fills, as --vector-column would a column
# Documents a batch when --batch-size is not given. Embedding: small enough to show progress often. Given vectors
# cost nothing to embed: as many as a raw redis-py pipeline writes at once.
EMBED_BATCH = 256
GIVEN_BATCH = 1000


@dataclass(frozen=True)
class LoadPlan:
    """Which fields make which vectors."""

    id_field: str
    text_fields: tuple[str, ...]
    image_field: str | None
    image_root: Path  # image paths must resolve inside it
    image_base: Path  # relative image paths start here: the input file's folder
    text_vector: VectorField | None
    image_vector: VectorField | None
    precomputed: VectorField | None  # filled from vector_column
    vector_column: str = ""

    @property
    def planned(self) -> tuple[VectorField, ...]:
        return tuple(v for v in (self.text_vector, self.image_vector, self.precomputed) if v is not None)

    @property
    def all_given(self) -> bool:
        """Every vector this run fills is given (--vector-column, --vectors): no model, so batches are made whole."""
        return self.precomputed is not None and self.text_vector is None and self.image_vector is None

    @property
    def batch_size(self) -> int:
        return EMBED_BATCH if self.text_vector is not None or self.image_vector is not None else GIVEN_BATCH


def resolve_request(request: LoadRequest) -> LoadRequest:
    """The request with what its source implies, decided once for the run (`kind`): a file's format is detected; a
    folder or glob holds images or text files, and with no field options its images load as {id, image}, its text
    files as {id, path, title, size, mtime, text} embedding `text` (`vsearch.textfiles`)."""
    if not is_image_source(request.source):
        return replace(request, kind="records", input_format=detect_format(request.source, request.input_format))
    kind = _folder_kind(request)
    no_fields = not request.text_fields and not request.vector_column and request.vectors is None
    if kind == "images" and request.image_field is None and no_fields:
        return replace(request, kind=kind, image_field="image", id_field="id")
    if kind == "texts" and no_fields:
        return replace(request, kind=kind, text_fields=("text",), id_field="id")
    return replace(request, kind=kind)


def _folder_kind(request: LoadRequest) -> str:
    """Whether a folder or glob is read as images or as text files: as the field options say, else as what it
    holds (a folder of both needs them)."""
    if request.image_field:
        return "images"
    if request.text_fields:
        return "texts"
    from vsearch.records import IMAGE_EXTENSIONS
    from vsearch.textfiles import TEXT_EXTENSIONS, text_files

    # A glob lists what it matches whatever the extension: only text extensions make it a folder of texts.
    texts = any(path.suffix.lower() in TEXT_EXTENSIONS for path in text_files(request.source))
    images = _has_images(request.source, IMAGE_EXTENSIONS)
    if texts and images:
        raise UsageError(f"{request.source} holds both images and text files: say which to load with "
                         "--image-field image or --text-field text")
    return "texts" if texts and not images else "images"


def _has_images(source: str, extensions: frozenset[str]) -> bool:
    import glob

    folder = Path(source)
    found = (folder.rglob("*") if folder.is_dir() else (Path(p) for p in glob.iglob(source, recursive=True)))
    return any(path.suffix.lower() in extensions for path in found)


def read_input(request: LoadRequest):
    """The records of the request's source, as its kind reads them."""
    if request.kind == "texts":
        from vsearch.textfiles import read_text_files

        return read_text_files(request.source)
    if request.kind == "images":
        return read_image_folder(request.source)
    return read_records(request.source, request.input_format or detect_format(request.source, None))


def plan_load(spec: IndexSpec, request: LoadRequest) -> LoadPlan:
    text_vector = spec.vector("text") if request.text_fields else None
    image_vector = spec.vector("image") if request.image_field else None
    if request.text_fields and text_vector is None:
        raise UsageError(f"index '{spec.name}' has no text vector field to hold --text-field embeddings")
    if request.image_field and image_vector is None:
        raise UsageError(f"index '{spec.name}' has no image vector field: create it with "
                         f"`vsearch create-index {spec.name} --image`")
    precomputed = None
    if request.vectors is not None and request.vector_column:
        raise UsageError("give --vector-column or --vectors, not both")
    given = request.vector_column or (VECTORS_COLUMN if request.vectors is not None else None)
    if given:
        column, _, target = given.partition("=")
        precomputed = spec.vector_named(target) if target else _only_free_vector(spec, text_vector, image_vector)
        if precomputed in (text_vector, image_vector):
            raise UsageError(f"--vector-column fills {precomputed.name}, which --text-field/--image-field also fill")
    if not request.text_fields and not request.image_field and precomputed is None:
        wanted = " or ".join(f"--{kind}-field" for kind in ("text", "image") if spec.vector(kind))
        raise UsageError(f"say which field to embed: {wanted or '--text-field'} (or --vector-column)")
    base = (Path.cwd() if request.source == "-" else _source_root(request.source)).resolve()
    root = request.image_root.resolve() if request.image_root else base
    return LoadPlan(request.id_field, request.text_fields, request.image_field, root, base, text_vector,
                    image_vector, precomputed, (given or "").partition("=")[0])


def _only_free_vector(spec: IndexSpec, *taken: VectorField | None) -> VectorField:
    free = [v for v in spec.vectors if v not in taken]
    if len(free) != 1:
        names = ", ".join(v.name for v in spec.vectors)
        raise UsageError(f"say which vector field --vector-column fills: --vector-column COLUMN=FIELD (fields: {names})")
    return free[0]


def _source_root(source: str) -> Path:
    """Where a source's relative paths start: an image folder or glob's `records.image_folder`; a file's folder."""
    if is_image_source(source):
        return image_folder(source)
    path = Path(source)
    return path.parent if path.parent != Path("") else Path.cwd()


def model_for(vector: VectorField, request: LoadRequest, settings: Settings) -> str:
    """The model this run embeds `vector` with (`models.model_name_for`, with the run's --model/--image-model)."""
    override = request.image_model if vector.embeds == "image" else request.model
    return model_name_for(vector, override, settings)


def check_known_dimensions(spec: IndexSpec, plan: LoadPlan, settings: Settings, request: LoadRequest) -> None:
    """Refuse a model of the wrong dimension before reading anything, where its dimension is known by name.

    Other models are checked when first loaded, which is before their first vector is written.
    """
    for vector in (plan.text_vector, plan.image_vector):
        if vector is None:
            continue
        name = model_for(vector, request, settings)
        dim = known_dim(name)
        if dim is not None and dim != vector.dim:
            raise UsageError(dimension_message(spec, vector, name, dim))


def dimension_message(spec: IndexSpec, vector: VectorField, model: str, dim: int) -> str:
    return (f"model '{model}' makes {dim}-d vectors but {vector.name} in index '{spec.name}' holds {vector.dim}-d "
            f"ones: load with the model the index was made for ({vector.model or 'unknown'})")


def check_output_paths(request: LoadRequest) -> None:
    """Refuse --rejects and --report paths that cannot be written, or that would overwrite the input, before
    anything is read: a rejects file opened on the input truncates it while it is read."""
    outputs = [(option, path.expanduser()) for option, path in (("--rejects", request.rejects),
                                                                  ("--report", request.report)) if path is not None]
    if len(outputs) == 2 and _same_file(outputs[0][1], outputs[1][1]):
        raise UsageError("--rejects and --report name the same file: give each its own")
    for option, path in outputs:
        if path.is_dir():
            raise UsageError(f"{option} {path}: is a folder; give a file name")
        if not path.parent.is_dir():
            raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
        if _is_input(path, request.source):
            raise UsageError(f"{option} {path} is the input file: writing it would destroy the input; "
                             "give another file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _is_input(path: Path, source: str) -> bool:
    if not path.exists():
        return False
    try:
        if source == "-":  # stdin redirected from that very file (`< data.jsonl --rejects data.jsonl`)
            ours, theirs = os.fstat(0), os.stat(path)
            return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)
        return Path(source).is_file() and os.path.samefile(source, path)
    except (OSError, ValueError):
        return False
