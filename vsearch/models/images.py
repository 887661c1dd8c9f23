"""Image files to bounded RGB images for the encoders: safe decoding, transparency flattened, in parallel."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vsearch.errors import InputError
from vsearch.models.base import first_line
from vsearch.models.cnn import CNN_INPUT_SIZE

if TYPE_CHECKING:
    from PIL import Image

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
        reason = exc.strerror if exc.errno is not None else first_line(exc)
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
