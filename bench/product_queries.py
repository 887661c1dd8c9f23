"""Which query mode answers short product queries best: vector, text and hybrid, side by side on one index.

The labelled fashion catalogue (1,000 products; sample_data/products.csv with its 300 when ../shared is absent)
goes into a FLAT index with `--text productDisplayName` (the names embedded by the default text model), on a
throwaway embedded server. The queries are what a shopper types, made from the labels: "{baseColour}
{articleType}" ("Navy Blue Shirts") and "{gender} {articleType}" ("Women Heels"), for every pair that at least 5
products share. A hit is relevant when it has both labels of its query; precision@10 counts missing hits as misses.
Every query runs in each mode through `vsearch.query.run_query` with the default parameters.

This is the measurement behind hybrid as the default mode for text queries on indexes with TEXT fields.

Usage: .venv/bin/python bench/product_queries.py [CATALOGUE_CSV]   (default ../shared/data/fashion/labels.csv)
"""

from __future__ import annotations

import collections
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERY_SETS = {"colour + type": ("baseColour", "articleType"), "gender + type": ("gender", "articleType")}
MIN_SHARED = 5


def main() -> None:
    default = ROOT.parent / "shared" / "data" / "fashion" / "labels.csv"
    catalogue = Path(sys.argv[1]) if len(sys.argv) > 1 else (default if default.exists()
                                                              else ROOT / "sample_data" / "products.csv")
    with open(catalogue, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with tempfile.TemporaryDirectory(prefix="vsb-products-") as home:
        os.environ.update(VSEARCH_HOME=home, HF_HUB_OFFLINE="1")
        for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
            os.environ.pop(variable, None)
        from vsearch import config, server, store
        from vsearch.query.hybrid import Mode
        from vsearch.query.request import QueryRequest
        from vsearch.query.run import run_query

        vsearch = [sys.executable, "-m", "vsearch"]
        try:
            subprocess.run([*vsearch, "create-index", "products", "--algorithm", "flat",
                            "--text", "productDisplayName"], check=True)
            subprocess.run([*vsearch, "load", "products", str(catalogue), "--text-field", "productDisplayName",
                            "--quiet"], check=True)
            settings = config.resolve()
            client = store.connect(settings)
            spec = store.get_spec(client, "products")
            labels = {row["id"]: row for row in rows}
            print(f"{len(rows):,} products from {catalogue}; precision@10 of each mode (vsearch defaults)")
            for name, (first, second) in QUERY_SETS.items():
                shared = collections.Counter((row[first], row[second]) for row in rows)
                queries = [pair for pair, count in shared.items() if count >= MIN_SHARED]
                scores = {}
                for mode in Mode:
                    precisions = []
                    for pair in queries:
                        hits = run_query(client, spec, settings, QueryRequest(text=" ".join(pair), k=10, mode=mode,
                                                                              return_fields=()))
                        precisions.append(sum((labels[h.id][first], labels[h.id][second]) == pair
                                              for h in hits) / 10)
                    scores[mode.value] = statistics.fmean(precisions)
                print(f"  {name:14} {len(queries):3} queries: " + ", ".join(f"{mode} {p:.3f}"
                                                                         for mode, p in scores.items()))
        finally:
            server.stop(Path(home))


if __name__ == "__main__":
    main()
