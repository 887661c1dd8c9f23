"""Part `encoding`: runs bench/encode_throughput.py and bench/image_quality.py as they are, and keeps their figures.

- text: `vsearch encode` vs raw sentence-transformers, whole fresh processes, same texts (--quick: 2,000 texts,
  1 round; full: SciFact titles + claims, 3 rounds);
- images: vsearch's `encode_images` vs a plain one-by-one loop with the same EfficientNet-Lite0, precision@10 by
  article type and images/s (--quick: the 300 photos in sample_data; full: ../shared/data/fashion).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from report_parts.common import ROOT, save, say

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
TEXT_ROW = re.compile(r"^(?P<name>.+?)\s+(?P<seconds>[\d.]+)\s+(?P<per_s>[\d.]+)\s+(?P<ratio>[\d.]+)%\s+(?P<runs>[\d. ]+)$")
IMAGE_ROW = re.compile(r"^(?P<name>.+?)\s+(?P<p10>[01]\.\d{3})\s+(?P<per_s>[\d.]+)$")


def _run(args: list[str]) -> str:
    env_path = str(ROOT)
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(p for p in (env_path, os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def _quick_texts(folder: Path, count: int = 2000) -> Path:
    lines: list[str] = []
    corpus = SCIFACT / "corpus.jsonl"
    if corpus.exists():
        with open(corpus, encoding="utf-8") as handle:
            lines = [" ".join(json.loads(line)["title"].split()) for _, line in zip(range(count), handle)]
    else:
        lines = (ROOT / "sample_data" / "sentences.txt").read_text(encoding="utf-8").split("\n")
        lines = [line for line in lines if line.strip()]
        lines = (lines * (count // max(len(lines), 1) + 1))[:count]
    path = folder / "texts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vsb-enc-") as tmp:
        text_args = ["bench/encode_throughput.py"] + ([str(_quick_texts(Path(tmp))), "--rounds", "1"] if quick else [])
        say(f"encoding: {' '.join(text_args)}")
        text_out = _run(text_args)
    image_args = ["bench/image_quality.py"] + ([str(ROOT / "sample_data")] if quick else [])
    say(f"encoding: {' '.join(image_args)}")
    image_out = _run(image_args)
    text_rows = [m.groupdict() for line in text_out.splitlines() if (m := TEXT_ROW.match(line.strip()))]
    image_rows = [m.groupdict() for line in image_out.splitlines() if (m := IMAGE_ROW.match(line.strip()))]
    text = [{"run": r["name"], "median_s": float(r["seconds"]), "texts_per_s": float(r["per_s"]),
             "vs_raw": float(r["ratio"]) / 100} for r in text_rows]
    images = [{"run": r["name"], "precision@10": float(r["p10"]), "images_per_s": float(r["per_s"])} for r in image_rows]
    if len(images) == 2:
        images[1]["vs_naive"] = images[1]["images_per_s"] / images[0]["images_per_s"]
    return save("encoding", {"quick": quick, "text_command": " ".join(text_args), "image_command": " ".join(image_args),
                             "text_header": text_out.splitlines()[0], "image_header": image_out.splitlines()[0],
                             "text": text, "images": images})
