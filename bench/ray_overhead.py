"""The overhead of `--engine ray` on one machine: the same 10,000-record text load, once with the local engine and
once through Ray local mode, each as a fresh `vsearch load` process (as cron runs it) into its own index on a
throwaway embedded server. With a GPU and --gpus-per-worker 1, the Ray run uses one GPU worker. Usage:
    .venv/bin/python bench/ray_overhead.py [--records 10000] [--workers 1] [--gpus-per-worker 0] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reload import texts, write  # the same SciFact-like texts as the reload benchmark

VSEARCH = [sys.executable, "-m", "vsearch"]


def timed_load(env: dict[str, str], index: str, path: Path, extra: list[str]) -> tuple[float, dict]:
    subprocess.run([*VSEARCH, "create-index", index, "--algorithm", "flat"], env=env, check=True, capture_output=True)
    report = Path(env["VSEARCH_HOME"]) / f"{index}.json"
    started = time.perf_counter()
    done = subprocess.run([*VSEARCH, "load", index, str(path), "--text-field", "title", "--report", str(report),
                           "--quiet", *extra], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stdout:
        raise SystemExit(f"load {index} failed ({done.returncode}): {done.stderr} stdout: {done.stdout[:200]}")
    return seconds, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vsr-"))
    env = {**os.environ, "VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "none.toml"), "HF_HUB_OFFLINE": "1"}
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
        env.pop(variable, None)
    try:
        path = write(home / "texts.jsonl", [{"id": f"d{i}", "title": t} for i, t in enumerate(texts(args.records))])
        batch = ["--batch-size", str(args.batch_size)]
        local_s, local = timed_load(env, "bench-local", path, batch)
        ray_flags = ["--engine", "ray", "--workers", str(args.workers), "--gpus-per-worker", str(args.gpus_per_worker)]
        ray_s, remote = timed_load(env, "bench-ray", path, [*batch, *ray_flags])
        assert local["embedded"] == remote["embedded"] == args.records, (local, remote)
        print(f"## Ray overhead ({args.records} records, {platform.node()}, {os.cpu_count()} CPUs, "
              f"batch {args.batch_size}, workers {args.workers}, GPUs/worker {args.gpus_per_worker:g})\n")
        print("| engine | seconds | records/s |\n| --- | --- | --- |")
        print(f"| local | {local_s:.1f} | {args.records / local_s:.0f} |")
        print(f"| ray local mode | {ray_s:.1f} | {args.records / ray_s:.0f} |")
        print(f"\nray / local: {ray_s / local_s:.2f}x")
    finally:
        subprocess.run([*VSEARCH, "server", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
