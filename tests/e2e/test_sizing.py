"""`vsearch info` memory figures, and the same commands against an external Redis 8 / Redis Stack when one is given."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cron import write_jsonl

DIM = 64


def test_info_shows_memory_per_document_and_index_size(cli, index_name, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rows = [{"id": f"m{i}", "kind": "a", "vec": json.dumps(rng.standard_normal(DIM).tolist())} for i in range(50)]
    cli("create-index", index_name, "--dim", str(DIM), "--tag", "kind")
    cli("load", index_name, write_jsonl(tmp_path / "m.jsonl", rows), "--vector-column", "vec")
    memory = json.loads(cli("info", index_name).stdout)["memory"]
    assert memory["documents"] == 50
    assert memory["vector_index_mb"] > 0 and memory["server_used_mb"] > 0
    # A document holds at least its own vector's bytes, and its share of the index comes on top.
    assert memory["document_bytes"] >= 4 * DIM
    assert memory["bytes_per_document"] > memory["document_bytes"]
    assert memory["documents_that_fit"] is None or memory["documents_that_fit"] > 0


EXTERNAL = os.environ.get("VSEARCH_TEST_REDIS_URL")


@pytest.mark.skipif(not EXTERNAL, reason="set VSEARCH_TEST_REDIS_URL to a Redis 8 / Redis Stack / Redis Cloud database with search")
def test_an_external_server_given_by_url_does_what_the_embedded_one_does(cli, tmp_path: Path) -> None:
    name = f"ext{uuid.uuid4().hex[:8]}"
    rows = [{"id": "a", "title": "black leather watch"}, {"id": "b", "title": "red running shoes"}]
    url = ["--redis-url", EXTERNAL]
    cli("create-index", name, "--text", "title", *url)
    try:
        cli("load", name, write_jsonl(tmp_path / "e.jsonl", rows), "--text-field", "title", *url)
        hits = cli.jsonl("query", name, "a wristwatch", "-k", "1", *url)
        assert hits[0]["id"] == "a"
        assert json.loads(cli("info", name, *url).stdout)["memory"]["documents"] == 2
    finally:
        cli("drop-index", name, "--delete-documents", *url)
