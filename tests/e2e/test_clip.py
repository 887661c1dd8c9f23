"""A sentence-transformers CLIP model as --image-model: images and text in one space.

Real CLIP checkpoints cannot be downloaded here, so the test builds a tiny random-weight one: its vectors
mean nothing, but every code path (encode, create-index, load, text-to-image query) runs for real.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.e2e.conftest import SAMPLE


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from tests.e2e.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_encode_images_and_text_with_clip(cli, clip_dir) -> None:
    images = cli.jsonl("encode", str(SAMPLE / "images" / "16*.jpg"), "--image-model", clip_dir)
    assert images and all(len(r["vector"]) == 16 for r in images)
    assert not np.allclose(images[0]["vector"], images[1]["vector"])
    texts = cli.jsonl("encode", "--model", clip_dir, input="a red shoe\na watch\n")
    assert [len(r["vector"]) for r in texts] == [16, 16]


def test_clip_index_text_to_image_query(cli, redis_client, clip_dir, index_name, tmp_path) -> None:
    rows = list(csv.DictReader(open(SAMPLE / "products.csv")))[:6]
    for row in rows:
        row["image"] = str(SAMPLE / row["image"])  # absolute paths work too
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    created = cli("create-index", index_name, "--image", "--image-model", clip_dir, "--tag", "gender", "--storage", "hash")
    assert "image_vector HNSW COSINE 16-d" in created.stderr
    cli("load", index_name, path, "--text-field", "productDisplayName", "--image-field", "image",
        "--image-root", SAMPLE)  # the records name the sample images by absolute path
    assert len(redis_client.hget(f"{index_name}:{rows[0]['id']}", "image_vector")) == 16 * 4
    by_image = cli.jsonl("query", index_name, "--image", SAMPLE / rows[2]["image"], "-k", "1")
    assert by_image[0]["id"] == rows[2]["id"]
    by_text = cli.jsonl("query", index_name, "a photo of a shoe", "--field", "image_vector", "-k", "3")
    assert len(by_text) == 3 and all(-1.0 <= h["score"] <= 1.0 for h in by_text)


def test_cnn_cannot_embed_text(cli, products) -> None:
    result = cli("query", products, "a shoe", "--field", "image_vector", ok=False)
    assert result.exit_code == 1
    assert "image model 'efficientnet-lite0-gem' cannot embed text" in result.stderr


def test_text_model_cannot_embed_images(cli) -> None:
    result = cli("encode", str(SAMPLE / "images" / "1653.jpg"), "--image-model", "all-MiniLM-L6-v2", ok=False)
    assert result.exit_code == 1 and "cannot embed images" in result.stderr


def test_unknown_model_says_models_load_offline(cli, tmp_path) -> None:
    result = cli("similarity", "a", "b", "--model", str(tmp_path / "no-model"), ok=False)
    assert result.exit_code == 1
    assert "cannot load model" in result.stderr and "offline" in result.stderr
