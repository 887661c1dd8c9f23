"""`--engine ray` in Ray local mode, against the real server and the real model: the same documents and vectors as
a local run, the fingerprint skip before anything goes to Ray, and a worker killed mid-run."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import one_error_line
from tests.e2e.test_cron import counts, write_jsonl
from vsearch import config, store
from vsearch.load.request import LoadRequest
from vsearch.load.run import run_load
from vsearch.store.documents import read_vectors

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")

TOPICS = ["shoes", "watches", "bags", "shirts", "belts", "socks", "hats", "scarves", "rings", "jeans"]
ROWS = [{"id": f"r{i}", "title": f"a short note {i} on {TOPICS[i % 10]} and {TOPICS[(i * 7) % 10]}", "kind": TOPICS[i % 10]}
        for i in range(300)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One Ray local-mode session for the module (vsearch uses a session it finds and leaves it up)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "rows.jsonl", ROWS)


def stored(redis_client, name: str) -> tuple[dict[str, dict], np.ndarray]:
    """Every document's fields (vector and bookkeeping left out) and its text vectors, by id order."""
    spec = store.get_spec(redis_client, name)
    ids = sorted(store.scan_ids(redis_client, spec))
    fields = {}
    for doc_id in ids:
        raw = redis_client.hgetall(f"{spec.prefix}{doc_id}")
        fields[doc_id] = {k.decode(): v.decode() for k, v in raw.items()
                          if k.decode() in ("id", "title", "kind")}
    vectors = read_vectors(redis_client, spec, ids, spec.vectors)
    return fields, np.stack([v["text_vector"] for v in vectors])


def test_ray_load_stores_what_a_local_load_stores_and_a_reload_embeds_nothing(cli, redis_client, rows_file) -> None:
    cli("create-index", "ray-local", "--tag", "kind", "--storage", "hash")
    cli("create-index", "ray-ray", "--tag", "kind", "--storage", "hash")
    cli("load", "ray-local", rows_file, "--text-field", "title")
    result = cli("load", "ray-ray", rows_file, "--text-field", "title", "--engine", "ray", "--workers", "2")
    assert result.stdout == ""  # Ray prints nothing where data goes
    assert counts(result)["embedded"] == 300
    local_fields, local_vectors = stored(redis_client, "ray-local")
    ray_fields, ray_vectors = stored(redis_client, "ray-ray")
    assert ray_fields == local_fields and len(ray_fields) == 300
    np.testing.assert_allclose(ray_vectors, local_vectors, atol=1e-5)

    again = cli("load", "ray-ray", rows_file, "--text-field", "title", "--engine", "ray", "--workers", "2")
    assert counts(again)["embedded"] == 0 and counts(again)["skipped"] == 300

    changed = [dict(r, title=r["title"] + " (revised)") if i < 10 else r for i, r in enumerate(ROWS)]
    write_jsonl(rows_file, changed)
    third = cli("load", "ray-ray", rows_file, "--text-field", "title", "--engine", "ray")
    assert counts(third)["embedded"] == 10 and counts(third)["skipped"] == 290


def test_encode_with_ray_gives_the_local_vectors(cli, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(r["title"] + "\n" for r in ROWS[:120]))
    local = cli.jsonl("encode", texts)
    remote = cli.jsonl("encode", texts, "--engine", "ray", "--workers", "2")
    assert [r["id"] for r in remote] == [r["id"] for r in local]
    np.testing.assert_allclose(np.array([r["vector"] for r in remote]), np.array([r["vector"] for r in local]), atol=1e-5)


def test_ray_options_without_the_ray_engine_are_a_usage_error(cli, rows_file) -> None:
    result = cli("encode", rows_file, "--workers", "3", ok=False)
    assert result.exit_code == 2 and "need --engine ray" in result.stderr


def test_a_worker_killed_mid_run_loses_nothing(cli, redis_client, rows_file, capfd) -> None:
    from vsearch.config import EngineOptions
    from vsearch.models.ray import RayEngine

    cli("create-index", "ray-killed", "--tag", "kind", "--storage", "hash")
    cli("create-index", "ray-reference", "--tag", "kind", "--storage", "hash")
    cli("load", "ray-reference", rows_file, "--text-field", "title")
    settings = config.resolve()
    request = LoadRequest(name="ray-killed", source=str(rows_file), text_fields=("title",), batch_size=50)
    killed: list[int] = []
    with RayEngine(EngineOptions(workers=2)) as engine:

        def kill_one_worker(done: int, size: int) -> None:
            if not killed:  # after the first batch: the pool is up and more batches are to come
                killed.append(engine.pids()[0])
                os.kill(killed[0], signal.SIGKILL)

        report = run_load(settings, request, kill_one_worker, encoders=engine)
        assert killed and killed[0] not in engine.pids()  # Ray started a new process in its place
    assert report.embedded == 300 and report.read == 300 and report.documents == 300
    fields, vectors = stored(redis_client, "ray-killed")
    reference_fields, reference_vectors = stored(redis_client, "ray-reference")
    assert fields == reference_fields
    np.testing.assert_allclose(vectors, reference_vectors, atol=1e-5)
    assert json.loads(report.to_json())["rejected"] == 0
    assert "worker died" not in capfd.readouterr().out  # Ray's note about the dead worker stays off stdout


def test_a_model_a_ray_worker_cannot_load_is_one_error_line(cli, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n")
    result = cli("encode", texts, "--engine", "ray", "--model", str(tmp_path / "no-such-model"), ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert "cannot load model" in one_error_line(result)


def test_more_gpus_than_the_machine_has_is_a_usage_error_not_a_hang(cli, tmp_path: Path) -> None:
    if ray.cluster_resources().get("GPU"):
        pytest.skip("this machine has a GPU")
    texts = tmp_path / "texts.txt"
    texts.write_text("one\n")
    result = cli("encode", texts, "--engine", "ray", "--gpus-per-worker", "1", ok=False)
    assert result.exit_code == 2 and "GPUs than Ray sees" in one_error_line(result)
