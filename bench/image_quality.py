"""Benchmark: vsearch's image embeddings against a naive EfficientNet-Lite0 loop, quality and speed.

Both runs use the default image model, efficientnet-lite0-gem: EfficientNet-Lite0's last feature map
(1280x7x7) GeM-pooled (p=3) into one 1280-d vector, so only the loop around the network differs.

Quality is precision@10 by article type on the labelled fashion catalogue (1,000 photos, 20 types x 50):
for each photo, the share of its 10 nearest other photos (cosine) with the same articleType.
The naive baseline is the loop anyone writes first: one image at a time, stretched to 224x224.

Usage: .venv/bin/python bench/image_quality.py [FASHION_DIR]   (default ../shared/data/fashion,
else sample_data/ with 15 photos a type)
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsearch.models import IMAGENET_MEAN, IMAGENET_STD, load_image_encoder, open_image, pool_features  # noqa: E402


def catalogue(folder: Path) -> tuple[list[Path], list[str]]:
    name, column = ("labels.csv", "filename") if (folder / "labels.csv").exists() else ("products.csv", "image")
    with open(folder / name, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [folder / row[column] for row in rows], [row["articleType"] for row in rows]


def precision_at_10(vectors: np.ndarray, labels: list[str]) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :10]
    truth = np.array(labels)
    return float((truth[nearest] == truth[:, None]).mean())


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
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "fashion"
    if not folder.exists():
        folder = ROOT / "sample_data"
    paths, labels = catalogue(folder)
    encoder = load_image_encoder()
    print(f"{len(paths)} photos, {len(set(labels))} article types, from {folder}")
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


if __name__ == "__main__":
    main()
