"""Encoders, in one registry: which model a field uses (`names.model_name_for`) and which backend runs it
(`encoder_for`: sentence-transformers, the torch-free ONNX export, or a pool of Ray actors).

- `base`: the Encoder protocol and what every encoder shares.
- `names`: the one model rule, model identities for fingerprints, dimensions known without loading.
- `sentence`: sentence-transformers (text models, CLIP). `cnn`: the default image model. `images`: decoding.
- `onnx`: the exported text model for queries and small batches. `ray`: `--engine ray`.

Model code (torch, transformers, onnxruntime, ray) is imported only inside the loaders, so commands that need no
encoder start fast. Loaded encoders are cached per process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vsearch.config import EngineOptions, Settings
from vsearch.models.base import Encoder, Purpose
from vsearch.models.cnn import load_image_encoder
from vsearch.models.images import open_image, open_images
from vsearch.models.names import (BUNDLED_TEXT_MODELS, CNN_IMAGE_MODELS, default_model, known_dim, model_identity,
                                  model_name_for)
from vsearch.models.sentence import load_text_encoder

if TYPE_CHECKING:
    from vsearch.schema import VectorField

__all__ = [
    "BUNDLED_TEXT_MODELS", "CNN_IMAGE_MODELS", "Encoder", "EncoderSource", "Purpose", "default_model", "encoder_for",
    "known_dim", "load_image_encoder", "load_text_encoder", "model_identity", "model_name_for", "open_engine",
    "open_image", "open_images", "prepare_image_query_encoder", "prepare_query_encoder",
]


def encoder_for(vector: VectorField, override: str | None, settings: Settings,
                purpose: Purpose = Purpose.BULK) -> Encoder:
    """The encoder for a vector field's model (`model_name_for`), on the backend that suits `purpose`.

    On the CPU a text model that can be exported runs from its ONNX export (onnxruntime, no torch: ~0.1 s to load
    against ~5 s) for QUERY, and for FEW where the export already exists. A GPU device keeps torch.
    """
    name = model_name_for(vector, override, settings)
    if vector.embeds == "image":
        return image_encoder(name, settings, purpose)
    return text_encoder(name, settings, purpose)


def text_encoder(name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder:
    if purpose is not Purpose.BULK and settings.device in (None, "cpu"):
        from vsearch.models.onnx import exported, text_encoder as onnx_encoder

        if purpose is Purpose.QUERY or exported(settings.home, name):
            fast = onnx_encoder(name, settings.home)
            if fast is not None:
                return fast
    return load_text_encoder(name, settings.device)


def image_encoder(name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder:
    """The CNN's ONNX export for a few images on the CPU where it is made (no torch: an image query took 2.3 s,
    mostly importing torch); never made on first use, which would cost more than one query saves: a load that
    embedded images with torch makes it, and so does `vsearch models prepare`."""
    if purpose is not Purpose.BULK and settings.device in (None, "cpu"):
        from vsearch.models.onnx_image import image_encoder as onnx_image_encoder

        fast = onnx_image_encoder(name, settings.home)
        if fast is not None:
            return fast
    return load_image_encoder(name, settings.device)


def prepare_query_encoder(name: str, home: Path) -> Path:
    """Export a text model for queries (see `Purpose.QUERY`) into `home`, if not done yet; its folder.

    Raises ModelError (NotExportable) for a model whose pipeline the export does not reproduce.
    """
    from vsearch.models.onnx import export, export_path

    return export(name, export_path(home, name))


def needs_query_export(name: str, home: Path, embeds: str = "text") -> bool:
    """Whether a model could answer queries from an ONNX export that is not made yet."""
    if embeds == "image":
        from vsearch.models import onnx_image

        return onnx_image.exportable(name) and not onnx_image.exported(home, name)
    from vsearch.models.onnx import exportable, exported

    return not exported(home, name) and exportable(name)


def prepare_image_query_encoder(name: str, home: Path) -> Path:
    """Export a CNN image model for queries (see `image_encoder`) into `home`, if not done yet; its folder."""
    from vsearch.models import onnx_image

    return onnx_image.export(name, onnx_image.export_path(home, name))


class EncoderSource(Protocol):
    """Where a run gets its models: this process (`LocalEncoders`), or a pool of Ray actors (`ray.RayEngine`)."""

    local: bool  # the models run in this process, so the ONNX fast paths apply

    def encoder(self, vector: VectorField, override: str | None, settings: Settings,
                purpose: Purpose = Purpose.BULK) -> Encoder: ...

    def text_encoder(self, name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder: ...

    def image_encoder(self, name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder: ...


@dataclass(frozen=True)
class LocalEncoders:
    local: bool = True

    def encoder(self, vector: VectorField, override: str | None, settings: Settings,
                purpose: Purpose = Purpose.BULK) -> Encoder:
        return encoder_for(vector, override, settings, purpose)

    def text_encoder(self, name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder:
        return text_encoder(name, settings, purpose)

    def image_encoder(self, name: str, settings: Settings, purpose: Purpose = Purpose.BULK) -> Encoder:
        return image_encoder(name, settings, purpose)


LOCAL = LocalEncoders()


@contextmanager
def open_engine(options: EngineOptions | None, device: str | None) -> Iterator[EncoderSource]:
    """The encoders of `--engine`: this process's, or a Ray actor pool (started here, shut down after)."""
    if options is None or not options.ray:
        yield LOCAL
        return
    from vsearch.models.ray import RayEngine

    with RayEngine(options, device) as engine:
        yield engine
