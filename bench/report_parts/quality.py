"""Part `quality`: how good vsearch's answers are, measured through its own query path (`vsearch.query.run_query`).

1. SciFact (BEIR): nDCG@10 and recall@100 of --mode vector (FLAT), text (BM25) and hybrid (linear, rrf), the fusion
   tuned on the train claims and reported on the 300 test claims (`hybrid_quality.measure`, shared with
   bench/hybrid_quality.py);
2. HNSW recall@10 against FLAT on the same SciFact vectors (each document's passages): an HNSW index made with
   vsearch's default create-index parameters, filled from the FLAT index's `vsearch export` with `vsearch load
   --from-export` (the very same vectors, no model), each test claim's top 10 compared, at the default query
   parameters and over a sweep of --ef-runtime;
3. fashion images: precision@10 by articleType of `--like ID` (itself excluded) for every photo, plain and with a
   `gender=` pre-filter.

Data: ../shared/data/scifact and ../shared/data/fashion beside the checkout (VSB_SCIFACT, VSB_FASHION override).
VSB_QUALITY_HOME=DIR reuses a VSEARCH_HOME that already holds the `scifact` FLAT index (else a throwaway one is
loaded, ~3-5 min on 2 cores); either way its server is stopped at the end.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from report_parts.common import ROOT, ft_info, save, say

sys.path.insert(0, str(ROOT / "bench"))

import hybrid_quality  # noqa: E402

SCIFACT = Path(os.environ.get("VSB_SCIFACT", ROOT.parent / "shared" / "data" / "scifact"))
FASHION = Path(os.environ.get("VSB_FASHION", ROOT.parent / "shared" / "data" / "fashion"))
HNSW_INDEX = "scifact_hnsw"
FASHION_INDEX = "fashion"
EF_SWEEP = (10, 20, 50, 100, 200)
TARGETS = {"vector": {"reference": 0.64508, "tolerance": 0.005}, "text": 0.66, "hybrid": 0.73,
           "hnsw_recall@10": 0.99, "fashion_p@10": 0.70}
REFERENCES = {  # published SciFact nDCG@10, for the table beside ours
    "all-MiniLM-L6-v2, exact KNN (MTEB)": (0.64508, 0.64508),
    "BM25 (BEIR paper) to BM25 multifield (Anserini)": (0.665, 0.689),
    "RRF, BM25 + MiniLM": (0.707, 0.714),
    "convex combination / DBSF, BM25 + dense": (0.732, 0.738),
}


@contextmanager
def _vsearch_home() -> Iterator[tuple[Path, bool]]:
    """The VSEARCH_HOME this part runs in (given or throwaway), as this process's environment; server stopped after."""
    from vsearch import server

    given = os.environ.get("VSB_QUALITY_HOME")
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="vsb-quality-") as tmp:
        home = Path(given) if given else Path(tmp)
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        os.environ.update(VSEARCH_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=path)
        for variable in ("REDIS_URL", "VSEARCH_REDIS_URL"):
            os.environ.pop(variable, None)
        try:
            server.ensure_running(home)
            yield home, bool(given)
        finally:
            server.stop(home, say=lambda _: None)
            os.environ.clear()
            os.environ.update(saved)


def _vsearch(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "vsearch", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vsearch {' '.join(args[:3])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")


def _drop(client: Any, name: str) -> None:
    from vsearch import store

    if store.index_exists(client, name):
        store.drop_index(client, name, delete_documents=True)


def _vector_attrs(client: Any, name: str) -> dict[str, Any]:
    """The vector field's attributes as FT.INFO reports them (algorithm, M, EF_CONSTRUCTION, EF_RUNTIME...)."""
    def text(value: Any) -> Any:
        return value.decode() if isinstance(value, bytes) else value

    for attribute in ft_info(client, name)["attributes"]:
        flat = [text(v) for v in attribute]
        pairs = dict(zip(flat[::2], flat[1::2]))
        if pairs.get("type") == "VECTOR":
            return {k: v for k, v in pairs.items() if k not in ("identifier", "attribute", "type")}
    return {}


def hnsw_recall(client: Any, settings: Any, tmp: Path) -> dict[str, Any]:
    from vsearch import store
    from vsearch.query.hybrid import Mode
    from vsearch.query.request import QueryRequest
    from vsearch.query.run import run_query

    flat = store.get_spec(client, hybrid_quality.INDEX)
    field = flat.vectors[0]
    path = tmp / "scifact-export.jsonl"
    _vsearch("export", flat.name, "-o", str(path), "--quiet")
    _drop(client, HNSW_INDEX)
    ids = store.count_documents(client, flat.name)
    say(f"quality: HNSW index at vsearch's defaults from the FLAT index's export ({ids:,} documents)")
    # the FLAT index's own options but the algorithm: the export restores into it as it is (vsearch.transfer)
    _vsearch("create-index", HNSW_INDEX, *hybrid_quality.CREATE_OPTIONS)
    started = time.perf_counter()
    _vsearch("load", HNSW_INDEX, str(path), "--from-export", "--quiet")
    load_s = time.perf_counter() - started
    hnsw = store.get_spec(client, HNSW_INDEX)
    if hnsw.vectors[0].model != field.model or store.count_documents(client, HNSW_INDEX) != ids:
        raise SystemExit(f"quality: {HNSW_INDEX} does not mirror {flat.name} (model or document count)")
    claims = hybrid_quality.read_claims(SCIFACT)
    test = [claims[qid] for qid in hybrid_quality.qrels_of(SCIFACT, "test")]

    def top10(spec: Any, text: str, ef: int | None) -> tuple[list[str], float]:
        started = time.perf_counter()
        hits = run_query(client, spec, settings, QueryRequest(text=text, k=10, mode=Mode.vector, ef_runtime=ef,
                                                              return_fields=()))
        return [h.id for h in hits], (time.perf_counter() - started) * 1000

    for text in test:  # every claim's embedding into the query cache, so timings below are the searches
        top10(flat, text, None)
    truth = [top10(flat, text, None) for text in test]

    def point(ef: int | None) -> dict[str, Any]:
        answers = [top10(hnsw, text, ef) for text in test]
        recall = statistics.fmean(len(set(a) & set(t)) / len(t) for (a, _), (t, _) in zip(answers, truth))
        return {"ef_runtime": ef, "recall@10": recall, "median_ms": statistics.median(ms for _, ms in answers)}

    defaults = point(None)
    sweep = [point(ef) for ef in EF_SWEEP]
    attrs = _vector_attrs(client, HNSW_INDEX)
    _drop(client, HNSW_INDEX)
    return {"queries": len(test), "documents": ids, "index_attrs": attrs, "load_s": load_s,
            "defaults": defaults, "flat_median_ms": statistics.median(ms for _, ms in truth), "sweep": sweep,
            "command": f"vsearch export {flat.name} -o scifact.jsonl; vsearch create-index {HNSW_INDEX} "
                       f"{' '.join(hybrid_quality.CREATE_OPTIONS)}; vsearch load {HNSW_INDEX} scifact.jsonl "
                       "--from-export"}


def fashion_precision(client: Any, settings: Any, tmp: Path, quick: bool) -> dict[str, Any]:
    from vsearch import store
    from vsearch.query.request import QueryRequest
    from vsearch.query.run import run_query

    with open(FASHION / "labels.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    source = FASHION / "labels.csv"
    if quick:  # the catalogue's rows come shuffled, so its first 200 still mix the 20 types
        rows = rows[:200]
        source = tmp / "labels-200.csv"
        with open(source, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            # relative image paths are read from the CSV's own folder, so this copy names them absolutely
            writer.writerows({**row, "filename": str(FASHION / row["filename"])} for row in rows)
    _drop(client, FASHION_INDEX)
    say(f"quality: fashion, loading {len(rows):,} photos (default image model)")
    _vsearch("create-index", FASHION_INDEX, "--image", "--no-text-vector", "--tag", "gender", "--tag", "articleType",
             "--algorithm", "flat")
    started = time.perf_counter()
    _vsearch("load", FASHION_INDEX, str(source), "--image-field", "filename", "--image-root", str(FASHION), "--quiet")
    load_s = time.perf_counter() - started
    spec = store.get_spec(client, FASHION_INDEX)
    label = {row["id"]: row["articleType"] for row in rows}
    out: dict[str, Any] = {"images": len(rows), "types": len(set(label.values())), "load_s": load_s,
                           "model": spec.vectors[0].model, "index": "FLAT (exact), so this is the model's quality"}
    for name, where in (("plain", lambda row: ()), ("gender pre-filter", lambda row: (f"gender={row['gender']}",))):
        precisions, short = [], 0
        for row in rows:
            hits = run_query(client, spec, settings, QueryRequest(like=row["id"], k=10, where=where(row),
                                                                  return_fields=()))
            if any(h.id == row["id"] for h in hits):
                raise SystemExit(f"quality: --like {row['id']} returned the photo itself")
            short += len(hits) < 10
            precisions.append(sum(label[h.id] == row["articleType"] for h in hits) / 10)
        out[name] = {"precision@10": statistics.fmean(precisions), "queries_with_under_10_hits": short}
    _drop(client, FASHION_INDEX)
    return out


def run(quick: bool) -> Path:
    from vsearch import config, store

    train_limit = 200 if quick else None
    timings: dict[str, float] = {}
    with _vsearch_home() as (home, reused), tempfile.TemporaryDirectory(prefix="vsb-quality-files-") as files:
        started = time.perf_counter()
        load_s = hybrid_quality.ensure_loaded(SCIFACT)
        timings["scifact_load_s"] = time.perf_counter() - started
        settings = config.resolve()
        client = store.connect(settings)
        spec = store.get_spec(client, hybrid_quality.INDEX)
        started = time.perf_counter()
        scifact = hybrid_quality.measure(client, spec, settings, SCIFACT, train_limit, say=say)
        timings["scifact_s"] = time.perf_counter() - started
        say("quality: HNSW recall against FLAT")
        started = time.perf_counter()
        hnsw = hnsw_recall(client, settings, Path(files))
        timings["hnsw_s"] = time.perf_counter() - started
        started = time.perf_counter()
        fashion = fashion_precision(client, settings, Path(files), quick)
        timings["fashion_s"] = time.perf_counter() - started
    notes = (["--quick: fusion tuned on the first 200 train claims only; fashion on the first 200 photos (about 10 of "
              "a type, so precision@10 cannot reach the full catalogue's)"] if quick else [])
    return save("quality", {
        "quick": quick, "command": ".venv/bin/python bench/report.py --part quality" + (" --quick" if quick else ""),
        "home_reused": reused, "scifact_loaded_s": load_s, "seconds": timings, "targets": TARGETS,
        "references": {name: list(span) for name, span in REFERENCES.items()}, "scifact": scifact, "hnsw": hnsw,
        "fashion": fashion, "notes": notes})
