"""Part `scale`: what a corpus costs as it grows (10k, 100k, 1M synthetic 384-d unit vectors; --quick stops at 100k).

For FLAT FLOAT32 and FLAT FLOAT16: memory per document from FT.INFO (the vector index alone) and from INFO memory
(everything: hashes, keys, index), the load rate, and recall@10 against exact numpy (FLOAT16's cost; FLOAT32 FLAT is
exact up to float rounding). For HNSW (M=16, EF_CONSTRUCTION=200): the build rate, which bounds any loader, since
this RediSearch build inserts into HNSW on the server's main thread. Each size and type gets an empty server state
(the previous documents are dropped first).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from report_parts.common import (Bench, create_raw_index, embedded_server, ft_info, hset_vectors, save, say, unit_vectors,
                                 used_memory)

HNSW = {"M": 16, "EF_CONSTRUCTION": 200}
QUERIES, K = 100, 10


def _recall(bench: Bench, name: str, vectors: np.ndarray, asked: np.ndarray, dtype: type) -> float:
    import vsearch.store as store

    client = bench.client()
    spec = store.get_spec(client, name)
    hits = 0
    for q in asked:
        scores = vectors @ q
        truth = set(str(i) for i in np.argpartition(-scores, K)[:K])
        found = {h.id for h in store.search(client, spec, spec.vectors[0], q.astype(dtype), K, return_fields=[])}
        hits += len(truth & found)
    return hits / (K * len(asked))


def measure(bench: Bench, count: int, algorithm: str, datatype: str, vectors: np.ndarray,
            asked: np.ndarray | None) -> dict[str, Any]:
    client = bench.client()
    client.flushall()
    before = used_memory(client)
    name = f"s{algorithm}{datatype}{count}"
    create_raw_index(client, name, "s:", algorithm.upper(), datatype.upper(), params=HNSW if algorithm == "hnsw" else None)
    dtype = np.float16 if datatype == "float16" else np.float32
    say(f"scale: {count:,} {algorithm} {datatype}")
    seconds = hset_vectors(client, "s:", vectors.astype(dtype, copy=False))
    info = ft_info(client, name)
    row: dict[str, Any] = {
        "documents": count, "algorithm": algorithm, "datatype": datatype, "load_s": seconds, "docs_per_s": count / seconds,
        "num_docs": int(float(info["num_docs"])), "vector_index_sz_mb": float(info["vector_index_sz_mb"]),
        "total_index_memory_sz_mb": float(info.get("total_index_memory_sz_mb", 0) or 0),
        "vector_index_bytes_per_doc": float(info["vector_index_sz_mb"]) * 2**20 / count,
        "used_memory_bytes_per_doc": (used_memory(client) - before) / count,
    }
    if asked is not None:
        row["recall@10"] = _recall(bench, name, vectors, asked, dtype)
    client.flushall()
    return row


def run(quick: bool) -> dict[str, Any]:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    asked = unit_vectors(QUERIES, seed=11)
    rows: list[dict[str, Any]] = []
    with embedded_server() as bench:
        bench.client().config_set("appendonly", "no")  # 1M vectors would write GBs of AOF that nothing reads back
        for count in sizes:
            vectors = unit_vectors(count, seed=count + 1)
            for datatype in ("float32", "float16"):
                rows.append(measure(bench, count, "flat", datatype, vectors, asked))
            if count <= 100_000:
                rows.append(measure(bench, count, "hnsw", "float32", vectors, None))
    return save("scale", {"quick": quick, "hnsw_params": HNSW, "queries": QUERIES, "rows": rows})
