"""Input built to hurt: terminal escapes in stored data, image and text bombs, malformed and huge files.

Each case must end in data shown literally or in one clear error line, with memory bounded by design.

- A FIFO, device or folder named as an image is one rejected record: `load` never waits on it.
- Text that is not valid Unicode (JSON's lone surrogates, file names and arguments with bytes that are not
  UTF-8) is one rejected record or one error line; the rest of its batch is loaded.
- `--batch` names the line that holds a bad byte; a stopword-only line in a text-mode batch has no results,
  and the other lines still answer.
- A zero vector on a COSINE index (no direction, so no score) is refused at load and at query, and a value past
  FLOAT16's range on a FLOAT16 index is refused at load.
- Transparent images are composited onto white: shapes on transparency no longer embed as one image. A load
  says when different image files embed identically, and names image formats it cannot read (SVG).
- In a folder load a symlink keeps its own name as id, and one that leads out of the folder says so; a glob
  with a wildcard in a folder part starts at the part before the first wildcard.
- A long text is tokenized only as far as the model reads it, by the torch and the ONNX encoder alike
  (test_onnx_text.py: a 12 MB query costs the ONNX encoder under 150 MB; it took 1.7 GB).

What needs neither a server nor a model (tables, image bombs, huge and malformed files, JSON and CSV output):
tests/unit/test_hostile_inputs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.e2e.conftest import ROOT, SAMPLE, one_error_line
from tests.unit.test_hostile_inputs import HOSTILE, TERMINAL_CONTROLS, input_error, one_bit_png
from vsearch import models
from vsearch.models import load_image_encoder, load_text_encoder, open_image
from vsearch.models.images import IMAGE_DECODE_SIDE
from vsearch.records import Format, read_records


# ---------------------------------------------------------------------------------------------------
# Terminal output


def test_similarity_table_from_the_cli(cli) -> None:
    result = cli("similarity", "[/x] \x1b]0;title\x07", *HOSTILE, "--format", "table")
    assert "Traceback" not in result.output
    assert not TERMINAL_CONTROLS.search(result.stdout)
    assert "[/x]" in result.stdout and "[bold]loud[/bold]" in result.stdout and "\\x1b]0;title\\x07" in result.stdout


def test_query_table_of_stored_hostile_fields(cli, index_name, tmp_path) -> None:
    path = tmp_path / "evil.jsonl"
    path.write_text("".join(json.dumps({"id": f"e{n}", "title": f"watch {text}"}) + "\n" for n, text in enumerate(HOSTILE)))
    cli("create-index", index_name, "--text", "title")
    cli("load", index_name, path, "--text-field", "title")
    result = cli("query", index_name, "watch [/x] \x1b[31m", "-k", str(len(HOSTILE)), "--format", "table")
    assert not TERMINAL_CONTROLS.search(result.stdout)
    assert "watch [/x]" in result.stdout and "\\x1b]0;owned\\x07" in result.stdout


# ---------------------------------------------------------------------------------------------------
# Images


def test_decompression_bomb_from_the_cli(cli, products, tmp_path) -> None:
    bomb = tmp_path / "bomb.png"
    one_bit_png(bomb, (10_000, 9_000))
    for args in (("encode", bomb), ("query", products, "--image", bomb)):
        line = one_error_line(cli(*args, ok=False))
        assert line.startswith(f"vsearch: error: {bomb}: image too large")


def test_small_images_decode_exactly_as_before(tmp_path) -> None:
    medium = tmp_path / "medium.png"
    Image.open(SAMPLE / "images" / "1653.jpg").convert("RGB").resize((440, 600)).save(medium)
    paths = [*sorted((SAMPLE / "images").glob("*.jpg"))[:6], medium]
    before = [Image.open(p).convert("RGB") for p in paths]
    after = [open_image(p) for p in paths]
    for old, new in zip(before, after):
        assert new.size == old.size and new.tobytes() == old.tobytes()
    encoder = load_image_encoder()
    np.testing.assert_allclose(encoder.encode_images(after), encoder.encode_images(before), atol=1e-5)


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_large_images_are_reduced_as_they_are_decoded(tmp_path, suffix) -> None:
    path = tmp_path / f"large.{suffix}"
    full = Image.open(SAMPLE / "images" / "1653.jpg").convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC)
    full.save(path)
    reduced = open_image(path)
    assert min(reduced.size) == IMAGE_DECODE_SIDE and reduced.mode == "RGB"
    assert reduced.size == (448, 597)
    # What the model sees barely changes: the same picture, just not held at full size in a batch.
    encoder = load_image_encoder()
    old, new = encoder.encode_images([Image.open(path).convert("RGB"), reduced])
    assert float(old @ new / np.linalg.norm(old) / np.linalg.norm(new)) > 0.98


# ---------------------------------------------------------------------------------------------------
# Long texts: the model reads 256 tokens, so only that much text is tokenized


def long_texts() -> dict[str, str]:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    return {
        "whitespace runs": ("some words here " * 10 + " " * 5000 + "\n\t\r" * 3000) * 40,
        "huge words": ("x" * 30_000 + " ") * 3 + " ".join(words * 500) + " " + "y" * 1_000_000,
        "punctuation": ("!?,.;:()[]{}<>'\"-_/\\|@#$%^&*~`" * 50 + " ") * 200,
        "unicode": ("Größe café naïve résumé ﬁne Ω≈ç√∫ ñ ü ß 🙂🙃 e\u0301 " * 2000),
        "cjk": ("東京は日本の首都です。漢字とかなカナ混じり文 한국어 텍스트 " * 3000),
        "controls": ("a\x0bb c\x1cd e\x85f g\u00a0h i\u3000j \x00k\u200bl " * 4000),
        "no whitespace at all": "abc" * 20_000,
    }


@pytest.mark.parametrize("name", list(long_texts()))
def test_long_text_vector_equals_the_whole_text_vector(name) -> None:
    text = long_texts()[name]
    encoder = load_text_encoder()
    expected = encoder.model.encode([text], convert_to_numpy=True)  # the model tokenizing everything
    np.testing.assert_allclose(encoder.encode_texts([text]), expected, atol=1e-6)
    if name != "no whitespace at all":
        assert len(encoder.model_reads(text)) < len(text) // 4  # it did not tokenize the whole text


WORDS = st.sampled_from(["a", "word", "Überstraße", "東京", "🙂", "x" * 300, "don't", "e\u0301", "..!", "\x0b",
                         "\x1c", "\u00a0", "[CLS]", "##ing", "12,345.6"])
SPACES = st.sampled_from([" ", "  ", "\n", "\t", "\r\n", " " * 50, ""])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.tuples(WORDS, SPACES), min_size=150, max_size=400))
def test_any_long_text_gives_the_same_vector(monkeypatch_module, parts) -> None:
    text = "".join(word + space for word, space in parts)
    encoder = load_text_encoder()
    expected = encoder.model.encode([text], convert_to_numpy=True)
    np.testing.assert_allclose(encoder.encode_texts([text]), expected, atol=1e-6)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Start from a tiny prefix, so that short generated texts go through the doubling too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models.base, "TEXT_CHARS_PER_TOKEN", 1)
        yield patch


# ---------------------------------------------------------------------------------------------------
# JSON, JSONL, CSV


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_nesting_bomb_is_one_input_error(cli, tmp_path, fmt) -> None:
    path = tmp_path / f"deep.{fmt}"
    deep = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text('{"id": 1, "text": "ok"}\n' + deep + "\n" if fmt == "jsonl" else '[{"id": 1, "text": "ok"},\n' + deep + "]")
    message = input_error(lambda: [r.check() for r in read_records(str(path), Format(fmt))])
    assert message.startswith(f"{path} line 2: JSON nested")
    line = one_error_line(cli("encode", path, "--field", "text", ok=False))
    assert line.startswith(f"vsearch: error: {path} line 2: JSON nested")


# ---------------------------------------------------------------------------------------------------
# Files that are not files, text that is not text


def _given(cli, name: str, *options: str) -> None:
    cli("create-index", name, "--dim", "4", "--algorithm", "flat", "--storage", "hash", *options)


def _ids(redis_client, name: str) -> set[str]:
    reply = redis_client.execute_command("FT.SEARCH", name, "*", "NOCONTENT", "LIMIT", 0, 1000)
    prefix = json.loads(redis_client.get(f"__vsearch:index:{name}"))["index"]["prefix"]
    return {key.decode()[len(prefix):] for key in reply[1:]}


def test_a_fifo_named_as_an_image_is_one_rejected_record(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "real.jpg").write_bytes((SAMPLE / "images" / "1653.jpg").read_bytes())
    path = tmp_path / "images.csv"
    path.write_text("id,image\npipe,pipe.jpg\nreal,real.jpg\nnull,/dev/zero\n")
    result = cli("load", index_name, path, "--image-field", "image", "--image-root", "/", ok=False)
    assert result.exit_code == 4
    assert "pipe.jpg is a FIFO, not a file" in result.stderr
    assert "/dev/zero is a device or socket, not a file" in result.stderr
    assert _ids(redis_client, index_name) == {"real"}


def test_a_lone_surrogate_rejects_one_record_not_its_batch(cli, redis_client, index_name, tmp_path) -> None:
    _given(cli, index_name)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "ok1", "v": [1, 0, 0, 0]}\n{"id": "bad\\ud800", "v": [1, 0, 0, 0]}\n'
                    '{"id": "ok2", "title": "x\\udfff", "v": [1, 0, 0, 0]}\n{"id": "ok3", "v": [0, 1, 0, 0]}\n')
    result = cli("load", index_name, path, "--vector-column", "v", ok=False)
    assert result.exit_code == 4
    assert "line 2: field 'id' is not valid Unicode text" in result.stderr
    assert "line 3: a field is not valid Unicode text" in result.stderr
    assert _ids(redis_client, index_name) == {"ok1", "ok3"}


def test_a_file_name_that_is_not_utf8_rejects_one_image(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    folder = tmp_path / "photos"
    folder.mkdir()
    image = (SAMPLE / "images" / "1653.jpg").read_bytes()
    (folder / "good.jpg").write_bytes(image)
    with open(os.path.join(os.fsencode(folder), b"bad\xffname.jpg"), "wb") as handle:
        handle.write(image)
    result = cli("load", index_name, folder, ok=False)
    assert result.exit_code == 4
    assert "is not UTF-8" in result.stderr
    assert _ids(redis_client, index_name) == {"good.jpg"}


@pytest.mark.parametrize("args", [["query", "{name}", "--like", "x\udcff"], ["query", "{name}", "--vector", "[1,0,0,0]",
                                  "--where", "title=\udcff"], ["query", "{name}", "--vector", "[1,0,0,0]",
                                  "--filter", "@title:{\udcff}"], ["info", "bad\udcffname"]])
def test_an_argument_that_is_not_utf8_is_one_error_line(cli, index_name, args) -> None:
    _given(cli, index_name, "--tag", "title")
    result = cli(*[a.replace("{name}", index_name) for a in args], ok=False)
    assert result.exit_code == 2
    assert "is not valid UTF-8 text" in one_error_line(result)


def test_arguments_with_bad_bytes_from_a_real_shell(index_name) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable.encode(), b"-m", b"vsearch", b"info", b"bad\xffname"], env=env,
                            capture_output=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.decode().startswith("vsearch: error: argument 2")
    assert b"Traceback" not in result.stderr


def test_batch_names_the_line_with_a_bad_byte(cli, products, tmp_path) -> None:
    path = tmp_path / "queries.txt"
    path.write_bytes(b"red shoes\nblue shirt\nbad \xff byte\n")  # read ahead as text, this was "line 1"
    result = cli("query", products, "--batch", path, ok=False)
    assert "line 3 is not UTF-8 text" in one_error_line(result)
    jsonl = tmp_path / "queries.jsonl"
    jsonl.write_text('{"text": "fine"}\n{"text": "bad \\ud800"}\n')
    bad = cli("query", products, "--batch", jsonl, ok=False)
    assert "--batch line 2" in one_error_line(bad)
    image = tmp_path / "images.jsonl"
    image.write_text('{"text": "fine"}\n{"image": "bad\\ud800.jpg"}\n')
    assert '--batch line 2: "image" is not valid Unicode' in one_error_line(cli("query", products, "--batch", image,
                                                                                ok=False))


def test_a_stopword_only_line_in_a_text_batch_has_no_results(cli, products) -> None:
    rows = cli.jsonl("query", products, "--batch", "-", "--mode", "text", "-k", "2", input="watch\nthe of a\nshoes\n")
    assert [row["query"] for row in rows] == ["watch", "watch", "shoes", "shoes"]


def test_near_zero_radius_is_a_usage_error(cli, index_name) -> None:
    _given(cli, index_name, "--geo", "location")
    for radius in ("0km", "0m", "0.0 mi"):
        result = cli("query", index_name, "--vector", "[1,0,0,0]", "--where", f"location near 52.5,13.4 {radius}",
                     ok=False)
        assert result.exit_code == 2
        assert "radius must be more than 0" in one_error_line(result)


def test_a_zero_vector_on_a_cosine_index_is_refused(cli, redis_client, index_name, tmp_path) -> None:
    _given(cli, index_name)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "zero", "v": [0, 0, 0, 0]}\n{"id": "fine", "v": [1, 0, 0, 0]}\n')
    result = cli("load", index_name, path, "--vector-column", "v", ok=False)
    assert result.exit_code == 4 and "all zeros" in result.stderr
    assert _ids(redis_client, index_name) == {"fine"}
    query = cli("query", index_name, "--vector", "[0, 0, 0, 0]", ok=False)
    assert query.exit_code == 2 and "all zeros" in one_error_line(query)
    # One stored by another tool: --like refuses it, and any query's JSON stays valid.
    prefix = json.loads(redis_client.get(f"__vsearch:index:{index_name}"))["index"]["prefix"]
    redis_client.hset(f"{prefix}foreign", mapping={"text_vector": np.zeros(4, dtype=np.float32).tobytes()})
    like = cli("query", index_name, "--like", "foreign", ok=False)
    assert like.exit_code == 2 and "all-zero" in one_error_line(like)
    for line in cli("query", index_name, "--vector", "[1, 0, 0, 0]", "--format", "jsonl").stdout.splitlines():
        json.loads(line)


def test_float16_values_past_its_range_are_refused(cli, redis_client, index_name, tmp_path) -> None:
    _given(cli, index_name, "--type", "float16")
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "big", "v": [70000, 0, 0, 1]}\n{"id": "fine", "v": [65504, 0, 0, 1]}\n')
    result = cli("load", index_name, path, "--vector-column", "v", ok=False)
    assert result.exit_code == 4 and "past FLOAT16's range" in result.stderr
    assert _ids(redis_client, index_name) == {"fine"}


# ---------------------------------------------------------------------------------------------------
# Image folders


def _icon(path, shape: str) -> None:
    """A black shape on a transparent background, as symbolic icons are."""
    from PIL import ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if shape == "square":
        draw.rectangle((8, 8, 56, 56), fill=(0, 0, 0, 255))
    elif shape == "circle":
        draw.ellipse((8, 8, 56, 56), fill=(0, 0, 0, 255))
    else:
        draw.line((0, 0, 64, 64), fill=(0, 0, 0, 255), width=6)
    image.save(path)


def test_transparent_icons_embed_as_different_images(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    folder = tmp_path / "icons" / "64x64" / "actions"
    folder.mkdir(parents=True)
    for shape in ("square", "circle", "slash"):
        _icon(folder / f"{shape}.png", shape)
    (folder / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    result = cli("load", index_name, str(tmp_path / "icons" / "*" / "*" / "*"), ok=False)
    assert result.exit_code == 4
    assert ".svg images are not supported" in result.stderr
    assert _ids(redis_client, index_name) == {f"64x64/actions/{s}.png" for s in ("square", "circle", "slash")}
    # No other icon is (nearly) the same image: before, all three were one black square, scoring 1.0.
    assert cli.jsonl("query", index_name, "--like", "64x64/actions/square.png", "--min-score", "0.999") == []


def test_a_load_warns_when_different_images_embed_identically(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    folder = tmp_path / "blank"
    folder.mkdir()
    for i, colour in enumerate([(255, 255, 255, 0), (0, 0, 0, 0), (10, 200, 30, 0)]):  # all fully transparent
        Image.new("RGBA", (32, 32), colour).save(folder / f"{i}.png")
    result = cli("load", index_name, folder)
    assert "2 image(s) embedded exactly like another, different file" in result.stderr


def test_a_symlink_in_a_folder_keeps_its_own_name(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "real.jpg").write_bytes((SAMPLE / "images" / "1653.jpg").read_bytes())
    (folder / "alias.jpg").symlink_to("real.jpg")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes((SAMPLE / "images" / "1653.jpg").read_bytes())
    (folder / "out.jpg").symlink_to(outside)
    result = cli("load", index_name, folder, ok=False)
    assert result.exit_code == 4
    assert "'out.jpg' leaves the image root" in result.stderr and "not found" not in result.stderr
    assert _ids(redis_client, index_name) == {"alias.jpg", "real.jpg"}
    again = cli("load", index_name, folder, ok=False)
    assert "duplicate" not in again.stderr and "appeared earlier" not in again.stderr


def test_a_schema_file_that_is_not_utf8_is_one_error_line(cli, index_name, tmp_path) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_bytes(b"index:\n  name: x\xff\n")
    result = cli("create-index", index_name, "--schema", schema, ok=False)
    assert result.exit_code == 1
    assert "not UTF-8 text" in one_error_line(result)
