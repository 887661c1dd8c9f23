"""A torch-free image encoder: the CNN (EfficientNet-Lite0 and its pooling) exported once to ONNX, then run with
onnxruntime, so that an image query does not import torch (~2 s of the 2.3 s an `--image` query took).

The export is made by `vsearch models prepare`, or after a load that embedded images with torch, into vsearch's
data directory, checked against torch on a few images (cosine > AGREEMENT), and from then on embeds with
onnxruntime, numpy and Pillow only. Pixels are prepared exactly as for torch (`cnn.cnn_pixels`).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from vsearch.errors import ModelError, VsearchError
from vsearch.models.cnn import CNN_BATCH, cnn_pixels
from vsearch.models.exports import META_FILE, make_export, sha256
from vsearch.models.names import CNN_DIM, CNN_IMAGE_MODELS

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

EXPORT_FORMAT = 1  # bumped whenever the exported graph or its inputs change
OPSET = 17
AGREEMENT = 0.9999
MODEL_FILE = "model.onnx"
CHECKED_FILES = (MODEL_FILE,)


def export_path(home: Path, name: str) -> Path:
    return home / "models" / f"cnn-onnx{EXPORT_FORMAT}-{name}"


def exportable(name: str) -> bool:
    return name in CNN_IMAGE_MODELS


def exported(home: Path, name: str) -> bool:
    return exportable(name) and export_path(home, name).is_dir()


def export(name: str, dest: Path) -> Path:
    """Export CNN model `name` with its pooling to ONNX in `dest` (made atomically, checked against torch)."""
    if not exportable(name):
        raise ModelError(f"image model '{name}' is not one vsearch exports to ONNX (those are {', '.join(CNN_IMAGE_MODELS)})")
    return make_export(name, dest, CHECKED_FILES, lambda folder: _write_export(name, folder))


def _check_images() -> list[Image.Image]:
    """Images the export must agree on: a gradient, noise, a flat colour and a photo-like mix, at odd sizes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    gradient = np.linspace(0, 255, 300 * 200 * 3).reshape(200, 300, 3).astype(np.uint8)
    noise = rng.integers(0, 256, (240, 240, 3), dtype=np.uint8)
    flat = np.full((64, 96, 3), (200, 30, 60), dtype=np.uint8)
    mix = ((gradient[:120, :160].astype(int) + noise[:120, :160]) // 2).astype(np.uint8)
    return [Image.fromarray(a, "RGB") for a in (gradient, noise, flat, mix)]


def _write_export(name: str, out: Path) -> None:
    import numpy as np
    import torch

    from vsearch.models.cnn import CnnImageEncoder, pool_features

    encoder = CnnImageEncoder(name, "cpu")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = encoder.model

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return pool_features(self.model.extract_features(pixels), encoder.pooling)

    sample = torch.from_numpy(np.stack([cnn_pixels(image) for image in _check_images()[:2]]))
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant branches: not news
        torch.onnx.export(Pooled().eval(), (sample,), str(out / MODEL_FILE), dynamo=False, opset_version=OPSET,
                          input_names=["pixels"], output_names=["vector"],
                          dynamic_axes={"pixels": {0: "batch"}, "vector": {0: "batch"}})
    meta = {"model": name, "dim": CNN_DIM, "pooling": encoder.pooling,
            "files": {n: {"size": (out / n).stat().st_size, "sha256": sha256(out / n)} for n in CHECKED_FILES}}
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    images = _check_images()
    expected = encoder.encode_images(images)
    got = OnnxImageEncoder(out, name).encode_images(images)
    cosine = np.sum(expected * got, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1))
    if got.shape != expected.shape or not np.all(cosine > AGREEMENT):
        raise ModelError(f"the ONNX export of '{name}' does not agree with torch (cosine {float(cosine.min()):.6f})")


class OnnxImageEncoder:
    """Embeds images with an exported CNN; imports only onnxruntime, numpy and Pillow."""

    dim = CNN_DIM
    modalities = frozenset({"image"})

    def __init__(self, export_dir: Path, name: str) -> None:
        import onnxruntime

        self.name = name
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(8, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(export_dir / MODEL_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        raise ModelError(f"image model '{self.name}' cannot embed text: pass a CLIP model as --image-model for that")

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), CNN_BATCH):
            pixels = np.stack([cnn_pixels(image) for image in images[start:start + CNN_BATCH]]).astype(np.float32)
            (vectors,) = self.session.run(None, {"pixels": pixels})
            out[start:start + len(pixels)] = vectors
        return out


@lru_cache(maxsize=4)
def image_encoder(name: str, home: Path) -> OnnxImageEncoder | None:
    """The export of CNN model `name` if one is made and whole (a damaged one is made again), else None."""
    dest = export_path(home, name)
    if not exportable(name) or not dest.is_dir():
        return None
    try:
        return OnnxImageEncoder(export(name, dest), name)
    except VsearchError as exc:
        print(f"vsearch: warning: no fast image model ({exc}); using torch", file=sys.stderr)
        return None
