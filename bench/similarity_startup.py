"""Benchmark: `vsearch similarity` on three strings, torch against the ONNX export, side by side.

Each run is a fresh process doing README's first example. The torch runs use a data directory without an
export, so `similarity` falls back to sentence-transformers; the ONNX runs use one where `vsearch models
prepare` made it. Runs alternate (torch, onnx, torch, ...) so machine noise hits both alike; the medians and
their ratio are printed, and the two runs' scores are checked to agree.

Usage: .venv/bin/python bench/similarity_startup.py [--rounds 5]
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
ARGS = ["similarity", "That is a happy person", "That is a very happy person", "That is a happy dog",
        "Today is a sunny day", "--format", "jsonl"]


def run(home: Path) -> tuple[float, list[float]]:
    env = {**os.environ, "VSEARCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "vsearch", *ARGS], env=env, cwd=ROOT, capture_output=True,
                            text=True, check=True)
    seconds = time.perf_counter() - started
    return seconds, [json.loads(line)["score"] for line in result.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="vs-torch-") as bare, tempfile.TemporaryDirectory(prefix="vs-onnx-") as ready:
        env = {**os.environ, "VSEARCH_HOME": ready, "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "vsearch", "models", "prepare"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        scores: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, home in (("torch", bare), ("onnx", ready)):
                seconds, scores[name] = run(Path(home))
                times[name].append(seconds)
    drift = max(abs(a - b) for a, b in zip(scores["torch"], scores["onnx"]))
    torch_s, onnx_s = statistics.median(times["torch"]), statistics.median(times["onnx"])
    print(f"similarity, 3 candidates, fresh process, median of {rounds} alternating runs")
    for name in ("torch", "onnx"):
        print(f"  {name:5}  {statistics.median(times[name]):6.2f} s   runs: "
              + ", ".join(f"{t:.2f}" for t in times[name]))
    print(f"  onnx is {torch_s / onnx_s:.1f}x faster; scores agree to {drift:.1e}")


if __name__ == "__main__":
    main()
