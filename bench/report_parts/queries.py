"""Part `queries`: KNN 10 over 100k clustered synthetic unit vectors with a 10-valued tag, from one client, one query at a
time; then one `vsearch query` in a fresh process, as a user runs it, against a plain script.

vsearch's library path (`vsearch.store.search`, spec from `vsearch.store.get_spec`) against RedisVL's `VectorQuery`
and exact numpy (the recall ground truth), plain and with a tag pre-filter, FLAT and HNSW. The two Redis paths
ask for the same return field (the tag) and alternate in rounds so machine noise hits both alike. Recall@10 of HNSW
is then measured against EF_RUNTIME.

Start-up (`startup`, the rows of bench/query_latency.py): on its own server, a vsearch HNSW index of the sample
catalogue's 300 products (TEXT field productDisplayName, so a text query runs in hybrid mode, the default there) and
100k random unit vectors; cold (--no-cache, a new text each round), cached and --like queries in the default mode and
in vector mode, each a fresh process, beside a sentence-transformers + redis-py script doing the same KNN 10.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from report_parts.common import DIM, clustered_vectors, create_raw_index, embedded_server, hset_vectors, save, say

TAGS = [f"t{i}" for i in range(10)]
HNSW = {"M": 16, "EF_CONSTRUCTION": 200}
EF_RUNTIMES = (10, 20, 50, 100, 200)
K = 10


def timed_queries(ask: Callable[[int], list[str]], count: int, warmup: int = 10) -> tuple[list[float], list[list[str]]]:
    """Per-query seconds and the ids each query returned."""
    for i in range(min(warmup, count)):
        ask(i)
    seconds, found = [], []
    for i in range(count):
        started = time.perf_counter()
        ids = ask(i)
        seconds.append(time.perf_counter() - started)
        found.append(ids)
    return seconds, found


def one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn, a sentence-transformers dependency
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(1)


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def latency(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds)
    return {"qps": len(values) / float(values.sum()), "p50_ms": float(np.percentile(values, 50) * 1e3),
            "p99_ms": float(np.percentile(values, 99) * 1e3), "queries": len(values)}


def run(quick: bool) -> dict[str, Any]:
    count, queries, rounds = 100_000, (200 if quick else 1000), 2
    from redisvl.index import SearchIndex
    from redisvl.query import VectorQuery
    from redisvl.query.filter import Tag

    import vsearch.store as store

    # Queries come from the same clusters as the documents (a fresh point near a random centre), as real queries
    # land near real documents; the same seed fixes the centres for both.
    both = clustered_vectors(count + queries, seed=7)
    vectors, asked = both[:count], both[count:]
    rng = np.random.default_rng(8)
    tags = [TAGS[i] for i in rng.integers(0, len(TAGS), count)]
    asked_tags = [TAGS[i] for i in rng.integers(0, len(TAGS), queries)]
    tag_array = np.array(tags)
    by_tag = {t: np.flatnonzero(tag_array == t) for t in TAGS}
    sub = {t: vectors[rows] for t, rows in by_tag.items()}

    def exact(i: int, filtered: bool) -> list[str]:
        if filtered:
            rows = by_tag[asked_tags[i]]
            scores = sub[asked_tags[i]] @ asked[i]
        else:
            rows, scores = None, vectors @ asked[i]
        top = np.argpartition(-scores, K)[:K]
        top = top[np.argsort(-scores[top])]
        return [str(rows[j] if rows is not None else j) for j in top]

    results: list[dict[str, Any]] = []
    ef_curve: list[dict[str, Any]] = []
    with embedded_server() as bench:
        client = bench.client()
        create_raw_index(client, "qflat", "q:", "FLAT", tag=True)
        create_raw_index(client, "qhnsw", "q:", "HNSW", tag=True, params=HNSW)
        say(f"queries: loading {count:,} vectors into a FLAT and an HNSW index (M=16, EF_CONSTRUCTION=200)")
        build_s = hset_vectors(client, "q:", vectors, tags)
        truth = {f: [exact(i, f) for i in range(queries)] for f in (False, True)}
        numpy_rows = []
        for filtered in (False, True):
            with one_blas_thread():  # like the one Redis thread that answers; BLAS threads fight on a busy machine
                seconds, found = timed_queries(lambda i: exact(i, filtered), queries)
            numpy_rows.append({"method": "numpy exact", "algorithm": "exact", "filtered": filtered,
                               **latency(seconds), "recall@10": recall(found, truth[filtered])})
        for algorithm, name in (("flat", "qflat"), ("hnsw", "qhnsw")):
            spec = store.get_spec(client, name)
            field = spec.vectors[0]
            index = SearchIndex.from_existing(name, redis_url=bench.url)

            def via_vsearch(i: int, filtered: bool) -> list[str]:
                where = f"@tag:{{{asked_tags[i]}}}" if filtered else None
                return [h.id for h in store.search(client, spec, field, asked[i], K, where, return_fields=["tag"])]

            def via_redisvl(i: int, filtered: bool) -> list[str]:
                query = VectorQuery(asked[i].tobytes(), "text_vector", return_fields=["tag"], num_results=K,
                                    filter_expression=(Tag("tag") == asked_tags[i]) if filtered else None)
                return [row["id"][2:] for row in index.query(query)]

            for filtered in (False, True):
                say(f"queries: {algorithm} {'tag pre-filter' if filtered else 'plain'}")
                runs: dict[str, tuple[list[float], list[list[str]]]] = {"vsearch": ([], []), "RedisVL": ([], [])}
                for _ in range(rounds):
                    for method, ask in (("vsearch", via_vsearch), ("RedisVL", via_redisvl)):
                        seconds, found = timed_queries(lambda i: ask(i, filtered), queries)
                        runs[method][0].extend(seconds)
                        runs[method][1][:] = found
                for method, (seconds, found) in runs.items():
                    results.append({"method": method, "algorithm": algorithm, "filtered": filtered,
                                    **latency(seconds), "recall@10": recall(found, truth[filtered])})
            if algorithm == "hnsw":
                for filtered in (False, True):
                    for ef in EF_RUNTIMES:
                        def ask(i: int) -> list[str]:
                            where = f"@tag:{{{asked_tags[i]}}}" if filtered else None
                            return [h.id for h in store.search(client, spec, field, asked[i], K, where, ef_runtime=ef,
                                                               return_fields=["tag"])]
                        seconds, found = timed_queries(ask, queries)
                        ef_curve.append({"ef_runtime": ef, "filtered": filtered, **latency(seconds),
                                         "recall@10": recall(found, truth[filtered])})
    return save("queries", {"quick": quick, "documents": count, "dim": DIM, "tags": len(TAGS), "k": K,
                            "hnsw_params": HNSW, "load_s_flat_and_hnsw": build_s, "results": numpy_rows + results,
                            "ef_runtime_curve": ef_curve, "startup": startup(quick)})


def startup(quick: bool) -> dict[str, Any]:
    """One query a fresh process, in the default mode and in vector mode, against the plain script (its baseline)."""
    import query_latency as latency  # bench/query_latency.py: the same rows, run on their own by hand

    documents, rounds = (10_000, 3) if quick else (latency.RANDOM_DOCS, 7)
    with embedded_server() as bench:
        env = latency.bench_env(bench.home)
        say(f"queries: start-up, a vsearch HNSW index of 300 products + {documents:,} random vectors")
        index = latency.build(bench.home, ["hnsw"], env, documents)["hnsw"]
        latency.prepare(env)
        say(f"queries: start-up, {rounds} rounds of fresh processes")
        return {"documents": documents + 300, **latency.startup(bench.home, index, rounds, env)}
