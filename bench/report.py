"""The benchmark report: measures vsearch side by side with what users would pick instead, then writes
docs/benchmarks.md and its plots (docs/img/*.png).

Usage (from the repository root, after `pip install -e .[bench]`):
    .venv/bin/python bench/report.py                  # every part, full size (~60-70 min on 2 cores)
    .venv/bin/python bench/report.py --quick          # every part, small sizes (~10 min)
    .venv/bin/python bench/report.py --part loading   # one part; the report is rebuilt from all results on disk
    .venv/bin/python bench/report.py --part render    # only rebuild the report from bench/results/*.json

Each part writes bench/results/PART.json. Every part runs on its own throwaway embedded server (a temporary
VSEARCH_HOME), stopped at the end; the quality part reuses VSB_QUALITY_HOME=DIR instead when given (a home that
already holds the SciFact index `scifact`, to skip its ~3-5 min load).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_parts import common  # noqa: E402

PARTS = ("loading", "queries", "scale", "encoding", "quality", "longdocs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all", "render"], default="all")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every figure")
    args = parser.parse_args()
    chosen = PARTS if args.part == "all" else (args.part,) if args.part in PARTS else ()
    for part in chosen:
        started = time.perf_counter()
        module = __import__(f"report_parts.{part}", fromlist=["run"])
        path = module.run(args.quick)
        common.say(f"{part}: done in {time.perf_counter() - started:.0f} s -> {path.relative_to(common.ROOT)}")
    from report_parts import render

    common.say(f"wrote {render.write_report().relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
