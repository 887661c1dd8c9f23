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
import statistics
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
    parser.add_argument("--rounds", type=int, default=3, help="local and Ray runs alternate; medians are reported")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vsr-"))
    env = {**os.environ, "VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "none.toml"), "HF_HUB_OFFLINE": "1"}
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
        env.pop(variable, None)
    try:
        path = write(home / "texts.jsonl", [{"id": f"d{i}", "title": t} for i, t in enumerate(texts(args.records))])
        batch = ["--batch-size", str(args.batch_size)]
        ray_flags = ["--engine", "ray", "--workers", str(args.workers), "--gpus-per-worker", str(args.gpus_per_worker)]
        seconds: dict[str, list[float]] = {"local": [], "ray local mode": []}
        for r in range(args.rounds):  # alternating, so that machine noise hits both alike
            local_s, local = timed_load(env, f"bench-local-{r}", path, batch)
            ray_s, remote = timed_load(env, f"bench-ray-{r}", path, [*batch, *ray_flags])
            assert local["embedded"] == remote["embedded"] == args.records, (local, remote)
            seconds["local"].append(local_s)
            seconds["ray local mode"].append(ray_s)
        print(f"## Ray overhead ({args.records} records, {platform.node()}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}, batch {args.batch_size}, workers {args.workers}, "
              f"GPUs/worker {args.gpus_per_worker:g}; median of {args.rounds} fresh `vsearch load` processes)\n")
        print("| engine | median s | records/s | all runs (s) |\n| --- | --- | --- | --- |")
        for label, values in seconds.items():
            median = statistics.median(values)
            print(f"| {label} | {median:.1f} | {args.records / median:.0f} | {' '.join(f'{v:.1f}' for v in values)} |")
        ratios = [r / loc for r, loc in zip(seconds["ray local mode"], seconds["local"])]
        print(f"\nray / local: {statistics.median(ratios):.2f}x (median of the per-round ratios "
              f"{', '.join(f'{x:.2f}' for x in ratios)})")
    finally:
        subprocess.run([*VSEARCH, "server", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
