"""Image decoding on one thread against vsearch's parallel decoding (`models.open_images`), side by side.

Decodes the same photos both ways, rounds alternating, and prints images/s (medians) and the ratio: camera-size
JPEGs (made here, 3000x2000, noise so they do not compress away) and the catalogue's own photos.

Usage: .venv/bin/python bench/image_decoding.py [--rounds 3] [--large 24]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsearch.models import images as models  # noqa: E402


def speed(paths: list[Path], threads: int) -> float:
    models.DECODE_THREADS = threads
    started = time.perf_counter()
    models.open_images(paths)
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large", type=int, default=24, help="how many 3000x2000 JPEGs to make")
    args = parser.parse_args()
    from PIL import Image

    parallel = models.DECODE_THREADS
    catalogue = ROOT.parent / "shared" / "data" / "fashion" / "images"
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        large = []
        for i in range(args.large):
            path = Path(tmp) / f"{i}.jpg"
            Image.fromarray((rng.random((2000, 3000, 3)) * 255).astype("uint8")).save(path, quality=90)
            large.append(path)
        sets = {"3000x2000 JPEGs": large,
                "catalogue photos": sorted((catalogue if catalogue.exists() else ROOT / "sample_data" / "images")
                                           .glob("*.jpg"))}
        print(f"{os.cpu_count()} CPUs; vsearch decodes on {parallel} threads; median of {args.rounds}\n")
        print("| photos | 1 thread | vsearch | ratio |\n| --- | --- | --- | --- |")
        for label, paths in sets.items():
            runs: dict[int, list[float]] = {1: [], parallel: []}
            for _ in range(args.rounds):
                for threads in runs:
                    runs[threads].append(speed(paths, threads))
            one, many = statistics.median(runs[1]), statistics.median(runs[parallel])
            print(f"| {len(paths)} {label} | {one:.1f}/s | {many:.1f}/s | {many / one:.2f}x |")


if __name__ == "__main__":
    main()
