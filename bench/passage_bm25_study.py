"""Study (issue 15): BM25 over each passage as a third list in hybrid fusion, before building it into vsearch.

Today hybrid mode fuses two lists: the passage KNN (a document by its best passage) and BM25 over the whole
document. On 9,000-word QMSum meetings the whole-document BM25 is the weak side. This script indexes one HASH a
passage beside an existing passage index (the passage's Snowball stems as vsearch.stems makes them, a `parent`
TAG; a side index `NAME.pbm25`, keys `NAME.pbm25:`), takes each query's two lists as `--mode hybrid` does
(`vsearch.query.hybrid.candidates`, window 100, each side completed), ranks documents by their best passage's
BM25 (top 2,000 passages), and scores fusions of the three min-max normalised lists by nDCG@10.

It changes nothing in the index it reads; `--drop` removes the side index and its keys.

Usage: VSEARCH_HOME=DIR .venv/bin/python bench/passage_bm25_study.py NAME {qmsum|scifact} [--split train|test]
       [--grid] [--limit N] [--drop]
       (NAME: a passage index loaded with bench/qmsum.py's or bench/hybrid_quality.py's options)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from hybrid_quality import qrels_of  # noqa: E402
from scifact_quality import metrics  # noqa: E402
from vsearch import store  # noqa: E402
from vsearch.config import resolve  # noqa: E402
from vsearch.query.hybrid import FusionParams, candidates, min_max  # noqa: E402
from vsearch.query.request import QueryRequest  # noqa: E402
from vsearch.query.vectors import embed_texts  # noqa: E402
from vsearch.stems import STEMS_FIELD, stem_query, stemmed_text  # noqa: E402
from vsearch.schema import IndexSpec, VectorField  # noqa: E402
from vsearch.store.documents import read_passages, scan_ids  # noqa: E402
from vsearch.texts import join_texts  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
WEIGHTS = [(.5, .5, 0), (.6, .4, 0), (.5, .25, .25), (.4, .3, .3), (1 / 3, 1 / 3, 1 / 3), (.4, .2, .4), (.5, .2, .3),
           (.6, .2, .2), (.5, 0, .5)]  # (vector, document BM25, best-passage BM25)


def queries_of(dataset: str, split: str, limit: int | None) -> tuple[list[dict], dict[str, dict[str, int]]]:
    folder = DATA / dataset
    qrels = qrels_of(folder, split)
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        queries = [q for q in map(json.loads, handle) if q["_id"] in qrels]
    if limit is not None and limit < len(queries):
        queries = random.Random(0).sample(queries, limit)
    return queries, qrels


def build_side_index(client: store.Client, spec: IndexSpec, field: VectorField, side: str) -> int:
    """One HASH a passage: its stems and its document's id; the side index over them (made after the keys)."""
    pipe, count, ids = client.pipeline(transaction=False), 0, list(scan_ids(client, spec))
    for first in range(0, len(ids), 100):
        batch = ids[first:first + 100]
        for doc, passages in zip(batch, read_passages(client, spec, batch, field)):
            if passages is None:
                continue
            text = join_texts(passages.texts)  # the text the spans point into
            for i, (start, end) in enumerate(passages.spans):
                pipe.hset(f"{side}:{doc}:{i}", mapping={STEMS_FIELD: stemmed_text([text[start:end]]), "parent": doc})
                count += 1
        pipe.execute()
    client.execute_command("FT.CREATE", side, "ON", "HASH", "PREFIX", 1, f"{side}:", "STOPWORDS", 0, "SCHEMA",
                           STEMS_FIELD, "TEXT", "NOSTEM", "parent", "TAG")
    while dict(zip(*[iter(client.execute_command("FT.INFO", side))] * 2))[b"percent_indexed"] != b"1":
        time.sleep(0.5)
    return count


def best_passages(client: store.Client, side: str, text: str) -> list[tuple[str, float]]:
    terms = stem_query(text)
    if terms is None:
        return []
    reply = client.execute_command("FT.SEARCH", side, terms, "WITHSCORES", "SCORER", "BM25STD", "VERBATIM",
                                   "RETURN", 1, "parent", "LIMIT", 0, 2000, "DIALECT", 2)
    best: dict[str, float] = {}
    for score, fields in zip(reply[2::3], reply[3::3]):
        parent = fields[1].decode()
        best[parent] = max(best.get(parent, 0.0), float(score))
    return sorted(best.items(), key=lambda item: -item[1])[:100]


def fused(lists, weights) -> list[str]:
    scores: dict[str, float] = {}
    for weight, ranked in zip(weights, lists):
        for (doc, _), norm in zip(ranked, min_max([s for _, s in ranked])):
            scores[doc] = scores.get(doc, 0.0) + weight * norm
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: -item[1])[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("dataset", choices=["qmsum", "scifact"])
    parser.add_argument("--split", default="test", help="qrels split (SciFact has train and test, QMSum test)")
    parser.add_argument("--grid", action="store_true", help="vector weight .3-.7 by .1 x passage share of the text "
                        "side 0-1 by .25, instead of the fixed list")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    settings = resolve()
    client = store.connect(settings)
    spec = store.get_spec(client, args.name)
    side = f"{args.name}.pbm25"
    if args.drop:
        client.execute_command("FT.DROPINDEX", side, "DD")
        return
    field = next(v for v in spec.vectors if v.passages is not None)
    if side.encode() not in client.execute_command("FT._LIST"):
        print(f"side index: {build_side_index(client, spec, field, side):,} passages", flush=True)
    queries, qrels = queries_of(args.dataset, args.split, args.limit)
    vectors = embed_texts(client, field, settings, QueryRequest(), [q["text"] for q in queries])
    rows = []
    for query, vector in zip(queries, vectors):
        vector_hits, text_hits = candidates(client, spec, field, vector, query["text"], FusionParams(window=100),
                                            return_fields=[])
        rows.append((query["_id"], [(h.id, h.score) for h in vector_hits], [(h.id, h.score) for h in text_hits],
                     best_passages(client, side, query["text"])))
    weights_tried = WEIGHTS if not args.grid else [
        (v / 10, round((1 - v / 10) * (1 - share / 4), 4), round((1 - v / 10) * share / 4, 4))
        for v in range(3, 8) for share in range(5)]
    print(f"{args.dataset}: {len(rows)} {args.split} queries, nDCG@10 by weights (vector, document BM25, passage BM25)")
    for weights in weights_tried:
        ranked = {qid: fused(lists, weights) for qid, *lists in rows}
        m = metrics(ranked, {q: qrels[q] for q in ranked})
        print(f"  {'/'.join(f'{w:.2f}' for w in weights)}  nDCG@10 {m['nDCG@10']:.4f}  R@10 {m['Recall@10']:.3f}",
              flush=True)


if __name__ == "__main__":
    main()
