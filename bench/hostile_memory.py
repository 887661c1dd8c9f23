"""Benchmark: peak memory (and time) of hostile inputs, each case in a fresh process.

Cases: a batch of six 9000x9000 PNGs (just under Pillow's decompression-bomb limit) decoded and embedded
by the CNN; one 50 MB text embedded by all-MiniLM-L6-v2; a 50 MB JSON array whose 2nd element is
malformed. A 'model loaded' case gives each model's own footprint, so the input's share can be read off.

Compare two versions of vsearch by pointing --src at each tree (a checkout or `git archive` of a commit):
  python bench/hostile_memory.py --src /tmp/before --src .
Peak RSS is the child's ru_maxrss (Linux: KiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PEAK = "import resource; print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"

CASES = {
    "text model loaded": """
from vsearch.models import load_text_encoder
load_text_encoder().encode_texts(["warm up"])
""",
    "50 MB text": """
from vsearch.models import load_text_encoder
text = open(DATA + "/big.txt").read()
vector = load_text_encoder().encode_texts([text])
print("norm", float((vector ** 2).sum()))
""",
    "image model loaded": """
from vsearch.models import load_image_encoder
load_image_encoder()
""",
    "six 9000x9000 PNGs": """
import glob
from vsearch.encode import Item, encode_items
from vsearch.models import load_image_encoder
items = [Item(p, p) for p in sorted(glob.glob(DATA + "/big*.png"))]
for ids, vectors in encode_items(items, load_image_encoder(), True, 64, chunk=64 * 16):
    print(len(ids), vectors.shape)
""",
    "50 MB JSON, bad 2nd element": """
from vsearch.errors import InputError
from vsearch.records import Format, read_records
try:
    list(read_records(DATA + "/bad.json", Format.json))
except InputError as exc:
    print(exc)
""",
}


def make_data(folder: Path) -> None:
    """Inputs written once; each PNG in its own process so that the parent stays small."""
    sentence = "The quick brown fox jumps over the lazy dog, again and again. "
    (folder / "big.txt").write_text(sentence * (50_000_000 // len(sentence)))
    with open(folder / "bad.json", "w") as out:
        out.write('[{"id": 1, "text": "fine"},\n{"id": 2, "text": tru},\n')
        out.write('{"id": 3, "text": "more of the same"},\n' * (50_000_000 // 38))
        out.write('{"id": 4}]\n')
    for n in range(6):
        code = ("import numpy as np; from PIL import Image; y, x = np.mgrid[0:9000, 0:9000]; "
                f"a = np.stack([(x * {n + 1}) % 256, (y * 3) % 256, ((x + y) // 7) % 256], -1).astype(np.uint8); "
                f"Image.fromarray(a).save({str(folder / f'big{n}.png')!r}, compress_level=1)")
        subprocess.run([sys.executable, "-c", code], check=True)


def run_case(src: Path, data: Path, name: str) -> tuple[float, float, str]:
    code = f"DATA = {str(data)!r}\n{CASES[name]}\n{PEAK}\n"
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=src)  # cwd: python -c puts it first on sys.path
    seconds = time.perf_counter() - start
    peak = [line for line in done.stdout.splitlines() if line.startswith("PEAK_KIB")]
    if done.returncode != 0 or not peak:
        return float("nan"), seconds, (done.stderr.strip().splitlines() or ["?"])[-1][:80]
    note = next((line for line in done.stdout.splitlines() if not line.startswith("PEAK_KIB")), "")
    return int(peak[0].split()[1]) / 1024, seconds, note[:80]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a vsearch source tree (repeatable)")
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as folder:
        make_data(Path(folder))
        for src in args.src or [ROOT]:
            for name in args.case or CASES:
                mib, seconds, note = run_case(src.resolve(), Path(folder), name)
                print(f"{src!s:>24}  {name:<30} peak {mib:8.0f} MiB  {seconds:6.1f} s  {note}", flush=True)


if __name__ == "__main__":
    main()
