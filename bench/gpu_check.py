"""The `--device cuda` check, ready for a machine with a GPU: same vectors as on CPU, and the speed of each.

For the text model (all-MiniLM-L6-v2) and the image model (efficientnet-lite0-gem, through vsearch's parallel image
decoding): embeds the same inputs on CPU and on CUDA, requires cosine > 0.9999 for every pair, and prints
texts/s and images/s side by side (model load excluded; image rows include decoding, as `load` does). Then it
runs `vsearch encode --device cuda` and `--device cpu` end to end on the same photos and compares their outputs.

Usage: .venv/bin/python bench/gpu_check.py [--texts 2000] [--images 1000]
Exit status: 0 all checks passed, 1 a vector differs, 3 no CUDA GPU here (nothing was checked).
Data: ../shared/data (SciFact abstracts, the fashion photos), else sample_data/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
AGREEMENT = 0.9999


def texts(count: int) -> list[str]:
    corpus = SHARED / "scifact" / "corpus.jsonl"
    if corpus.exists():
        with open(corpus, encoding="utf-8") as handle:
            return [f"{d['title']} {d['text']}" for d in map(json.loads, handle)][:count]
    lines = (ROOT / "sample_data" / "sentences.txt").read_text(encoding="utf-8").splitlines()
    return (lines * (count // max(len(lines), 1) + 1))[:count]


def images(count: int) -> list[Path]:
    folder = SHARED / "fashion" / "images"
    if not folder.exists():
        folder = ROOT / "sample_data" / "images"
    return sorted(folder.glob("*.jpg"))[:count]


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def timed(make: callable, items: list, batch: int) -> tuple[np.ndarray, float]:
    make(items[:batch])  # warm-up: CUDA kernels, cuDNN autotuning, caches
    started = time.perf_counter()
    vectors = make(items)
    return vectors, len(items) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    import torch

    from vsearch.models import load_image_encoder, load_text_encoder, open_images
    from vsearch.models.cnn import CNN_BATCH
    from vsearch.models.images import DECODE_THREADS

    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing checked (run this on a machine with one)")
        return 3
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; {os.cpu_count()} CPUs, "
          f"{DECODE_THREADS} image decoding threads\n")
    rows, ok = [], True
    sample = texts(args.texts)
    photos = images(args.images)
    for kind, items, load, make in (
        ("texts", sample, load_text_encoder, lambda e, b: (lambda xs: e.encode_texts(xs, batch_size=b))),
        ("images", photos, load_image_encoder,
         lambda e, b: (lambda ps: e.encode_images([im for im in open_images(ps)], batch_size=b))),
    ):
        out = {}
        for device, batch in (("cpu", 64), ("cuda", 256)):
            encoder = load(device=device)
            out[device] = timed(make(encoder, batch), items, batch)
        low = lowest_cosine(out["cpu"][0], out["cuda"][0])
        ok &= low > AGREEMENT
        rows.append(f"| {kind} ({len(items)}) | {out['cpu'][1]:.0f}/s | {out['cuda'][1]:.0f}/s | "
                    f"{out['cuda'][1] / out['cpu'][1]:.1f}x | {low:.6f} |")
    print(f"| what | CPU | CUDA | CUDA / CPU | lowest cosine CPU vs CUDA (> {AGREEMENT}) |\n| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\nCNN images a forward pass: {CNN_BATCH} on CPU (measured best there), the whole batch (256) on CUDA.")

    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for device in ("cpu", "cuda"):
            path = Path(tmp) / f"{device}.npy"
            done = subprocess.run([sys.executable, "-m", "vsearch", "encode", f"{photos[0].parent}/*.jpg", "-o", str(path),
                                   "--device", device], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if done.returncode:
                print(f"vsearch encode --device {device} failed: {done.stderr.strip()}")
                return 1
            outputs[device] = np.load(path)
        low = lowest_cosine(outputs["cpu"], outputs["cuda"])
        ok &= low > AGREEMENT
        print(f"\n`vsearch encode '{photos[0].parent}/*.jpg' --device cuda` against `--device cpu`: "
              f"{len(outputs['cpu'])} vectors, lowest cosine {low:.6f}")
    print("\nall vectors agree" if ok else "\nMISMATCH: a CUDA vector differs from its CPU twin")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
