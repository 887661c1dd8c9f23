"""Peak memory of `vsearch export` and `load --from-export` as the index grows: it must not grow with it.

On a throwaway embedded server: an index of given 384-d FLOAT32 vectors (FLAT, a TAG and a NUMERIC field) is
loaded to each size in turn (10,000 then 100,000 documents by default), and at each size a fresh `vsearch export`
process writes it to a file and a fresh `vsearch load COPY FILE --from-export` restores it into a new index.
Peak RSS is each process's own (its VmHWM as it exits), beside `vsearch list`, the floor of a vsearch process that
talks to Redis. Usage:
    .venv/bin/python bench/export_memory.py [--sizes 10000 100000] [--dim 384]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VSEARCH = [sys.executable, "-m", "vsearch"]


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one vsearch process; fails on a non-zero exit.

    The process reads its own VmHWM as it exits: the peak of its own memory since exec. A child's ru_maxrss (wait4,
    RUSAGE_CHILDREN) also counts the forking parent's pages, and this parent holds the vectors it generated."""
    peak = Path(env["VSEARCH_HOME"]) / "peak"
    wrapper = ("import atexit, sys\n"
               "def peak():\n"
               "    kb = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
               f"    open({str(peak)!r}, 'w').write(kb)\n"
               "atexit.register(peak)\n"
               f"sys.argv = ['vsearch', *{args!r}]\n"
               "from vsearch.cli import main\nmain()\n")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"vsearch {' '.join(args)} failed: {done.stderr}")
    return seconds, int(peak.read_text()) / 1024


def add_documents(home: Path, env: dict[str, str], start: int, stop: int, dim: int) -> None:
    """Documents start..stop-1 with given vectors, through `vsearch load --vectors` (as a user would)."""
    ids = home / f"docs-{start}.ids.jsonl"
    vectors = home / f"docs-{start}.npy"
    rng = np.random.default_rng(start)
    matrix = rng.normal(size=(stop - start, dim)).astype(np.float32)
    np.save(vectors, matrix)
    with ids.open("w") as out:
        for i in range(start, stop):
            out.write(json.dumps({"id": f"doc{i}", "kind": f"k{i % 10}", "n": i}) + "\n")
    run(["load", "bench", str(ids), "--vectors", str(vectors), "--quiet"], env)
    ids.unlink()
    vectors.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vsx-"))
    env = {**os.environ, "VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "none.toml"), "HF_HUB_OFFLINE": "1"}
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
        env.pop(variable, None)
    rows = []
    try:
        run(["create-index", "bench", "--dim", str(args.dim), "--algorithm", "flat", "--tag", "kind",
             "--numeric", "n"], env)
        loaded = 0
        for size in sorted(args.sizes):
            add_documents(home, env, loaded, size, args.dim)
            loaded = size
            _, floor = run(["list"], env)
            export = home / "bench.jsonl"
            export_s, export_mb = run(["export", "bench", "-o", str(export), "--quiet"], env)
            restore_s, restore_mb = run(["load", "copy", str(export), "--from-export", "--quiet"], env)
            rows.append((size, export.stat().st_size / 2**20, export_s, export_mb, restore_s, restore_mb, floor))
            run(["drop-index", "copy", "--delete-documents"], env)
            export.unlink()
    finally:
        subprocess.run([*VSEARCH, "server", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    print(f"{args.dim}-d FLOAT32 given vectors, FLAT; peak RSS of each process")
    print("| documents | export file | export s | export peak RSS | restore s | restore peak RSS | `vsearch list` |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, mib, export_s, export_mb, restore_s, restore_mb, floor in rows:
        print(f"| {size:,} | {mib:,.0f} MiB | {export_s:.1f} | {export_mb:.0f} MiB | {restore_s:.1f} | "
              f"{restore_mb:.0f} MiB | {floor:.0f} MiB |")


if __name__ == "__main__":
    main()
