"""How the CNN's feature map becomes an image vector: GeM (p=3) for the default model, the mean for indexes made
with plain "efficientnet-lite0", whose queries must be pooled the way their stored vectors were."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tests.e2e.conftest import SAMPLE
from vsearch.config import DEFAULT_IMAGE_MODEL
from vsearch.models import load_image_encoder, open_image
from vsearch.models.cnn import cnn_pixels

PHOTO = SAMPLE / "images" / "1653.jpg"


def feature_map(path) -> torch.Tensor:
    """The network's last feature map for one photo, [1, 1280, 7, 7], straight from extract_features."""
    model = load_image_encoder(DEFAULT_IMAGE_MODEL).model
    pixels = np.stack([cnn_pixels(open_image(path))])  # contiguous, as vsearch batches them: the same conv kernels
    with torch.inference_mode():
        return model.extract_features(torch.from_numpy(pixels)).float()


def mean_pooled(path) -> np.ndarray:
    return feature_map(path).mean(dim=(2, 3))[0].numpy()


def gem_pooled(path) -> np.ndarray:
    cubes = feature_map(path).clamp(min=1e-6) ** 3
    return (cubes.mean(dim=(2, 3)) ** (1 / 3))[0].numpy()


def test_default_image_model_is_gem_pooled(cli) -> None:
    assert DEFAULT_IMAGE_MODEL == "efficientnet-lite0-gem"
    gem = cli.jsonl("encode", PHOTO)[0]["vector"]
    named = cli.jsonl("encode", PHOTO, "--image-model", "efficientnet-lite0-gem")[0]["vector"]
    # atol 5e-5: one image may go through the CNN's ONNX export (checked to agree with torch: 9e-6 at most)
    np.testing.assert_allclose(gem, gem_pooled(PHOTO), rtol=1e-4, atol=5e-5)
    assert named == gem
    assert not np.allclose(gem, mean_pooled(PHOTO), rtol=1e-3, atol=1e-3)


def test_efficientnet_lite0_stays_mean_pooled(cli) -> None:
    mean = cli.jsonl("encode", PHOTO, "--image-model", "efficientnet-lite0")[0]["vector"]
    assert len(mean) == 1280
    np.testing.assert_allclose(mean, mean_pooled(PHOTO), rtol=1e-4, atol=5e-5)


def rows(count: int) -> list[dict]:
    with open(SAMPLE / "products.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[:count]


def test_new_image_index_records_the_gem_model(cli, index_name) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector")
    fields = json.loads(cli("info", index_name).stdout)["fields"]
    assert [f["attrs"]["model"] for f in fields if f["type"] == "vector"] == ["efficientnet-lite0-gem"]


@pytest.mark.parametrize(("model", "pooled"), [("efficientnet-lite0", mean_pooled),
                                                ("efficientnet-lite0-gem", gem_pooled)])
def test_image_queries_use_the_pooling_the_index_recorded(cli, redis_client, index_name, tmp_path, model,
                                                          pooled) -> None:
    # An index made before GeM became the default records "efficientnet-lite0": its stored vectors and its
    # --image queries (which name no model) must both be mean-pooled, or no photo finds itself at similarity 1.
    picked = rows(4)
    for row in picked:
        row["image"] = str(SAMPLE / row["image"])
    records = tmp_path / "items.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in picked))
    cli("create-index", index_name, "--image", "--no-text-vector", "--image-model", model, "--storage", "hash")
    cli("load", index_name, records, "--image-field", "image", "--image-root", SAMPLE)
    photo = SAMPLE / picked[1]["image"]
    stored = np.frombuffer(redis_client.hget(f"{index_name}:{picked[1]['id']}", "image_vector"), dtype="<f4")
    np.testing.assert_allclose(stored, pooled(photo), rtol=1e-5, atol=1e-6)
    hits = cli.jsonl("query", index_name, "--image", photo, "-k", "1")
    assert hits[0]["id"] == picked[1]["id"]
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
