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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# The index's options but its algorithm (exact FLAT here): the report's HNSW index takes the same ones.
CREATE_OPTIONS = ("--metric", "cosine", "--text", "title", "--text", "text")


def ensure_loaded(folder: Path) -> float | None:
    """Create and load the index unless VSEARCH_HOME already holds all of it; the load's seconds, if loaded."""
    from vsearch import config, store

    client = store.connect(config.resolve())
    if store.index_exists(client, INDEX):
        # An index kept from before vsearch stemmed TEXT fields ranks words as written: load it afresh.
        if store.count_documents(client, INDEX) == 5183 and store.get_spec(client, INDEX).stemmed_text:
            return None
        store.drop_index(client, INDEX, delete_documents=True)
    vsearch = [sys.executable, "-m", "vsearch"]
    subprocess.run([*vsearch, "create-index", INDEX, "--algorithm", "flat", *CREATE_OPTIONS], check=True)
    started = time.perf_counter()
    subprocess.run([*vsearch, "load", INDEX, str(folder / "corpus.jsonl"), "--id-field", "_id", "--text-field",
                    "title", "--text-field", "text", "--batch-size", "512"], check=True)
    return time.perf_counter() - started


def scores(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    found = metrics(ranked, qrels)
    return {"ndcg@10": found["nDCG@10"], "recall@100": found["Recall@100"]}


def read_claims(folder: Path) -> dict[str, str]:
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        return {q["_id"]: q["text"] for q in map(json.loads, handle)}


def measure(client: Any, spec: Any, settings: Any, folder: Path, train_limit: int | None = None,
            say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """nDCG@10 and recall@100 of every mode on train and test, fusion tuned on train (the first train_limit
    claims, if given); each claim's candidates come from `run_query` (--mode vector, --mode text)."""
    from vsearch.query import hybrid
    from vsearch.query.hybrid import Fusion, FusionParams, Mode
    from vsearch.query.request import QueryRequest
    from vsearch.query.run import run_query
    from vsearch.query.vectors import query_vector as _query_vector

    claims = read_claims(folder)
    splits = {split: qrels_of(folder, split) for split in ("train", "test")}
    if train_limit is not None:
        splits["train"] = dict(list(splits["train"].items())[:train_limit])

    def ask(text: str, mode: Mode, k: int, fusion: FusionParams | None = None) -> list[Any]:
        return run_query(client, spec, settings, QueryRequest(text=text, k=k, mode=mode,
                                                              fusion=fusion or FusionParams(), return_fields=()))

    run_query(client, spec, settings, QueryRequest(text="warm the model up", mode=Mode.vector))
    field = spec.vectors[0]
    lists: dict[str, dict[str, tuple[list, list]]] = {}
    # Linear fusion's candidates at each window, each side completed with its scores of the other's
    # (hybrid.candidates, what run_query's hybrid mode fuses); rrf fuses the plain windows, cut from DEPTH.
    completed: dict[str, dict[tuple[str, int], tuple[list, list]]] = {}
    for split, qrels in splits.items():
        say(f"SciFact: {len(qrels)} {split} claims, vector and text, {DEPTH} candidates each, and linear "
            f"fusion's completed candidates at {len(WINDOWS)} windows")
        lists[split] = {qid: (ask(claims[qid], Mode.vector, DEPTH), ask(claims[qid], Mode.text, DEPTH))
                        for qid in qrels}
        completed[split] = {}
        for qid in qrels:
            vector = _query_vector(client, spec, settings, QueryRequest(text=claims[qid]), field)
            for window in WINDOWS:
                completed[split][qid, window] = hybrid.candidates(
                    client, spec, field, vector, claims[qid], FusionParams(Fusion.linear, window), return_fields=[])

    def fused(split: str, params: FusionParams, k: int = 10) -> dict[str, list[str]]:
        if params.fusion is Fusion.linear:
            return {qid: [h.id for h in hybrid.fuse(*completed[split][qid, params.window], k, params)]
                    for qid in lists[split]}
        return {qid: [h.id for h in hybrid.fuse(v[:params.window], t[:params.window], k, params)]
                for qid, (v, t) in lists[split].items()}

    def side(split: str, which: int) -> dict[str, list[str]]:
        return {qid: [h.id for h in pair[which]] for qid, pair in lists[split].items()}

    def ndcg(ranked: dict[str, list[str]], split: str) -> float:
        return metrics(ranked, splits[split])["nDCG@10"]

    grid = {Fusion.linear: [FusionParams(Fusion.linear, w, a) for w in WINDOWS for a in ALPHAS],
            Fusion.rrf: [FusionParams(Fusion.rrf, w, rrf_k=k) for w in WINDOWS for k in RRF_KS]}
    say(f"SciFact: tuning fusion on train ({sum(map(len, grid.values()))} parameter sets)")
    on_train = {p: ndcg(fused("train", p), "train") for candidates in grid.values() for p in candidates}
    tuned = {f: max(candidates, key=on_train.__getitem__) for f, candidates in grid.items()}

    def both(ranked: Callable[[str], dict[str, list[str]]]) -> dict[str, dict[str, float]]:
        return {split: scores(ranked(split), splits[split]) for split in splits}

    modes: dict[str, dict[str, Any]] = {
        "vector (FLAT, cosine)": both(lambda s: side(s, 0)),
        "text (BM25STD, stems of title+text)": both(lambda s: side(s, 1)),
    }
    test = {qid: claims[qid] for qid in splits["test"]}
    for fusion, params in tuned.items():
        # The tuned parameters once more end to end: run_query's own hybrid mode, k=10, on the test claims.
        direct = {qid: [h.id for h in ask(text, Mode.hybrid, 10, params)] for qid, text in test.items()}
        modes[f"hybrid {fusion.value}"] = {**both(lambda s, p=params: fused(s, p, 100)), "params": _params(params),
                                           "test_ndcg@10_run_query": ndcg(direct, "test")}
    defaults = {}
    for fusion in Fusion:
        params = FusionParams(fusion)
        defaults[f"hybrid {fusion.value}"] = {**both(lambda s, p=params: fused(s, p, 100)), "params": _params(params)}
    sweep = [{"window": window, **{fusion.value: max(v for p, v in on_train.items()
                                                      if p.fusion is fusion and p.window == window)
                                   for fusion in Fusion}} for window in WINDOWS]
    return {"train_queries": len(splits["train"]), "test_queries": len(splits["test"]), "corpus": 5183,
            "grid": {"windows": list(WINDOWS), "alphas": list(ALPHAS), "rrf_ks": list(RRF_KS)},
            "modes": modes, "defaults": defaults, "window_sweep_train": sweep, "cost": cost(ask, test)}


def cost(ask: Callable[..., list[Any]], claims: dict[str, str]) -> dict[str, dict[str, float]]:
    """Milliseconds a query through `run_query` (k=10, default parameters) in each mode, the modes taking turns
    claim by claim so that machine noise hits them alike; every claim's embedding is in the query cache by now."""
    from vsearch.query.hybrid import Fusion, FusionParams, Mode

    modes = {"vector": (Mode.vector, FusionParams()), "text": (Mode.text, FusionParams()),
             "hybrid linear": (Mode.hybrid, FusionParams(Fusion.linear)),
             "hybrid rrf": (Mode.hybrid, FusionParams(Fusion.rrf))}
    times: dict[str, list[float]] = {label: [] for label in modes}
    for text in claims.values():
        for label, (mode, params) in modes.items():
            started = time.perf_counter()
            ask(text, mode, 10, params)
            times[label].append((time.perf_counter() - started) * 1000)
    return {label: {"median_ms": statistics.median(ms), "p99_ms": sorted(ms)[int(0.99 * (len(ms) - 1))]}
            for label, ms in times.items()}


def _params(params: Any) -> dict[str, Any]:
    out = {"fusion": params.fusion.value, "window": params.window}
    return out | ({"alpha": params.alpha} if params.fusion.value == "linear" else {"rrf_k": params.rrf_k})


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

    from vsearch import config, store
    from vsearch.query.hybrid import Fusion, FusionParams, Mode
    from vsearch.query.request import QueryRequest
    from vsearch.query.run import run_query

    settings = config.resolve()
    client = store.connect(settings)
    spec = store.get_spec(client, INDEX)
    result = measure(client, spec, settings, args.data)

    print(f"SciFact: 5,183 abstracts; tuned on {result['train_queries']} train claims, reported on "
          f"{result['test_queries']} test claims" + (f"; loaded in {load_seconds:.0f} s" if load_seconds else ""))
    print(f"{'mode':34} {'train nDCG@10':>13} {'test nDCG@10':>13}")
    for label, mode in result["modes"].items():
        params = mode.get("params")
        if params:
            how = f"alpha={params['alpha']:g}" if "alpha" in params else f"k={params['rrf_k']}"
            label = f"{label} window={params['window']} {how}"
        print(f"{label:34} {mode['train']['ndcg@10']:13.5f} {mode['test']['ndcg@10']:13.5f}"
              + ("   (tuned on train)" if params else ""))
    for label, mode in result["defaults"].items():
        print(f"{label + ' (vsearch defaults)':34} {mode['train']['ndcg@10']:13.5f} {mode['test']['ndcg@10']:13.5f}")

    print("\nwindow sweep on train (best alpha / rrf_k at each window):")
    for row in result["window_sweep_train"]:
        print(f"  window {row['window']:5}: linear {row['linear']:.4f}  rrf {row['rrf']:.4f}")

    # The default parameters, end to end through run_query, timed side by side in one run.
    claims = read_claims(args.data)
    qrels = qrels_of(args.data, "test")
    test = {qid: claims[qid] for qid in qrels}
    print(f"\ncost through run_query, k=10, {len(test)} test claims, query embedding included (this machine):")
    modes = [("vector", Mode.vector, FusionParams()), ("text", Mode.text, FusionParams()),
             ("hybrid linear (default)", Mode.hybrid, FusionParams(Fusion.linear)),
             ("hybrid rrf", Mode.hybrid, FusionParams(Fusion.rrf))]
    for label, mode, params in modes:
        started = time.perf_counter()
        ranked = {qid: [h.id for h in run_query(client, spec, settings, QueryRequest(text=text, mode=mode, fusion=params))]
                  for qid, text in test.items()}
        ms = (time.perf_counter() - started) * 1000 / len(test)
        print(f"  {label:26} {ms:6.2f} ms/query   test nDCG@10 {metrics(ranked, qrels)['nDCG@10']:.5f}")


if __name__ == "__main__":
    main()
