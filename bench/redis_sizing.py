"""How much memory vectors take in Redis: N random 384-d FLOAT32 vectors under an HNSW index (M=16,
EF_CONSTRUCTION=200), written with redis-py pipelines into a throwaway embedded server, then read back through
the same figures `vsearch info` shows (vsearch.store.sizing). Usage:
    .venv/bin/python bench/redis_sizing.py [--documents 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vsearch import server
from vsearch.schema import Algorithm, DataType, IndexSpec, Metric, Storage, VectorField
from vsearch.store import create_index
from vsearch.store.sizing import MB, index_memory

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vsz-"))
    try:
        server.ensure_running(home)
        client = server.client(home, protocol=2)
        before = client.info("memory")["used_memory"]
        vector = VectorField("text_vector", "text", "all-MiniLM-L6-v2", DIM, Algorithm.hnsw, Metric.cosine, DataType.float32,
                             params={"m": 16, "ef_construction": 200})
        spec = create_index(client, IndexSpec(name="sizing", prefix="sizing:", storage=Storage.hash, vectors=(vector,)))
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for start in range(0, args.documents, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 1000, args.documents)):
                pipe.hset(f"sizing:{i}", mapping={"text_vector": rng.standard_normal(DIM).astype("<f4").tobytes()})
            pipe.execute()
        seconds = time.perf_counter() - started
        memory = index_memory(client, spec)
        grown = (client.info("memory")["used_memory"] - before) / args.documents
        print(json.dumps({"documents": args.documents, "write_s": round(seconds, 1),
                          "docs_per_s": round(args.documents / seconds), "server_bytes_per_document": round(grown),
                          "vector_index_bytes_per_document": round(memory.vector_index_mb * MB / args.documents),
                          **memory.to_dict()}, indent=2))
    finally:
        server.stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
