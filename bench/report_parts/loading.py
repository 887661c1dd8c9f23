"""Part `loading`: precomputed 384-d vectors from one JSONL file (id + vector array), three ways in.

1. raw redis-py: json.loads each line, float32 bytes, HSET in pipelines of 1,000 (the fastest thing a user writes);
2. RedisVL `SearchIndex.load` (same records, batch_size 1,000);
3. `vsearch load NAME FILE --vector-column vec`.
Each is a fresh Python process, as users run them, into an empty index made beforehand (same schema, FLAT or HNSW);
wall time of the whole process and the time after imports (the process reports it) are both kept. Methods alternate
round by round so that machine noise hits all of them alike.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report_parts.common import BATCH, DIM, Bench, create_raw_index, embedded_server, ft_info, median, run_process, save, say, unit_vectors

HNSW = {"M": 16, "EF_CONSTRUCTION": 200}

# Each loader prints the seconds it spent after its imports; VSB_URL carries the password (never argv).
RAW = """
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np, redis
t1 = time.perf_counter()
path, prefix = sys.argv[1:3]
client = redis.Redis.from_url(os.environ["VSB_URL"])
pipe = client.pipeline(transaction=False)
with open(path, encoding="utf-8") as handle:
    for n, line in enumerate(handle, 1):
        record = json.loads(line)
        pipe.hset(prefix + record["id"], mapping={"id": record["id"],
                  "text_vector": np.asarray(record["vec"], dtype=np.float32).tobytes()})
        if n % BATCH == 0:
            pipe.execute()
pipe.execute()
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0}))
""".replace("BATCH", str(BATCH))

REDISVL = """
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
from redisvl.index import SearchIndex
t1 = time.perf_counter()
path, name, prefix, algorithm = sys.argv[1:5]
schema = {"index": {"name": name, "prefix": prefix, "storage_type": "hash"},
          "fields": [{"name": "id", "type": "tag"},
                     {"name": "text_vector", "type": "vector", "attrs": {"dims": DIM, "algorithm": algorithm,
                      "distance_metric": "cosine", "datatype": "float32"}}]}
index = SearchIndex.from_dict(schema, redis_url=os.environ["VSB_URL"])
def records():
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield {"id": record["id"], "text_vector": np.asarray(record["vec"], dtype=np.float32).tobytes()}
index.load(records(), id_field="id", batch_size=BATCH)
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0}))
""".replace("BATCH", str(BATCH)).replace("DIM", str(DIM))

VSEARCH = """
import json, sys, time
t0 = time.perf_counter()
from vsearch.cli import main
t1 = time.perf_counter()
sys.argv = ["vsearch", "load", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    if exit.code not in (0, None):
        raise
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0}))
"""


def write_input(path: Path, count: int) -> None:
    """The shared input: {"id": "doc-N", "vec": [...]} a line, 6 decimals (what an encoder's JSONL looks like)."""
    vectors = unit_vectors(count, seed=count)
    with open(path, "w", encoding="utf-8") as handle:
        for i, row in enumerate(vectors):
            handle.write('{"id": "doc-%d", "vec": [%s]}\n' % (i, ",".join("%.6f" % x for x in row)))


def _timed(args: list[str], env: dict[str, str]) -> dict[str, float]:
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"loader failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def _vsearch_index(bench: Bench, name: str, algorithm: str) -> None:
    extra = ["--m", str(HNSW["M"]), "--ef-construction", str(HNSW["EF_CONSTRUCTION"])] if algorithm == "hnsw" else []
    run_process([sys.executable, "-m", "vsearch", "create-index", name, "--algorithm", algorithm, "--dim", str(DIM),
                 *extra], bench.env())


def load_once(bench: Bench, method: str, path: Path, algorithm: str, tag: str) -> dict[str, float]:
    client = bench.client()
    name = f"{method}{tag}"
    env = {**bench.env(), "VSB_URL": bench.url}
    if method == "vsearch":
        _vsearch_index(bench, name, algorithm)
        args = [sys.executable, "-c", VSEARCH, name, str(path), "--vector-column", "vec", "--quiet"]
    else:
        params = HNSW if algorithm == "hnsw" else None
        create_raw_index(client, name, f"{name}:", algorithm.upper(), params=params)
        args = ([sys.executable, "-c", RAW, str(path), f"{name}:"] if method == "raw"
                else [sys.executable, "-c", REDISVL, str(path), name, f"{name}:", algorithm])
    result = _timed(args, env)
    # every method must have indexed every line, else its speed means nothing
    docs = _num_docs(client, name)
    client.execute_command("FT.DROPINDEX", _physical(client, name), "DD")
    return {**result, "documents": docs}


def _physical(client: Any, name: str) -> str:
    """vsearch serves NAME as an alias of NAME~1; FT.DROPINDEX wants the index itself."""
    names = [n.decode() for n in client.execute_command("FT._LIST")]
    return name if name in names else f"{name}~1"


def _num_docs(client: Any, name: str) -> int:
    return int(float(ft_info(client, name)["num_docs"]))


def profile_vsearch(bench: Bench, path: Path, out: Path) -> list[dict[str, Any]]:
    """cProfile of one `vsearch load` (FLAT): the functions with the most own time, and their share."""
    _vsearch_index(bench, "prof", "flat")
    code = VSEARCH.replace("    main()", f"    import cProfile; cProfile.run('main()', {str(out)!r})")
    _timed([sys.executable, "-c", code, "prof", str(path), "--vector-column", "vec", "--quiet"],
           {**bench.env(), "VSB_URL": bench.url})
    bench.client().execute_command("FT.DROPINDEX", _physical(bench.client(), "prof"), "DD")
    stats = pstats.Stats(str(out))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": calls, "own_s": own,
                     "cumulative_s": cumulative, "own_share": own / total})
    rows.sort(key=lambda row: -row["own_s"])
    # The stages of one load, by cumulative time: where a change would pay.
    stages = {"reading + parsing JSONL (records.read_records)": "read_records", "records to documents (ingest._candidate)":
              "_candidate", "reading stored fingerprints (store.read_states)": "read_states",
              "writing, MULTI/EXEC (store.write_documents)": "write_documents", "claiming ids (ingest._claim)": "_claim"}
    whole = next((v[3] for k, v in stats.stats.items() if k[2] == "run_load"), total)  # type: ignore[attr-defined]
    found = []
    for label, func in stages.items():
        cumulative = sum(v[3] for k, v in stats.stats.items() if k[2] == func and "vsearch" in k[0])  # type: ignore[attr-defined]
        found.append({"stage": label, "cumulative_s": cumulative, "share": cumulative / whole})
    return [{"total_s": total, "load_s": whole, "stages": found}, *rows[:12]]


def run(quick: bool) -> dict[str, Any]:
    sizes = [10_000] if quick else [10_000, 100_000]
    rounds = {10_000: 1 if quick else 3, 100_000: 1}
    results: list[dict[str, Any]] = []
    profile: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vsb-load-") as tmp, embedded_server() as bench:
        for count in sizes:
            path = Path(tmp) / f"vectors-{count}.jsonl"
            say(f"loading: writing {count:,} vectors to {path.name}")
            write_input(path, count)
            for algorithm in ("flat", "hnsw"):
                runs: dict[str, list[dict[str, float]]] = {"raw": [], "redisvl": [], "vsearch": []}
                for round_ in range(rounds[count]):
                    for method in runs:
                        say(f"loading: {count:,} {algorithm} {method} round {round_ + 1}")
                        runs[method].append(load_once(bench, method, path, algorithm, f"{algorithm}{count}r{round_}"))
                results.append(summarise(count, algorithm, runs))
            if count == 10_000:
                say("loading: profiling one vsearch load of 10,000 (FLAT)")
                profile = profile_vsearch(bench, path, Path(tmp) / "load.prof")
    return save("loading", {"quick": quick, "hnsw_params": HNSW, "batch": BATCH, "results": results,
                            "vsearch_profile_10k_flat": profile})


def summarise(count: int, algorithm: str, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"documents": count, "algorithm": algorithm, "methods": {}}
    raw_wall = median([r["wall_s"] for r in runs["raw"]])
    raw_inner = median([r["after_imports_s"] for r in runs["raw"]])
    for method, values in runs.items():
        wall = median([r["wall_s"] for r in values])
        inner = median([r["after_imports_s"] for r in values])
        out["methods"][method] = {
            "wall_s": wall, "after_imports_s": inner, "imports_s": median([r["imports_s"] for r in values]),
            "docs_per_s": count / wall, "docs_per_s_after_imports": count / inner,
            "vs_raw": raw_wall / wall, "vs_raw_after_imports": raw_inner / inner,
            "indexed": min(int(r["documents"]) for r in values), "runs_wall_s": [r["wall_s"] for r in values],
        }
    return out
