"""The batch path of a load of given vectors (make_batch, write_batch, the write beside the next batch) against the
per-record path, on the real server: the same documents stored, byte for byte, and the same rejects, in the same
order with the same lines; a refused write is the run's error and the last one written; a connection killed in the
middle of a load is survived with every document written once. The per-record path is the one a load that embeds
takes (CandidateMaker.make for each record); here it stands in for make_batch, and Redis is real either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, one_error_line
from vsearch import store
from vsearch.load.candidates import CandidateMaker

GOOD = [0.5, -0.25, 1.0, 2.0]
ROWS: list[dict | str] = [
    {"id": "a", "vec": GOOD, "kind": "x", "title": "first"}, {"id": "b", "vec": [0, 0, 0, 0]}, "{not json",
    {"id": "c", "vec": GOOD, "year": 2020}, {"id": "a", "vec": GOOD, "kind": "again"}, {"vec": GOOD},
    {"id": "d", "vec": [1, 2, 3]}, {"id": "e", "vec": [0.1, 0.2, 0.3, 0.4]}, {"id": "c", "vec": GOOD},
    {"id": "f", "vec": GOOD, "title": "ünïcødé"}, {"id": "g", "vec": [float("nan"), 0, 0, 1]}, {"id": "h", "vec": GOOD},
]
LAYOUTS = {"hash": ("--no-passages", "--storage", "hash"), "json passages": ()}


def write_rows(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def per_record(made: CandidateMaker, records, ids):
    """The per-record path, as Run._prepare takes it for records that need a model."""
    return [c for c in (made.make(r, ids) for r in records) if c is not None]


def stored(redis_client, prefix: str) -> dict[str, object]:
    """Every document under `prefix` as Redis holds it (a hash's fields, a JSON document's body), by id."""
    out: dict[str, object] = {}
    for key in redis_client.scan_iter(match=f"{prefix}*", count=1000):
        doc_id = key.decode()[len(prefix):]
        kind = redis_client.type(key)
        if kind == b"hash":
            out[doc_id] = redis_client.hgetall(key)
        elif kind == b"ReJSON-RL":
            out[doc_id] = json.loads(redis_client.execute_command("JSON.GET", key, "$"))
        else:
            out[doc_id] = kind
    return out


def reject_lines(result, path: Path) -> list[str]:
    return [line for line in result.stderr.splitlines() if f"{path} line " in line]


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_whole_load_stores_the_same_documents_and_rejects_through_either_path(cli, redis_client, index_name,
                                                                               tmp_path, monkeypatch, layout) -> None:
    source = write_rows(tmp_path / "in.jsonl", ROWS)
    threads: set[str] = set()
    write_batch = store.write_batch

    def watched(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return write_batch(*args, **kwargs)

    results = {}
    for path in ("batch", "per record"):
        name = f"{index_name}{path[0]}"
        cli("create-index", name, "--dim", "4", "--tag", "kind", "--numeric", "year", "--text", "title", *layout)
        with monkeypatch.context() as patch:
            patch.setattr(store, "write_batch", watched)
            if path == "per record":
                patch.setattr(CandidateMaker, "make_batch", per_record)
            result = cli("load", name, source, "--vector-column", "vec", "--batch-size", "3", ok=False)
        results[path] = (result.exit_code, reject_lines(result, source), stored(redis_client, f"{name}:"),
                         result.stderr.splitlines()[-1].replace(name, "NAME").split(";")[0])
    assert results["batch"] == results["per record"]
    code, rejects, documents, summary = results["batch"]
    assert code == 4 and sorted(documents) == ["a", "c", "e", "f", "h"]
    assert "5 given" in summary and "7 rejected" in summary
    # A batch's own rejects first, then those its ids' claims find (duplicates), batch after batch.
    assert [int(line.split(" line ")[1].split(":")[0]) for line in rejects] == [2, 3, 6, 5, 7, 9, 11]
    assert f"line 5: id 'a' appeared earlier in this input ({source} line 1); the first one was loaded" in rejects[3]
    assert threads == {"vsearch-load-write"}  # each batch written beside the reading of the next


def test_strict_stops_at_the_same_record_through_either_path_with_nothing_of_its_batch_written(
        cli, redis_client, index_name, tmp_path, monkeypatch) -> None:
    source = write_rows(tmp_path / "in.jsonl", ROWS)
    results = {}
    for path in ("batch", "per record"):
        name = f"{index_name}{path[0]}"
        cli("create-index", name, "--dim", "4", "--no-passages", "--storage", "hash")
        with monkeypatch.context() as patch:
            if path == "per record":
                patch.setattr(CandidateMaker, "make_batch", per_record)
            result = cli("load", name, source, "--vector-column", "vec", "--batch-size", "3", "--strict", ok=False)
        results[path] = (result.exit_code, one_error_line(result).replace(name, "NAME"), stored(redis_client, f"{name}:"))
    assert results["batch"] == results["per record"]
    code, error, documents = results["batch"]
    assert code == 1 and f"{source} line 2: " in error and documents == {}
    assert "--strict: nothing of this batch or after it was written" in error


def test_a_refused_write_is_the_run_s_error_and_the_last_batch_written(cli, redis_client, index_name,
                                                                       tmp_path) -> None:
    cli("create-index", index_name, "--dim", "4", "--no-passages", "--storage", "hash")
    redis_client.set(f"{index_name}:d4", "not a hash")  # not indexed: the index starts empty, HSET meets WRONGTYPE
    source = write_rows(tmp_path / "in.jsonl", [{"id": f"d{i}", "vec": GOOD} for i in range(12)])
    result = cli("load", index_name, source, "--vector-column", "vec", "--batch-size", "3", ok=False)
    assert result.exit_code == 1
    error = one_error_line(result)
    assert f"Redis refused 1 document(s) of a batch ({source} line 5): WRONGTYPE" in error
    assert "2 other document(s) of that batch were written (this run had written 3 documents before it" in error
    # the refused batch's others landed (Redis does not roll a transaction back), nothing after it was sent
    assert sorted(d for d in stored(redis_client, f"{index_name}:") if d != "d4") == ["d0", "d1", "d2", "d3", "d5"]


def test_a_connection_killed_mid_load_is_survived_and_every_document_counted_once(cli, redis_client, index_name,
                                                                                 tmp_path) -> None:
    cli("create-index", index_name, "--dim", "4", "--no-passages", "--storage", "hash")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    load = subprocess.Popen([sys.executable, "-m", "vsearch", "load", index_name, "-", "--vector-column", "vec",
                             "--format", "jsonl", "--batch-size", "1"], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rows = [{"id": f"d{i}", "vec": [1.0, float(i), 0.5, 0.25]} for i in range(8)]
        for row in rows[:3]:
            load.stdin.write(json.dumps(row) + "\n")
        load.stdin.flush()
        deadline = time.monotonic() + 60
        while len(stored(redis_client, f"{index_name}:")) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert redis_client.client_kill_filter(_type="normal", skipme=True) >= 1  # the load's connections
        for row in rows[3:]:
            load.stdin.write(json.dumps(row) + "\n")
        load.stdin.close()
        assert load.wait(120) == 0, load.stderr.read()
        summary = load.stderr.read().strip().splitlines()[-1]
    finally:
        load.kill()
    assert "8 read, 0 embedded, 8 given" in summary
    assert sorted(stored(redis_client, f"{index_name}:")) == [f"d{i}" for i in range(8)]
