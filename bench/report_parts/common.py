"""What every part shares: a throwaway embedded server, the machine's description, results files, data."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS = ROOT / "bench" / "results"
DIM = 384
BATCH = 1000  # commands per pipeline, for every loader that lets us choose
sys.path.insert(0, str(ROOT))

from vsearch import server  # noqa: E402


@dataclass(frozen=True)
class Bench:
    """One run's private Redis Stack: its home, a client, and the URL other tools need."""

    home: Path
    url: str

    def client(self) -> Any:
        return server.client(self.home, socket_connect_timeout=5, protocol=2)  # as vsearch.store.connect makes it

    def env(self) -> dict[str, str]:
        """The environment of a `vsearch` process that talks to this server, run from this checkout."""
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "VSEARCH_HOME": str(self.home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}


@contextmanager
def embedded_server() -> Iterator[Bench]:
    """A fresh VSEARCH_HOME and server for one part; stopped and deleted afterwards, whatever happens."""
    with tempfile.TemporaryDirectory(prefix="vsb-") as tmp:
        home = Path(tmp)
        socket = server.ensure_running(home)
        try:
            yield Bench(home, f"unix://:{server.password(home)}@{socket}")
        finally:
            server.stop(home, say=lambda _: None)


def machine() -> dict[str, Any]:
    """The machine, as the report names it next to every absolute figure."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    import redis

    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem_kb / 2**20, 1), "python": platform.python_version(),
            "redis_py": redis.__version__, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def save(part: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{part}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n", encoding="utf-8")
    return path


def load_result(part: str) -> dict[str, Any] | None:
    path = RESULTS / f"{part}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def unit_vectors(count: int, seed: int, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def clustered_vectors(count: int, seed: int, per_cluster: int = 100, dim: int = DIM) -> np.ndarray:
    """Unit vectors around count/per_cluster random centres (same-cluster cosine ~0.5), more like real embeddings
    than uniform random ones, on which no approximate index can find neighbours (all distances look alike)."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(max(count // per_cluster, 1), seed=seed + 1, dim=dim)
    vectors = centres[rng.integers(0, len(centres), count)] + rng.standard_normal((count, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32, copy=False)


def create_raw_index(client: Any, name: str, prefix: str, algorithm: str = "FLAT", datatype: str = "FLOAT32",
                     tag: bool = False, params: dict[str, int] | None = None) -> None:
    """An index made with FT.CREATE directly, as a user of redis-py or RedisVL would make it."""
    attrs: list[Any] = ["TYPE", datatype, "DIM", DIM, "DISTANCE_METRIC", "COSINE"]
    for key, value in (params or {}).items():
        attrs += [key, value]
    schema = (["tag", "TAG"] if tag else []) + ["text_vector", "VECTOR", algorithm, len(attrs), *attrs]
    client.execute_command("FT.CREATE", name, "ON", "HASH", "PREFIX", 1, prefix, "SCHEMA", *schema)


def hset_vectors(client: Any, prefix: str, vectors: np.ndarray, tags: list[str] | None = None,
                 start: int = 0) -> float:
    """Seconds to write the vectors (already numpy) as hashes, pipelines of BATCH: the fastest way in."""
    started = time.perf_counter()
    for low in range(0, len(vectors), BATCH):
        pipe = client.pipeline(transaction=False)
        block = vectors[low:low + BATCH]
        for offset, row in enumerate(block):
            i = start + low + offset
            mapping: dict[str, Any] = {"text_vector": row.tobytes()}
            if tags is not None:
                mapping["tag"] = tags[i]
            pipe.hset(f"{prefix}{i}", mapping=mapping)
        pipe.execute()
    return time.perf_counter() - started


def ft_info(client: Any, name: str) -> dict[str, Any]:
    """FT.INFO as a dict of str keys, whichever protocol (RESP2 list, RESP3 map) the client speaks."""
    info = client.execute_command("FT.INFO", name)
    pairs = info.items() if isinstance(info, dict) else zip(info[::2], info[1::2])
    out: dict[str, Any] = {}
    for key, value in pairs:
        key = key.decode() if isinstance(key, bytes) else str(key)
        if isinstance(value, bytes):
            value = value.decode()
        out[key] = value
    return out


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def run_process(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one fresh process; its stderr is shown if it fails."""
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def say(message: str) -> None:
    print(f"[report] {message}", file=sys.stderr, flush=True)
