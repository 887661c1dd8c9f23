"""Cron-grade reloads, measured side by side in one run on a throwaway embedded server.

1. 10,000 SciFact-like records (titles + claims from ../shared/data, repeated to 10,000 if needed) with the text model:
   the first load, an unchanged reload, and a reload with 1% of the texts changed. Targets: unchanged < 5% of the
   first load's time, 1% changed < 10%.
2. A generated million-line JSONL with precomputed 8-d vectors (`--vector-column`): the first load, then a reload
   with 1% of the lines changed; peak RSS of each `vsearch load` process (constant memory: it must not grow with
   the input).

Each load is a fresh `vsearch load` process, as cron runs it. Usage:
    .venv/bin/python bench/reload.py [--records 10000] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
VSEARCH = [sys.executable, "-m", "vsearch"]


def run(args: list[str], env: dict[str, str]) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS (MiB) and the --report of one vsearch process."""
    report = Path(env["VSEARCH_HOME"]) / "report.json"
    rss = Path(env["VSEARCH_HOME"]) / "rss"
    # The process records its own peak RSS as it exits (RUSAGE_CHILDREN would keep the largest child's so far).
    wrapper = ("import atexit, resource, sys\n"
               f"atexit.register(lambda: open({str(rss)!r}, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
               f"sys.argv = ['vsearch', *{[*args, '--report', str(report), '--quiet']!r}]\n"
               "from vsearch.cli import main\nmain()\n")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 4):
        raise SystemExit(f"vsearch {' '.join(args)} failed: {done.stderr}")
    return seconds, int(rss.read_text()) // 1024, json.loads(report.read_text())


def texts(count: int) -> list[str]:
    found: list[str] = []
    corpus = SHARED / "scifact" / "corpus.jsonl"
    if corpus.exists():
        with open(corpus, encoding="utf-8") as handle:
            for line in handle:
                found.append(json.loads(line)["title"])
                if len(found) >= count:
                    break
    rng = random.Random(0)
    words = "red blue running leather watch shirt protein cell cancer gene study trial dose risk".split()
    while len(found) < count:
        found.append(" ".join(rng.choice(words) for _ in range(12)))
    return [f"{t} ({i})" for i, t in enumerate(found)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def text_reloads(env: dict[str, str], work: Path, count: int) -> list[tuple[str, float, int, dict]]:
    # As scripts/setup.sh does: the text model's ONNX export, which small reloads use instead of torch.
    subprocess.run([*VSEARCH, "models", "prepare"], env=env, check=True, capture_output=True)
    subprocess.run([*VSEARCH, "create-index", "bench-text", "--algorithm", "flat", "--text", "title"], env=env, check=True,
                   capture_output=True)
    rows = [{"id": f"d{i}", "title": t} for i, t in enumerate(texts(count))]
    path = write(work / "texts.jsonl", rows)
    results = [("first load", *run(["load", "bench-text", str(path), "--text-field", "title"], env))]
    results.append(("unchanged reload", *run(["load", "bench-text", str(path), "--text-field", "title"], env)))
    for row in rows[:: 100]:
        row["title"] += " revised"
    write(path, rows)
    results.append(("1% changed reload", *run(["load", "bench-text", str(path), "--text-field", "title"], env)))
    return results


def vector_reloads(env: dict[str, str], work: Path, lines: int) -> list[tuple[str, float, int, dict]]:
    subprocess.run([*VSEARCH, "create-index", "bench-vec", "--algorithm", "flat", "--dim", "8"], env=env, check=True,
                   capture_output=True)
    path = work / "vectors.jsonl"
    rng = random.Random(1)

    def generate(changed_every: int | None) -> None:
        with open(path, "w") as handle:
            for i in range(lines):
                vector = [round(rng.random(), 4) for _ in range(8)]
                if changed_every and i % changed_every == 0:
                    vector[0] = 2.0
                handle.write(json.dumps({"id": f"v{i}", "vec": vector}) + "\n")

    generate(None)
    results = [("first load", *run(["load", "bench-vec", str(path), "--vector-column", "vec", "--batch-size", "1000"], env))]
    rng.seed(1)
    generate(100)
    results.append(("1% changed reload", *run(["load", "bench-vec", str(path), "--vector-column", "vec",
                                               "--batch-size", "1000"], env)))
    return results


def table(title: str, results: list[tuple[str, float, int, dict]]) -> str:
    first = results[0][1]
    lines = [f"### {title}", "", "| run | seconds | share of first load | peak RSS MiB | embedded | skipped |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, seconds, rss, report in results:
        lines.append(f"| {name} | {seconds:.1f} | {seconds / first:.1%} | {rss} | {report['embedded']} | {report['skipped']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vsb-") as home:
        env = {**os.environ, "VSEARCH_HOME": home, "HF_HUB_OFFLINE": "1", "VSEARCH_CONFIG": f"{home}/none.toml"}
        env.pop("REDIS_URL", None)
        work = Path(home)
        try:
            print(table(f"{args.records:,} texts, all-MiniLM-L6-v2, FLAT", text_reloads(env, work, args.records)), flush=True)
            print()
            print(table(f"{args.lines:,} lines of precomputed 8-d vectors", vector_reloads(env, work, args.lines)))
        finally:
            subprocess.run([*VSEARCH, "server", "stop"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
