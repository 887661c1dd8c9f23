"""Quality and cost of vsearch's query modes on BEIR SciFact: vector (KNN), text (BM25), hybrid (rrf, linear).

Loads the 5,183 abstracts once (FLAT COSINE index with `--text title --text text`, so BM25 has the fields) into
VSEARCH_HOME (default: a fresh temporary one; give --home DIR to keep it and reuse it on the next run), then:
1. gets each claim's ranked candidates from vsearch's own query path (`run_query`, --mode vector and --mode text),
2. tunes the fusion (window, alpha, rrf_k) on the 809 train claims by fusing those lists with `hybrid.fuse`,
3. reports nDCG@10 on the 300 test claims, for each mode at the tuned and at the default parameters, and the
   cost of each mode (ms per query through `run_query`, query embedding included) measured in the same run.

Usage: .venv/bin/python bench/hybrid_quality.py [--home DIR] [--data DIR]   (data default ../shared/data/scifact)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scifact_quality import metrics  # noqa: E402

WINDOWS = (10, 20, 50, 100, 200, 500)
ALPHAS = tuple(round(a * 0.1, 1) for a in range(11))
RRF_KS = (1, 2, 5, 10, 20, 40, 60, 100)
DEPTH = max(WINDOWS)
INDEX = "scifact"


def qrels_of(folder: Path, split: str) -> dict[str, dict[str, int]]:
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8", newline="") as handle:
        qrels: dict[str, dict[str, int]] = {}
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"].strip(), {})[row["corpus-id"].strip()] = int(row["score"])
    return qrels


def ensure_loaded(folder: Path) -> float | None:
    """Create and load the index unless VSEARCH_HOME already holds all of it; the load's seconds, if loaded."""
    from vsearch import config, store

    client = store.connect(config.resolve())
    if store.index_exists(client, INDEX) and store.count_documents(client, INDEX) == 5183:
        return None
    vsearch = [sys.executable, "-m", "vsearch"]
    subprocess.run([*vsearch, "create-index", INDEX, "--algorithm", "flat", "--metric", "cosine",
                    "--text", "title", "--text", "text"], check=True)
    started = time.perf_counter()
    subprocess.run([*vsearch, "load", INDEX, str(folder / "corpus.jsonl"), "--id-field", "_id", "--text-field",
                    "title", "--text-field", "text", "--batch-size", "512"], check=True)
    return time.perf_counter() - started


def ndcg(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    return metrics(ranked, qrels)["nDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="VSEARCH_HOME to load into once and reuse")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="vs-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(VSEARCH_HOME=str(home), HF_HUB_OFFLINE="1")
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
        os.environ.pop(variable, None)
    load_seconds = ensure_loaded(args.data)

    from vsearch import config, hybrid, store
    from vsearch.hybrid import Fusion, FusionParams, Mode
    from vsearch.query import QueryRequest, run_query

    settings = config.resolve()
    client = store.connect(settings)
    spec = store.get_spec(client, INDEX)
    with open(args.data / "queries.jsonl", encoding="utf-8") as handle:
        claims = {q["_id"]: q["text"] for q in map(json.loads, handle)}
    splits = {split: qrels_of(args.data, split) for split in ("train", "test")}

    def ask(text: str, mode: Mode, k: int, fusion: FusionParams = FusionParams()) -> list[store.Hit]:
        return run_query(client, spec, settings, QueryRequest(text=text, k=k, mode=mode, fusion=fusion,
                                                              return_fields=()))

    run_query(client, spec, settings, QueryRequest(text="warm the model up", mode=Mode.vector))
    lists: dict[str, dict[str, tuple[list, list]]] = {}
    for split, qrels in splits.items():
        lists[split] = {qid: (ask(claims[qid], Mode.vector, DEPTH), ask(claims[qid], Mode.text, DEPTH))
                        for qid in qrels}

    def fused(split: str, params: FusionParams) -> dict[str, list[str]]:
        return {qid: [h.id for h in hybrid.fuse(v[:params.window], t[:params.window], 10, params)]
                for qid, (v, t) in lists[split].items()}

    def side(split: str, which: int) -> dict[str, list[str]]:
        return {qid: [h.id for h in pair[which]] for qid, pair in lists[split].items()}

    grid = {Fusion.linear: [FusionParams(Fusion.linear, w, a) for w in WINDOWS for a in ALPHAS],
            Fusion.rrf: [FusionParams(Fusion.rrf, w, rrf_k=k) for w in WINDOWS for k in RRF_KS]}
    tuned = {f: max(candidates, key=lambda p: ndcg(fused("train", p), splits["train"])) for f, candidates in grid.items()}

    print(f"SciFact: 5,183 abstracts; tuned on {len(splits['train'])} train claims, reported on "
          f"{len(splits['test'])} test claims" + (f"; loaded in {load_seconds:.0f} s" if load_seconds else ""))
    print(f"{'mode':34} {'train nDCG@10':>13} {'test nDCG@10':>13}")
    for label, which in (("vector (FLAT, cosine)", 0), ("text (BM25STD, title+text)", 1)):
        print(f"{label:34} {ndcg(side('train', which), splits['train']):13.5f} "
              f"{ndcg(side('test', which), splits['test']):13.5f}")
    for fusion, params in tuned.items():
        how = f"alpha={params.alpha:g}" if fusion is Fusion.linear else f"k={params.rrf_k}"
        label = f"hybrid {fusion.value} window={params.window} {how}"
        print(f"{label:34} {ndcg(fused('train', params), splits['train']):13.5f} "
              f"{ndcg(fused('test', params), splits['test']):13.5f}   (tuned on train)")
    for fusion in Fusion:
        params = FusionParams(fusion)
        label = f"hybrid {fusion.value} (vsearch defaults)"
        print(f"{label:34} {ndcg(fused('train', params), splits['train']):13.5f} "
              f"{ndcg(fused('test', params), splits['test']):13.5f}")

    print("\nwindow sweep on train (best alpha / rrf_k at each window):")
    for window in WINDOWS:
        cells = []
        for fusion, candidates in grid.items():
            best = max((p for p in candidates if p.window == window), key=lambda p: ndcg(fused("train", p), splits["train"]))
            cells.append(f"{fusion.value} {ndcg(fused('train', best), splits['train']):.4f}")
        print(f"  window {window:5}: {'  '.join(cells)}")

    # The default parameters, end to end through run_query, timed side by side in one run.
    test = {qid: claims[qid] for qid in splits["test"]}
    print(f"\ncost through run_query, k=10, {len(test)} test claims, query embedding included (this machine):")
    modes = [("vector", Mode.vector, FusionParams()), ("text", Mode.text, FusionParams()),
             ("hybrid linear (default)", Mode.hybrid, FusionParams(Fusion.linear)),
             ("hybrid rrf", Mode.hybrid, FusionParams(Fusion.rrf))]
    for label, mode, params in modes:
        started = time.perf_counter()
        ranked = {qid: [h.id for h in run_query(client, spec, settings, QueryRequest(text=text, mode=mode, fusion=params))]
                  for qid, text in test.items()}
        ms = (time.perf_counter() - started) * 1000 / len(test)
        print(f"  {label:26} {ms:6.2f} ms/query   test nDCG@10 {ndcg(ranked, splits['test']):.5f}")


if __name__ == "__main__":
    main()
