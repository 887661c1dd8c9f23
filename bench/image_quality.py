"""Benchmark: vsearch's image embeddings against a naive EfficientNet-Lite0 loop, quality and speed.

Both runs use the default image model, efficientnet-lite0-gem: EfficientNet-Lite0's last feature map
(1280x7x7) GeM-pooled (p=3) into one 1280-d vector, so only the loop around the network differs.

Quality is precision@10 by article type on the labelled fashion catalogue (1,000 photos, 20 types x 50):
for each photo, the share of its 10 nearest other photos (cosine) with the same articleType.
The naive baseline is the loop anyone writes first: one image at a time, stretched to 224x224.

With --poolings it then compares the CNN's poolings on quality alone, in the same run: precision@10 of every
model name in vsearch.models.CNN_IMAGE_MODELS (efficientnet-lite0-gem, efficientnet-lite0 = the mean), plain and
with a same-gender pre-filter (as `query --like ID --where gender=G` does; a query that cannot fill 10 hits counts
the missing ones as misses).

Usage: .venv/bin/python bench/image_quality.py [FASHION_DIR] [--poolings]   (default ../shared/data/fashion,
else sample_data/ with 15 photos a type)
"""

from __future__ import annotations

import csv
import statistics
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsearch.models import CNN_IMAGE_MODELS, load_image_encoder, open_image  # noqa: E402
from vsearch.models.cnn import IMAGENET_MEAN, IMAGENET_STD, pool_features  # noqa: E402


def catalogue(folder: Path, column_name: str = "articleType") -> tuple[list[Path], list[str]]:
    name, column = ("labels.csv", "filename") if (folder / "labels.csv").exists() else ("products.csv", "image")
    with open(folder / name, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [folder / row[column] for row in rows], [row[column_name] for row in rows]


def precision_at_10(vectors: np.ndarray, labels: list[str], groups: list[str] | None = None) -> float:
    """The share of each vector's 10 nearest others (cosine) with its label; with `groups`, only vectors of its
    own group are candidates, and a query whose group cannot fill 10 counts the missing hits as misses."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    if groups is not None:
        group = np.array(groups)
        similarity[group[:, None] != group[None, :]] = -np.inf
    nearest = np.argsort(-similarity, axis=1)[:, :10]
    truth = np.array(labels)
    found = np.isfinite(np.take_along_axis(similarity, nearest, axis=1))
    return float(((truth[nearest] == truth[:, None]) & found).sum() / (10 * len(labels)))


def naive(paths: list[Path]) -> np.ndarray:
    import torch
    from PIL import Image

    encoder = load_image_encoder()  # the same network, weights and pooling; only the loop differs
    out = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((224, 224))
        pixels = (np.asarray(image, dtype=np.float32) / 255.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        with torch.no_grad():
            features = encoder.model.extract_features(torch.from_numpy(pixels.transpose(2, 0, 1))[None])
            out.append(pool_features(features, encoder.pooling)[0].numpy())
    return np.stack(out)


def vsearch(paths: list[Path]) -> np.ndarray:
    return load_image_encoder().encode_images([open_image(p) for p in paths])


def main() -> None:
    given = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    folder = Path(given[0]) if given else ROOT.parent / "shared" / "data" / "fashion"
    if not folder.exists():
        folder = ROOT / "sample_data"
    paths, labels = catalogue(folder)
    encoder = load_image_encoder()
    # Relative to the repository (../shared/data/fashion): the report must not name this machine's folders.
    shown = os.path.relpath(folder.resolve(), ROOT)
    print(f"{len(paths)} photos, {len(set(labels))} article types, from {shown}")
    print(f"model {encoder.name} ({encoder.pooling} pooling of the feature map), in both runs")
    print(f"{'run':28} {'p@10':>6} {'images/s (median of 3)':>24}")
    for name, embed in (("naive loop (stretch, 1 by 1)", naive), ("vsearch encode_images", vsearch)):
        seconds, vectors = [], None
        for _ in range(3):
            started = time.perf_counter()
            vectors = embed(paths)
            seconds.append(time.perf_counter() - started)
        assert vectors is not None
        print(f"{name:28} {precision_at_10(vectors, labels):6.3f} {len(paths) / statistics.median(seconds):24.1f}")
    if "--poolings" in sys.argv:
        genders = catalogue(folder, "gender")[1]
        images = [open_image(p) for p in paths]
        print("poolings, quality only (precision@10 by article type):")
        for model in CNN_IMAGE_MODELS:
            vectors = load_image_encoder(model).encode_images(images)
            print(f"  {model} ({CNN_IMAGE_MODELS[model]}): plain {precision_at_10(vectors, labels):.4f}, "
                  f"gender pre-filter {precision_at_10(vectors, labels, genders):.4f}")


if __name__ == "__main__":
    main()
