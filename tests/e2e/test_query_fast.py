"""Fresh `vsearch query` processes: a text query loads no torch; a cached one or `--like` loads no model, and
not even numpy (a tenth of a second of start-up)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT
from vsearch.models.names import bundled_text_model_path as _bundled_text_model_path
from vsearch.models.onnx import export_path

HEAVY = ("torch", "transformers", "sentence_transformers")
MODEL_RUNTIME = ("numpy", "onnxruntime", "tokenizers", *HEAVY)
# Runs the CLI as `python -m vsearch` does, then reports which model libraries the process imported.
RUNNER = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.stderr))
from vsearch.cli import main
main()
""" % (MODEL_RUNTIME,)


def vsearch(*args: str, home: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run vsearch in a fresh process; its result and the model libraries it imported."""
    env = {**os.environ, "VSEARCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", RUNNER, *args], env=env, capture_output=True, text=True,
                            cwd=ROOT, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return result, json.loads(result.stderr.splitlines()[-1])


def test_text_queries_skip_torch_and_cached_ones_load_no_model(cli, vsearch_home, index_name, tmp_path) -> None:
    # A copy of the bundled model, with fresh mtimes: its own fingerprint, export and cache keys.
    model = tmp_path / "minilm-copy"
    shutil.copytree(_bundled_text_model_path(), model, copy_function=shutil.copyfile)
    cli("create-index", index_name, "--model", model, "--tag", "kind", "--algorithm", "flat")
    rows = ["red summer dress", "black leather watch", "running shoes", "wool winter hat"]
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "kind": "x", "title": t}) + "\n" for i, t in enumerate(rows)))
    cli("load", index_name, data, "--text-field", "title")

    prepared, imported = vsearch("models", "prepare", "--model", str(model), home=vsearch_home)
    assert "fast query model" in prepared.stderr
    export = export_path(vsearch_home, str(model))
    assert (export / "model.onnx").is_file()

    fresh, imported = vsearch("query", index_name, "a dress for summer", "-k", "2", "--no-cache", home=vsearch_home)
    assert not set(imported) & set(HEAVY) and "onnxruntime" in imported
    expected = [json.loads(line) for line in fresh.stdout.splitlines()]
    assert expected[0]["id"] == "d0"
    assert expected == cli.jsonl("query", index_name, "a dress for summer", "-k", "2", "--no-cache")

    first, _ = vsearch("query", index_name, "a dress for summer", "-k", "2", home=vsearch_home)  # fills the cache
    # Now no model can be loaded: the export is gone, and the weights are garbage of the same size and mtime
    # (so the model's fingerprint, and the cache key, are unchanged).
    shutil.rmtree(export)
    weights = model / "model.safetensors"
    stat = weights.stat()
    weights.write_bytes(b"\0" * stat.st_size)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cached, imported = vsearch("query", index_name, "a dress for summer", "-k", "2", home=vsearch_home)
    assert imported == []
    assert cached.stdout == first.stdout == fresh.stdout
    assert not export.exists()

    like, imported = vsearch("query", index_name, "--like", "d0", "-k", "2", home=vsearch_home)
    assert imported == []
    assert [json.loads(line) for line in like.stdout.splitlines()] == cli.jsonl("query", index_name, "--like", "d0",
                                                                                  "-k", "2")


def test_an_image_query_loads_no_torch_and_finds_what_torch_finds(cli, products, vsearch_home) -> None:
    """Each `--image` query imported torch (2.3 s; 61 queries took 141 s). The load that embedded the catalogue's
    images with torch exported the CNN, so a query runs it on onnxruntime: the same top hits, no torch."""
    from vsearch.models.onnx_image import export_path as image_export

    assert (image_export(vsearch_home, "efficientnet-lite0-gem") / "model.onnx").is_file()
    image = str(ROOT / "sample_data" / "images" / "1653.jpg")
    fresh, imported = vsearch("query", products, "--image", image, "-k", "5", "-f", "jsonl", home=vsearch_home)
    assert not set(imported) & set(HEAVY) and "onnxruntime" in imported
    hits = [json.loads(line) for line in fresh.stdout.splitlines()]
    assert hits[0]["id"] == "1653"
    import numpy as np

    from vsearch.models import load_image_encoder, open_image

    vector = load_image_encoder("efficientnet-lite0-gem").encode_images([open_image(Path(image))])[0]
    torch_hits = cli.jsonl("query", products, "--vector", json.dumps(vector.tolist()), "--field", "image_vector",
                           "-k", "5", "-f", "jsonl")
    assert [h["id"] for h in hits] == [h["id"] for h in torch_hits]
    np.testing.assert_allclose([h["score"] for h in hits], [h["score"] for h in torch_hits], atol=1e-4)
