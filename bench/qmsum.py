"""QMSum long-document retrieval through vsearch's CLI: does a query find its meeting, and where in it?

232 meeting transcripts (~9,000 words each, far past all-MiniLM-L6-v2's 256-token window) and 1,534 queries, each
a summary of one part of one meeting (../shared/data/README.md). Everything runs through the CLI in a private
VSEARCH_HOME: `create-index`, `load` (timed), `info` (memory per document), `query --batch ... -f jsonl` (timed).

Modes (--modes, comma-separated):
  text             BM25 over the stems of the whole meeting (--mode text)
  vector           KNN on each meeting's one vector, which sees only its first 256 tokens (today's behaviour)
  hybrid           BM25 and that vector, fused (--mode hybrid, vsearch's defaults)
  vector-passages  KNN over passage vectors, a meeting ranked by its best passage (needs `create-index --passages`)
  hybrid-passages  BM25 and the passage KNN, fused (the same index, --mode hybrid)
For the passage modes, query output's `snippet_start` and `snippet_end` are the best passage's [start, end) in the
meeting's text; it also reports the share of queries whose gold meeting's best passage (else its snippet) overlaps the gold answer
span (spans.jsonl `char_spans`).

Metrics (one relevant meeting a query): nDCG@10, R@10 (the meeting in the top 10), MRR (over the top 100), overall
and by domain (academic, committee, product), plus load time, memory per document and query latency (batch: wall
time / queries, process start and model load included; single: median of fresh `vsearch query` processes).

Usage: .venv/bin/python bench/qmsum.py [--modes text,vector] [--limit N] [--algorithm flat|hnsw] [--home DIR]
       [--data DIR] [--out FILE]     (default data ../shared/data/qmsum, results bench/results/qmsum.json)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from hybrid_quality import qrels_of  # noqa: E402
from scifact_quality import metrics  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "qmsum"
DEPTH = 100
MODES = {  # mode: (index kind, --mode)
    "text": ("plain", "text"),
    "vector": ("plain", "vector"),
    "hybrid": ("plain", "hybrid"),
    "vector-passages": ("passages", "vector"),
    "hybrid-passages": ("passages", "hybrid"),
}
INDEXES = {"plain": "qmsum", "passages": "qmsum_passages"}
SINGLE_RUNS = 5


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_data(folder: Path, limit: int | None) -> dict[str, Any]:
    corpus = read_jsonl(folder / "corpus.jsonl")
    domains = {row["_id"]: row["domain"] for row in read_jsonl(folder / "docs_meta.jsonl")}
    qrels = qrels_of(folder, "test")
    queries = [q for q in read_jsonl(folder / "queries.jsonl") if q["_id"] in qrels]
    if limit is not None and limit < len(queries):
        queries = sorted(random.Random(0).sample(queries, limit), key=lambda q: q["_id"])  # spread over meetings
    spans = {row["query-id"]: row for row in read_jsonl(folder / "spans.jsonl")}
    return {"corpus": corpus, "domains": domains, "queries": queries,
            "qrels": {q["_id"]: qrels[q["_id"]] for q in queries}, "spans": spans}


class Cli:
    """`vsearch` processes against one private VSEARCH_HOME."""

    def __init__(self, home: Path) -> None:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "VSEARCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
        for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
            self.env.pop(variable, None)

    def run(self, *args: str, check: bool = True, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "vsearch", *args], env=self.env, stdout=stdout,
                              stderr=subprocess.PIPE, text=True)
        if check and done.returncode != 0:
            raise SystemExit(f"vsearch {' '.join(args[:3])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return done

    def timed(self, *args: str, **kwargs: Any) -> tuple[float, subprocess.CompletedProcess]:
        started = time.perf_counter()
        done = self.run(*args, **kwargs)
        return time.perf_counter() - started, done


def build_index(cli: Cli, kind: str, algorithm: str, corpus_file: Path) -> dict[str, Any]:
    """Create and load one index; its load time and memory, or why it cannot be made yet."""
    name = INDEXES[kind]
    # "plain" is the behaviour before passages: one vector a meeting, in a hash (create-index's default is now passages).
    options = ["--passages"] if kind == "passages" else ["--no-passages", "--storage", "hash"]
    if cli.run("info", name, check=False).returncode == 0:
        # A kept --home: the index is loaded already (its load time is in the run that made it).
        info = json.loads(cli.run("info", name).stdout)
        return {"available": True, "load_seconds": None, "load_output": "reused from --home", "info": info}
    made = cli.run("create-index", name, "--algorithm", algorithm, "--metric", "cosine", "--text", "text",
                   "--tag", "domain", *options, check=False)
    if made.returncode != 0:
        reason = made.stderr.strip().splitlines()[-1] if made.stderr.strip() else f"exit {made.returncode}"
        return {"available": False, "reason": reason}
    seconds, loaded = cli.timed("load", name, str(corpus_file), "--id-field", "_id", "--text-field", "text",
                                "--batch-size", "64")
    info = json.loads(cli.run("info", name).stdout)
    return {"available": True, "load_seconds": round(seconds, 1), "load_output": loaded.stderr.strip()[-300:],
            "info": info}


def memory_of(info: dict[str, Any]) -> dict[str, Any]:
    """The memory figures of `vsearch info` (where it keeps them), whatever their nesting."""
    found: dict[str, Any] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("bytes_per_document", "document_bytes", "vector_index_mb", "other_index_mb", "documents"):
                    found.setdefault(key, inner)
                walk(inner)

    walk(info)
    return found


def run_mode(cli: Cli, mode: str, queries_file: Path, count: int, depth: int = DEPTH) -> dict[str, Any]:
    kind, flag = MODES[mode]
    seconds, done = cli.timed("query", INDEXES[kind], "--batch", str(queries_file), "--mode", flag, "-k", str(depth),
                              "-f", "jsonl", "--return", "domain")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    ranked: dict[str, list[str]] = defaultdict(list)
    scored: dict[str, list[tuple[str, float]]] = defaultdict(list)
    snippets: dict[tuple[str, str], tuple[int, int]] = {}
    for row in sorted(rows, key=lambda r: (r["query_id"], r["rank"])):
        ranked[row["query_id"]].append(row["id"])
        scored[row["query_id"]].append((row["id"], float(row["score"])))
        for start, end in (("passage_start", "passage_end"), ("snippet_start", "snippet_end")):
            if start in row and end in row:
                snippets[row["query_id"], row["id"]] = (int(row[start]), int(row[end]))
                break
    return {"ranked": dict(ranked), "scored": dict(scored), "snippets": snippets, "batch_seconds": seconds,
            "ms_per_query": 1000 * seconds / max(count, 1)}


def single_query_ms(cli: Cli, mode: str, texts: list[str]) -> float:
    """Median wall ms of a fresh `vsearch query` process (start-up, query model, Redis, output)."""
    kind, flag = MODES[mode]
    times = [cli.timed("query", INDEXES[kind], text, "--mode", flag, "-k", "10", "-f", "jsonl", "--return",
                       "domain")[0] for text in texts]
    return 1000 * statistics.median(times)


def scores(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    found = metrics(ranked, qrels)
    mrr = 0.0
    for query, relevant in qrels.items():
        rank = next((i for i, doc in enumerate(ranked.get(query, [])[:DEPTH], start=1) if doc in relevant), None)
        mrr += 1 / rank if rank else 0.0
    return {"nDCG@10": found["nDCG@10"], "R@10": found["Recall@10"], "R@100": found["Recall@100"],
            "MRR": mrr / len(qrels)}


def span_hits(snippets: dict[tuple[str, str], tuple[int, int]], ranked: dict[str, list[str]],
              qrels: dict[str, dict[str, int]], spans: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Of all queries, and of those whose meeting is in the top 10: the share whose best passage of that meeting
    overlaps a gold answer span."""
    hit = found = 0
    for query, relevant in qrels.items():
        (gold,) = relevant
        if gold not in ranked.get(query, [])[:10]:
            continue
        found += 1
        start, end = snippets.get((query, gold), (0, 0))
        if any(start < span_end and span_start < end for span_start, span_end in spans[query]["char_spans"]):
            hit += 1
    return {"of_all": hit / max(len(qrels), 1), "of_found_in_top10": hit / max(found, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="text,vector", help=f"comma-separated, of: {', '.join(MODES)}")
    parser.add_argument("--limit", type=int, help="a seeded sample of this many queries (default: all 1,534)")
    parser.add_argument("--algorithm", choices=("flat", "hnsw"), default="flat")
    parser.add_argument("--home", type=Path, help="VSEARCH_HOME to use and keep (default: a temporary one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qmsum.json")
    parser.add_argument("--save-runs", action="store_true", help="keep each mode's ranked (id, score) lists in --out")
    parser.add_argument("--depth", type=int, default=DEPTH, help="results asked for a query (metrics use the top 100)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown mode(s) {', '.join(unknown)}: pick from {', '.join(MODES)}")

    data = read_data(args.data, args.limit)
    with tempfile.TemporaryDirectory(prefix="vsb-qmsum-") as tmp:
        home = args.home or Path(tmp) / "home"
        home.mkdir(parents=True, exist_ok=True)
        cli = Cli(home)
        corpus_file, queries_file = Path(tmp) / "corpus.jsonl", Path(tmp) / "queries.jsonl"
        with open(corpus_file, "w", encoding="utf-8") as handle:
            for doc in data["corpus"]:
                handle.write(json.dumps({"_id": doc["_id"], "text": doc["text"],
                                         "domain": data["domains"].get(doc["_id"], "")}, ensure_ascii=False) + "\n")
        with open(queries_file, "w", encoding="utf-8") as handle:
            for query in data["queries"]:
                handle.write(json.dumps({"id": query["_id"], "text": query["text"]}, ensure_ascii=False) + "\n")
        try:
            results = measure(cli, data, modes, args.algorithm, corpus_file, queries_file, args.save_runs, args.depth)
        finally:
            cli.run("server", "stop", check=False)
    results.update(queries=len(data["queries"]), documents=len(data["corpus"]), algorithm=args.algorithm,
                   limit=args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report(results)
    print(f"(written to {args.out})", file=sys.stderr)


def measure(cli: Cli, data: dict[str, Any], modes: list[str], algorithm: str, corpus_file: Path,
            queries_file: Path, save_runs: bool = False, depth: int = DEPTH) -> dict[str, Any]:
    say = lambda message: print(f"[qmsum] {message}", file=sys.stderr, flush=True)  # noqa: E731
    say("preparing the query model (once, not part of any timing)")
    cli.run("models", "prepare")
    indexes: dict[str, Any] = {}
    for kind in dict.fromkeys(MODES[m][0] for m in modes):
        say(f"index '{INDEXES[kind]}' ({kind}): create and load {len(data['corpus'])} meetings")
        built = build_index(cli, kind, algorithm, corpus_file)
        if built["available"]:
            built["memory"] = memory_of(built.pop("info"))
            say(f"  loaded in {built['load_seconds']} s; memory {built['memory']}")
        else:
            say(f"  not available: {built['reason']}")
        indexes[kind] = built
    by_domain: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for query, relevant in data["qrels"].items():
        (gold,) = relevant
        by_domain[data["domains"].get(gold, "?")][query] = relevant
    sample = [q["text"] for q in data["queries"][:SINGLE_RUNS]]
    out: dict[str, Any] = {"indexes": indexes, "modes": {}}
    for mode in modes:
        kind = MODES[mode][0]
        if not indexes[kind]["available"]:
            out["modes"][mode] = {"available": False, "reason": indexes[kind]["reason"]}
            continue
        say(f"mode {mode}: {len(data['queries'])} queries, top {depth}")
        found = run_mode(cli, mode, queries_file, len(data["queries"]), depth)
        result = {"available": True, **scores(found["ranked"], data["qrels"]),
                  "by_domain": {d: scores(found["ranked"], q) for d, q in sorted(by_domain.items())},
                  "batch_ms_per_query": round(found["ms_per_query"], 1),
                  "single_query_ms": round(single_query_ms(cli, mode, sample), 0)}
        if kind == "passages":
            result["best_passage_overlaps_gold_span"] = (
                span_hits(found["snippets"], found["ranked"], data["qrels"], data["spans"])
                if found["snippets"] else "no snippet_start/snippet_end in the query output")
        if save_runs:
            result["run"] = found["scored"]
        out["modes"][mode] = result
    return out


def report(results: dict[str, Any]) -> None:
    print(f"QMSum: {results['queries']} queries over {results['documents']} meetings, {results['algorithm'].upper()} "
          f"index{' (a seeded sample: --limit)' if results['limit'] else ''}")
    for kind, built in results["indexes"].items():
        if built["available"]:
            memory = built["memory"]
            per_doc = memory.get("bytes_per_document")
            size = f", {per_doc / 1024:.1f} KiB per document" if per_doc else ""
            print(f"  index {kind}: load {built['load_seconds']} s{size}")
    print(f"{'mode':17} {'nDCG@10':>8} {'R@10':>6} {'MRR':>6} {'R@100':>6} {'batch ms/q':>10} {'1 query ms':>10}  "
          "best passage on gold span")
    for mode, result in results["modes"].items():
        if not result["available"]:
            print(f"{mode:17} not available: {result['reason']}")
            continue
        overlap = result.get("best_passage_overlaps_gold_span", "")
        if isinstance(overlap, dict):
            overlap = f"{overlap['of_all']:.3f} of all, {overlap['of_found_in_top10']:.3f} of found"
        print(f"{mode:17} {result['nDCG@10']:8.4f} {result['R@10']:6.3f} {result['MRR']:6.3f} {result['R@100']:6.3f} "
              f"{result['batch_ms_per_query']:10.1f} {result['single_query_ms']:10.0f}  {overlap}")
    print("by domain, nDCG@10:")
    for mode, result in results["modes"].items():
        if result["available"]:
            print(f"  {mode:15} " + "  ".join(f"{d} {s['nDCG@10']:.4f}" for d, s in result["by_domain"].items()))


if __name__ == "__main__":
    main()
