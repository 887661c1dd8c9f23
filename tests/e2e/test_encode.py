"""`vsearch encode`: texts and images to JSONL, .npy and raw float32, from files and stdin (its batching alone:
tests/unit/test_encode.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import SAMPLE, run_in_fresh_process
from vsearch.models import load_text_encoder

SENTENCES = ["A man is eating food.", "A monkey is playing drums.", "Today is a sunny day"]


def write_inputs(tmp_path: Path) -> dict[str, Path]:
    rows = [{"id": f"s{i}", "body": s, "n": i} for i, s in enumerate(SENTENCES)]
    paths = {
        "csv": tmp_path / "in.csv", "tsv": tmp_path / "in.tsv",
        "json": tmp_path / "in.json", "jsonl": tmp_path / "in.jsonl",
    }
    paths["csv"].write_text("id,body,n\n" + "".join(f'{r["id"]},"{r["body"]}",{r["n"]}\n' for r in rows))
    paths["tsv"].write_text("id\tbody\tn\n" + "".join(f'{r["id"]}\t{r["body"]}\t{r["n"]}\n' for r in rows))
    paths["json"].write_text(json.dumps(rows, indent=2))
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def test_text_lines_to_jsonl_match_the_model(cli, tmp_path) -> None:
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    rows = cli.jsonl("encode", path)
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    expected = load_text_encoder().encode_texts(SENTENCES)
    np.testing.assert_allclose(np.array([row["vector"] for row in rows]), expected, atol=1e-6)
    assert len(rows[0]["vector"]) == 384


def test_stdin_equals_file(cli, tmp_path) -> None:
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES))
    assert cli.jsonl("encode", "-", input="\n".join(SENTENCES)) == cli.jsonl("encode", path)
    assert cli.jsonl("encode", input="\n".join(SENTENCES)) == cli.jsonl("encode", path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
@pytest.mark.parametrize("via_stdin", [False, True])
def test_structured_input_with_field(cli, tmp_path, fmt: str, via_stdin: bool) -> None:
    path = write_inputs(tmp_path)[fmt]
    if via_stdin:
        rows = cli.jsonl("encode", "-", "--format", fmt, "--field", "body", input=path.read_text())
    else:
        rows = cli.jsonl("encode", path, "--field", "body")
    assert [row["id"] for row in rows] == ["s0", "s1", "s2"]
    np.testing.assert_allclose(np.array([r["vector"] for r in rows]), load_text_encoder().encode_texts(SENTENCES), atol=1e-6)


def test_id_field_option(cli, tmp_path) -> None:
    path = write_inputs(tmp_path)["csv"]
    assert [r["id"] for r in cli.jsonl("encode", path, "--field", "body", "--id-field", "n")] == ["0", "1", "2"]


def test_npy_and_f32_outputs(cli, tmp_path) -> None:
    source = tmp_path / "s.txt"
    source.write_text("\n".join(SENTENCES))
    expected = load_text_encoder().encode_texts(SENTENCES)
    npy = tmp_path / "v.npy"
    result = cli("encode", source, "--output", npy)
    assert "wrote 3 vectors of 384 dimensions" in result.stderr
    np.testing.assert_allclose(np.load(npy), expected, atol=1e-6)
    f32 = tmp_path / "v.f32"
    cli("encode", source, "-o", f32)
    np.testing.assert_allclose(np.fromfile(f32, dtype="<f4").reshape(3, 384), expected, atol=1e-6)
    piped = cli("encode", source, "--to", "npy").stdout_bytes
    (tmp_path / "piped.npy").write_bytes(piped)
    np.testing.assert_allclose(np.load(tmp_path / "piped.npy"), expected, atol=1e-6)


def test_images_and_globs(cli) -> None:
    rows = cli.jsonl("encode", str(SAMPLE / "images" / "16*.jpg"))
    assert len(rows) >= 2
    assert all(len(r["vector"]) == 1280 for r in rows)
    assert rows[0]["id"].endswith(".jpg")
    single = cli.jsonl("encode", rows[0]["id"])
    np.testing.assert_allclose(single[0]["vector"], rows[0]["vector"], rtol=1e-4, atol=1e-5)


def test_not_an_image_is_named(cli, tmp_path) -> None:
    fake = tmp_path / "broken.jpg"
    fake.write_text("this is not a jpeg")
    result = cli("encode", fake, ok=False)
    assert result.exit_code == 1
    assert f"{fake}: not a readable image" in result.stderr
    assert "Traceback" not in result.output
    missing = cli("encode", str(tmp_path / "nothing-*.jpg"), ok=False)
    assert missing.exit_code == 1 and "no image files match" in missing.stderr


def test_structured_input_needs_field(cli, tmp_path) -> None:
    path = write_inputs(tmp_path)["csv"]
    result = cli("encode", path, ok=False)
    assert result.exit_code == 2 and "--field" in result.stderr
    result = cli("encode", path, "--field", "nope", ok=False)
    assert result.exit_code == 1 and "line 2: no field 'nope'" in result.stderr


def test_failed_encode_leaves_no_output_file(cli, tmp_path) -> None:
    good = SAMPLE / "images" / "1653.jpg"
    broken = tmp_path / "zz-broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "vectors.npy"
    out.write_bytes(b"previous content")
    result = cli("encode", good, broken, "-o", out, "--batch-size", "1", ok=False)
    assert result.exit_code == 1 and "zz-broken.jpg: not a readable image" in result.stderr
    assert out.read_bytes() == b"previous content"  # the old file is untouched, no half-written one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.npy", "zz-broken.jpg"]


def test_unknown_vector_format_is_a_usage_error(cli, tmp_path) -> None:
    result = cli("encode", SAMPLE / "sentences.txt", "--to", "parquet", ok=False)
    assert result.exit_code == 2 and "parquet" in result.stderr


def test_npy_keeps_its_ids_beside_it_and_load_takes_both_back(cli, redis_client, index_name, tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    # A blank line: the ids stay line numbers, so rows still match lines.
    texts.write_text("a red summer dress\n\nblack leather watch\nrunning shoes\n")
    matrix = tmp_path / "texts.npy"
    result = cli("encode", texts, "-o", matrix)
    assert f"their ids to {tmp_path / 'texts.ids.jsonl'}" in result.stderr
    ids = [json.loads(line)["id"] for line in (tmp_path / "texts.ids.jsonl").read_text().splitlines()]
    assert ids == ["1", "3", "4"]
    vectors = np.load(matrix)
    cli("create-index", index_name, "--algorithm", "flat", "--storage", "hash")
    extra = tmp_path / "more.jsonl"
    extra.write_text('{"id": "3", "kind": "watch"}\n{"id": "9", "kind": "nothing"}\n')
    partial = cli("load", index_name, extra, "--vectors", matrix, ok=False)
    assert partial.exit_code == 4 and "no vector for id '9'" in partial.stderr
    loaded = cli("load", index_name, tmp_path / "texts.ids.jsonl", "--vectors", matrix)
    assert "0 embedded, 2 given" in loaded.stderr  # '3' was loaded above, with its kind
    stored = np.frombuffer(redis_client.hget(f"{index_name}:3", "text_vector"), dtype=np.float32)
    assert np.array_equal(stored, vectors[1])
    assert cli.jsonl("query", index_name, "--like", "1", "-k", "1")[0]["id"] in {"3", "4"}
    missing = cli("load", index_name, extra, "--vectors", tmp_path / "nope.npy", ok=False)
    assert missing.exit_code == 2 and "not a readable .npy file" in missing.stderr


def test_an_output_that_cannot_be_written_is_refused_before_encoding(cli, tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n")
    for output, message in ((tmp_path, "is a folder"), (tmp_path / "missing" / "x.npy", "does not exist")):
        result = cli("encode", texts, "-o", output, ok=False)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_few_texts_and_an_image_encode_without_torch_once_the_models_are_exported(cli, vsearch_home) -> None:
    """`vsearch encode - <<< "red summer dress"` imported torch for one text (~5 s); the exports need none, and
    give the vectors torch gives (cosine > 0.9999, as each export is checked)."""
    cli("models", "prepare")
    first, imported = run_in_fresh_process(vsearch_home, ["encode", "-"], "red summer dress\n")
    assert imported == "[]"
    fast = np.asarray(json.loads(first)["vector"])
    slow = load_text_encoder().encode_texts(["red summer dress"])[0]
    assert float(fast @ slow / np.linalg.norm(fast) / np.linalg.norm(slow)) > 0.9999
    image, imported = run_in_fresh_process(vsearch_home, ["encode", str(SAMPLE / "images" / "1653.jpg")])
    assert imported == "[]" and len(json.loads(image)["vector"]) == 1280


def test_more_images_than_a_few_give_one_row_each(cli, tmp_path) -> None:
    # An image folder's files come as a list: past FEW_ITEMS (64), the first 65 were once written twice.
    folder = tmp_path / "imgs"
    folder.mkdir()
    names = sorted(p.name for p in (SAMPLE / "images").glob("*.jpg"))[:70]
    for name in names:
        (folder / name).symlink_to(SAMPLE / "images" / name)
    rows = cli.jsonl("encode", str(folder / "*.jpg"))
    assert len(rows) == 70
    assert len({r["id"] for r in rows}) == 70
