"""Part `loading`: precomputed 384-d vectors from one JSONL file (id + vector array), three ways in.

1. raw redis-py: json.loads each line, float32 bytes, HSET in pipelines of 1,000 (the fastest thing a user writes);
2. RedisVL `SearchIndex.load` (same records, batch_size 1,000);
3. `vsearch load NAME FILE --vector-column vec`.
Each is a fresh Python process, as users run them, into an empty index made beforehand (same schema, FLAT or HNSW);
wall time of the whole process, the time after imports and the peak RSS (the process reports both) are kept. Methods
take turns within each round, in another order each round, so that machine noise hits all of them alike; each round's
ratio to raw is kept, and the median of those is the figure.

Beside it: where a vsearch load's time goes (its stages, in both its threads); a load that embeds (`--text-field`)
against `vsearch encode` plus a load of the vectors it wrote; and the peak RSS of a load of 1,000,000 given vectors
(100,000 with --quick), which must not grow with the input.
"""

from __future__ import annotations

import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report_parts.common import (BATCH, DIM, ROOT, Bench, create_raw_index, embedded_server, ft_info, median,
                                 run_process, save, say, unit_vectors)

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
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0, "peak_rss_kib": PEAK}))
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
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0, "peak_rss_kib": PEAK}))
""".replace("BATCH", str(BATCH)).replace("DIM", str(DIM))

# The loader's own peak resident memory, KiB, as it ends: VmHWM, its memory's high-water mark. Not ru_maxrss, which
# Linux carries over from the forked parent across exec (every loader reported the report process's 344 MiB).
PEAK = ("next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))")
RAW, REDISVL = (code.replace("PEAK", PEAK) for code in (RAW, REDISVL))

# `vsearch load ARGS` as its console script runs it; an exit other than 0 fails the round.
RUN_LOAD = """sys.argv = ["vsearch", "load", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    if exit.code not in (0, None):
        raise"""

VSEARCH = """
import json, sys, time
t0 = time.perf_counter()
from vsearch.cli import main
t1 = time.perf_counter()
RUN_LOAD
print(json.dumps({"after_imports_s": time.perf_counter() - t1, "imports_s": t1 - t0, "peak_rss_kib": PEAK}))
""".replace("PEAK", PEAK).replace("RUN_LOAD", RUN_LOAD)


# `vsearch load` with its stages timed where they run: wall and CPU seconds (time.thread_time) of each, in the run's
# thread or the writer's. Wrappers by name, so a stage that is renamed shows as missing, not as zero.
STAGES = {
    "reading + parsing JSONL, vectors to float32 (CandidateMaker.given_batches)": ("vsearch.load.candidates", "CandidateMaker", "given_batches"),
    "records to candidates (Run._prepare: CandidateMaker.make_batch)": ("vsearch.load.run", "Run", "_prepare"),
    "claiming ids for duplicates and --prune (Run._claim)": ("vsearch.load.run", "Run", "_claim"),
    "comparing with stored fingerprints (Run._store)": ("vsearch.load.run", "Run", "_store"),
    "waiting for the write in flight (BatchWrites.finish)": ("vsearch.load.run", "BatchWrites", "finish"),
    "writing a batch: lease, MULTI/EXEC, persisted? (Run._write)": ("vsearch.load.run", "Run", "_write"),
    "  of which the MULTI/EXEC (store.connection.transaction)": ("vsearch.store.documents", None, "transaction"),
}
VSEARCH_STAGES = """
import importlib, json, resource, sys, threading, time
t0 = time.perf_counter()
STAGES = %r
spent = {}
def timed(label, owner, name, generator):
    original = getattr(owner, name)
    def account(wall, cpu):
        entry = spent.setdefault(label, {"wall_s": 0.0, "cpu_s": 0.0, "threads": set()})
        entry["wall_s"] += wall; entry["cpu_s"] += cpu; entry["threads"].add(threading.current_thread().name)
    def plain(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            account(time.perf_counter() - wall, time.thread_time() - cpu)
    def batches(*args, **kwargs):
        it = original(*args, **kwargs)
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                account(time.perf_counter() - wall, time.thread_time() - cpu)
            yield item
    setattr(owner, name, batches if generator else plain)
for label, (module, cls, name) in STAGES.items():
    owner = importlib.import_module(module)
    owner = getattr(owner, cls) if cls else owner
    timed(label, owner, name, name == "given_batches")
t1 = time.perf_counter()
from vsearch.cli import main
RUN_LOAD
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"stages": {k: {**v, "threads": sorted(v["threads"])} for k, v in spent.items()},
                  "after_imports_s": time.perf_counter() - t1, "process_cpu_s": usage.ru_utime + usage.ru_stime}))
""" % (STAGES,)
VSEARCH_STAGES = VSEARCH_STAGES.replace("RUN_LOAD", RUN_LOAD)


def write_input(path: Path, count: int, distinct: int | None = None) -> None:
    """The shared input: {"id": "doc-N", "vec": [...]} a line, 6 decimals (what an encoder's JSONL looks like).
    `distinct`: only that many different vectors, repeated under new ids (a million lines in a minute, not ten)."""
    rows = unit_vectors(min(count, distinct or count), seed=count)
    texts = [",".join("%.6f" % x for x in row) for row in rows] if distinct else None
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            vector = texts[i % len(texts)] if texts else ",".join("%.6f" % x for x in rows[i])
            handle.write('{"id": "doc-%d", "vec": [%s]}\n' % (i, vector))


def compile_bytecode() -> None:
    """vsearch's bytecode, as scripts/setup.sh makes it once: without it (PYTHONDONTWRITEBYTECODE, a fresh checkout)
    every vsearch process would compile its modules again, and be timed doing it."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vsearch")], check=True, capture_output=True)


def _timed(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"loader failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def _vsearch_index(bench: Bench, name: str, algorithm: str, *options: str) -> None:
    extra = ["--m", str(HNSW["M"]), "--ef-construction", str(HNSW["EF_CONSTRUCTION"])] if algorithm == "hnsw" else []
    # --no-passages --storage hash: one vector a document in a hash, the layout the raw loop and RedisVL write
    # (create-index's default for a text index is JSON with passages)
    run_process([sys.executable, "-m", "vsearch", "create-index", name, "--algorithm", algorithm, "--dim", str(DIM),
                 "--no-passages", "--storage", "hash", *extra, *options], bench.env())


def load_once(bench: Bench, method: str, path: Path, algorithm: str, tag: str) -> dict[str, Any]:
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


def stages_vsearch(bench: Bench, path: Path, rounds: int) -> dict[str, Any]:
    """Each stage of `vsearch load` (FLAT), wall and CPU seconds where it runs, the median of `rounds` loads."""
    runs = []
    for round_ in range(rounds):
        _vsearch_index(bench, f"stages{round_}", "flat")
        started = time.perf_counter()
        result = _timed([sys.executable, "-c", VSEARCH_STAGES, f"stages{round_}", str(path), "--vector-column", "vec",
                         "--quiet"], {**bench.env(), "VSB_URL": bench.url})
        result["wall_s"] = time.perf_counter() - started
        runs.append(result)
        bench.client().execute_command("FT.DROPINDEX", _physical(bench.client(), f"stages{round_}"), "DD")
    stages = []
    for label in STAGES:
        found = [r["stages"][label] for r in runs if label in r["stages"]]
        stages.append({"stage": label, "wall_s": median([f["wall_s"] for f in found]) if found else None,
                       "cpu_s": median([f["cpu_s"] for f in found]) if found else None,
                       "threads": sorted({t for f in found for t in f["threads"]})})
    return {"rounds": rounds, "process_wall_s": median([r["wall_s"] for r in runs]),
            "after_imports_s": median([r["after_imports_s"] for r in runs]),
            "process_cpu_s": median([r["process_cpu_s"] for r in runs]), "stages": stages}


def profile_vsearch(bench: Bench, path: Path, out: Path) -> list[dict[str, Any]]:
    """cProfile of the run's thread of one `vsearch load` (FLAT), in CPU time: the functions with the most own time."""
    _vsearch_index(bench, "prof", "flat")
    code = VSEARCH.replace("    main()", "    import cProfile, time as _t; _p = cProfile.Profile(_t.thread_time); _p.enable()\n"
                           f"    try:\n        main()\n    finally:\n        _p.disable(); _p.dump_stats({str(out)!r})")
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
    return [{"total_s": total}, *rows[:12]]


# A load that embeds against what it does in two steps: `vsearch encode` to a JSONL file, then a load of the vectors.
def write_texts(path: Path, count: int) -> int:
    """SciFact titles as {"id", "title"} lines (the sample catalogue's names where SciFact is missing)."""
    corpus = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
    titles: list[str] = []
    if corpus.exists():
        with open(corpus, encoding="utf-8") as handle:
            titles = [" ".join(json.loads(line)["title"].split()) for _, line in zip(range(count), handle)]
    else:
        import csv

        with open(ROOT / "sample_data" / "products.csv", encoding="utf-8") as handle:
            titles = [row["productDisplayName"] for row in csv.DictReader(handle)]
        titles = (titles * (count // len(titles) + 1))[:count]
    with open(path, "w", encoding="utf-8") as handle:
        for i, title in enumerate(titles):
            handle.write(json.dumps({"id": f"t{i}", "title": title}) + "\n")
    return len(titles)


def embedding_vs_two_steps(bench: Bench, folder: Path, count: int, rounds: int) -> dict[str, Any]:
    texts = folder / "titles.jsonl"
    count = write_texts(texts, count)
    vectors = folder / "title-vectors.jsonl"
    env = bench.env()
    # The text model's ONNX export, made once here: a first text load makes it otherwise (~20 s), which is no load's cost.
    run_process([sys.executable, "-m", "vsearch", "models", "prepare"], env)
    commands = {
        "encode": lambda n: [sys.executable, "-m", "vsearch", "encode", str(texts), "--field", "title", "--id-field", "id",
                             "-o", str(vectors)],
        "given load": lambda n: [sys.executable, "-m", "vsearch", "load", n, str(vectors), "--vector-column", "vector",
                                 "--quiet"],
        "embedding load": lambda n: [sys.executable, "-m", "vsearch", "load", n, str(texts), "--text-field", "title",
                                     "--quiet"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(rounds):
        for name, command in commands.items():
            index = f"emb{round_}{'g' if name == 'given load' else 'e'}"
            if name != "encode":
                _vsearch_index(bench, index, "flat")
            say(f"loading: {count:,} titles, {name}, round {round_ + 1}")
            seconds[name].append(run_process(command(index), env))
            if name != "encode":
                docs = _num_docs(bench.client(), index)
                if docs != count:
                    raise SystemExit(f"{name}: {docs} of {count} titles indexed")
                bench.client().execute_command("FT.DROPINDEX", _physical(bench.client(), index), "DD")
    two_steps = [e + g for e, g in zip(seconds["encode"], seconds["given load"])]
    ratios = [one / two for one, two in zip(seconds["embedding load"], two_steps)]
    return {"texts": count, "rounds": rounds, "runs_s": seconds, "two_steps_s": two_steps,
            "median_s": {**{k: median(v) for k, v in seconds.items()}, "encode + given load": median(two_steps)},
            "vs_two_steps": median(ratios), "ratios": ratios}


def peak_memory(bench: Bench, folder: Path, count: int) -> dict[str, Any]:
    """One `vsearch load` of `count` given vectors (FLAT): its peak RSS, which must not grow with the input."""
    path = folder / f"vectors-{count}.jsonl"
    say(f"loading: writing {count:,} vectors ({min(count, 10_000):,} distinct) to {path.name}")
    write_input(path, count, distinct=10_000)
    size = path.stat().st_size
    say(f"loading: {count:,} vsearch, peak RSS")
    result = load_once(bench, "vsearch", path, "flat", f"rss{count}")
    path.unlink()
    return {"documents": count, "input_bytes": size, "indexed": result["documents"], "wall_s": result["wall_s"],
            "docs_per_s": count / result["wall_s"], "peak_rss_mib": result["peak_rss_kib"] / 1024}


def run(quick: bool) -> dict[str, Any]:
    compile_bytecode()
    sizes = [10_000] if quick else [10_000, 100_000]
    rounds = {(10_000, "flat"): 1 if quick else 5, (10_000, "hnsw"): 1 if quick else 3, (100_000, "flat"): 3,
              (100_000, "hnsw"): 2}
    results: list[dict[str, Any]] = []
    profile: list[dict[str, Any]] = []
    stages: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vsb-load-") as tmp, embedded_server() as bench:
        for count in sizes:
            path = Path(tmp) / f"vectors-{count}.jsonl"
            say(f"loading: writing {count:,} vectors to {path.name}")
            write_input(path, count)
            for algorithm in ("flat", "hnsw"):
                runs: dict[str, list[dict[str, Any]]] = {"raw": [], "redisvl": [], "vsearch": []}
                for round_ in range(rounds[count, algorithm]):
                    # each round in another order, so that neither the machine's drift nor the server's state after
                    # a load favours one method
                    for method in [*runs][round_ % 3:] + [*runs][:round_ % 3]:
                        say(f"loading: {count:,} {algorithm} {method} round {round_ + 1}")
                        runs[method].append(load_once(bench, method, path, algorithm, f"{algorithm}{count}r{round_}"))
                results.append(summarise(count, algorithm, runs))
            if count == 10_000:
                say("loading: the stages of vsearch loads of 10,000 (FLAT), and a profile of its run's thread")
                stages = stages_vsearch(bench, path, 1 if quick else 3)
                profile = profile_vsearch(bench, path, Path(tmp) / "load.prof")
            path.unlink()
        embedding = embedding_vs_two_steps(bench, Path(tmp), 1_000 if quick else 5_183, 1 if quick else 3)
        memory = peak_memory(bench, Path(tmp), 100_000 if quick else 1_000_000)
    return save("loading", {"quick": quick, "hnsw_params": HNSW, "batch": BATCH, "results": results,
                            "vsearch_stages_10k_flat": stages, "vsearch_profile_10k_flat": profile,
                            "embedding": embedding, "memory": memory})


def summarise(count: int, algorithm: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians of each method, and each round's ratio to raw (the methods ran side by side in it): their median."""
    out: dict[str, Any] = {"documents": count, "algorithm": algorithm, "rounds": len(runs["raw"]), "methods": {}}
    for method, values in runs.items():
        wall = median([r["wall_s"] for r in values])
        inner = median([r["after_imports_s"] for r in values])
        out["methods"][method] = {
            "wall_s": wall, "after_imports_s": inner, "imports_s": median([r["imports_s"] for r in values]),
            "docs_per_s": count / wall, "docs_per_s_after_imports": count / inner,
            "vs_raw": median([raw["wall_s"] / r["wall_s"] for raw, r in zip(runs["raw"], values)]),
            "vs_raw_after_imports": median([raw["after_imports_s"] / r["after_imports_s"]
                                            for raw, r in zip(runs["raw"], values)]),
            "peak_rss_mib": median([r["peak_rss_kib"] for r in values]) / 1024,
            "indexed": min(int(r["documents"]) for r in values), "runs_wall_s": [r["wall_s"] for r in values],
        }
    out["vsearch_vs_redisvl"] = median([rv["wall_s"] / vs["wall_s"] for rv, vs in zip(runs["redisvl"], runs["vsearch"])])
    return out
