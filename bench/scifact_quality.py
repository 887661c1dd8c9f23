"""Quality check: BEIR SciFact through vsearch (load + KNN query) against the published reference.

Loads the 5,183 abstracts with `vsearch load` (title and text joined by a space, as MTEB embeds them) into a
FLAT (exact) COSINE index on the embedded server, answers the 300 test claims through vsearch's query path,
and prints nDCG@10, MAP@10, Recall@10, Recall@100 and P@1 beside the published all-MiniLM-L6-v2 scores.

Usage: .venv/bin/python bench/scifact_quality.py [SCIFACT_DIR]   (default ../shared/data/scifact)
Runs against its own temporary VSEARCH_HOME, so it leaves no data behind.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = {"nDCG@10": 0.64508, "MAP@10": 0.59593, "Recall@10": 0.78333, "Recall@100": 0.925, "P@1": 0.50333}


def metrics(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    totals = dict.fromkeys(PUBLISHED, 0.0)
    for query, relevant in qrels.items():
        hits = ranked.get(query, [])
        gains = [relevant.get(doc, 0) for doc in hits[:10]]
        ideal = sorted(relevant.values(), reverse=True)[:10]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        totals["nDCG@10"] += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        found, precision_sum = 0, 0.0
        for i, doc in enumerate(hits[:10]):
            if relevant.get(doc, 0) > 0:
                found += 1
                precision_sum += found / (i + 1)
        totals["MAP@10"] += precision_sum / min(len(relevant), 10)
        totals["Recall@10"] += sum(1 for d in hits[:10] if d in relevant) / len(relevant)
        totals["Recall@100"] += sum(1 for d in hits[:100] if d in relevant) / len(relevant)
        totals["P@1"] += 1.0 if hits and hits[0] in relevant else 0.0
    return {name: value / len(qrels) for name, value in totals.items()}


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "scifact"
    home = Path(tempfile.mkdtemp(prefix="vs-bench-"))
    os.environ.update(VSEARCH_HOME=str(home), HF_HUB_OFFLINE="1")
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("VSEARCH_REDIS_URL", None)
    vsearch = [sys.executable, "-m", "vsearch"]
    subprocess.run([*vsearch, "create-index", "scifact", "--algorithm", "flat", "--metric", "cosine",
                    "--text", "title", "--text", "text"], check=True)
    started = time.perf_counter()
    subprocess.run([*vsearch, "load", "scifact", str(folder / "corpus.jsonl"), "--id-field", "_id",
                    "--text-field", "title", "--text-field", "text", "--batch-size", "512"], check=True)
    load_seconds = time.perf_counter() - started

    with open(folder / "qrels" / "test.tsv", encoding="utf-8", newline="") as handle:
        qrels: dict[str, dict[str, int]] = {}
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"].strip(), {})[row["corpus-id"].strip()] = int(row["score"])
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        claims = {q["_id"]: q["text"] for q in map(json.loads, handle) if q["_id"] in qrels}

    sys.path.insert(0, str(ROOT))
    from vsearch import config, store
    from vsearch.query.hybrid import Mode
    from vsearch.query.request import QueryRequest
    from vsearch.query.run import run_query

    settings = config.resolve()
    client = store.connect(settings)
    spec = store.get_spec(client, "scifact")
    started = time.perf_counter()
    ranked = {qid: [hit.id for hit in run_query(client, spec, settings, QueryRequest(text=text, k=100, mode=Mode.vector))]
              for qid, text in claims.items()}
    query_seconds = time.perf_counter() - started
    from vsearch import server

    server.stop(home)
    scores = metrics(ranked, qrels)
    print(f"SciFact test: {len(claims)} claims over 5,183 abstracts; load {load_seconds:.0f} s, "
          f"{len(claims) / query_seconds:.1f} queries/s (embedding included)")
    print(f"{'metric':12} {'published':>9} {'vsearch':>9} {'diff':>8}")
    for name, reference in PUBLISHED.items():
        print(f"{name:12} {reference:9.5f} {scores[name]:9.5f} {scores[name] - reference:+8.5f}")


if __name__ == "__main__":
    main()
