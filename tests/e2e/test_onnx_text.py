"""The ONNX text encoder: same vectors as sentence-transformers, no torch at query time, safe exports.

Real models throughout: the bundled all-MiniLM-L6-v2, and tiny random-weight BERT models built here
(the bundled model's tokenizer, 2 layers of width 32) to try pipelines the bundled one does not have.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ROOT
from tests.e2e.test_hostile_inputs import SPACES, WORDS, long_texts
from vsearch import models, onnx_text
from vsearch.errors import ModelError
from vsearch.models import _bundled_text_model_path, load_text_encoder
from vsearch.onnx_text import NotExportable, OnnxTextEncoder, export, export_path, model_fingerprint, text_encoder

MODEL = "all-MiniLM-L6-v2"
LONG = " ".join(["Vector search finds the nearest documents to a query embedding in a large index."] * 30)
TEXT_GROUPS = {
    "short": ["red dress", "black leather watch for men", "a"],
    "long": [LONG, LONG + " and then some more words at the end", "short one beside them"],
    "unicode": ["Ünïcödé café — naïve façade", "東京タワーの夜景", "emoji 🚀🔥👗", "Ελληνικά και русский"],
    "empty-ish": ["", " ", "\n\t", ".", "\u200b"],
    "padded batch": [f"word {'x ' * n}" for n in range(0, 40, 3)],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-home")


@pytest.fixture(scope="module")
def minilm(home: Path) -> tuple[OnnxTextEncoder, str]:
    """The bundled model exported the way a first query does it, and what that printed on stderr."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        encoder = text_encoder(MODEL, home)
    assert isinstance(encoder, OnnxTextEncoder)
    return encoder, stderr.getvalue()


@pytest.fixture(scope="module")
def reference():
    return load_text_encoder(MODEL, "cpu")


def tiny_bert(directory: Path, pooling: str, normalize: bool) -> Path:
    """A tiny random-weight BERT sentence-transformers model with the given pooling, saved in `directory`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    scratch = directory / "hf"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64)).eval().save_pretrained(scratch)
    AutoTokenizer.from_pretrained(_bundled_text_model_path()).save_pretrained(scratch)
    modules = [Transformer(str(scratch), max_seq_length=64), Pooling(32, pooling_mode=pooling)]
    modules += [Normalize()] if normalize else []
    SentenceTransformer(modules=modules, device="cpu").save(str(directory / "st"))
    return directory / "st"


def leftovers(home: Path) -> list[str]:
    folder = home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("group", TEXT_GROUPS)
def test_vectors_equal_sentence_transformers(minilm, reference, group: str) -> None:
    texts = TEXT_GROUPS[group]
    # A batch size below the text count: several batches, each padded to its own longest text.
    got = minilm[0].encode_texts(texts, batch_size=2)
    expected = reference.encode_texts(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    assert np.max(np.abs(got - expected)) < 1e-5


def test_long_text_is_truncated_like_sentence_transformers(minilm, reference) -> None:
    from tokenizers import Tokenizer

    untruncated = Tokenizer.from_file(str(Path(_bundled_text_model_path()) / "tokenizer.json"))
    untruncated.no_truncation()
    assert len(untruncated.encode(LONG).ids) > 400
    tail_differs = [LONG, LONG + " but this ending is past the truncation point"]
    got = minilm[0].encode_texts(tail_differs)
    assert np.max(np.abs(got[0] - got[1])) == 0
    assert np.max(np.abs(got - reference.encode_texts(tail_differs))) < 1e-5


@pytest.mark.parametrize("name", list(long_texts()))
def test_a_long_text_embeds_like_sentence_transformers_reading_it_all(minilm, reference, name: str) -> None:
    text = long_texts()[name]
    expected = reference.model.encode([text], convert_to_numpy=True)  # the torch model tokenizing everything
    assert np.max(np.abs(minilm[0].encode_texts([text]) - expected)) < 1e-5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(parts=st.lists(st.tuples(WORDS, SPACES), min_size=150, max_size=400))
def test_any_long_text_embeds_like_sentence_transformers(minilm, reference, monkeypatch, parts) -> None:
    monkeypatch.setattr(models, "TEXT_CHARS_PER_TOKEN", 1)  # from a tiny prefix: short texts go through the doubling
    text = "".join(word + space for word, space in parts)
    expected = reference.model.encode([text], convert_to_numpy=True)
    assert np.max(np.abs(minilm[0].encode_texts([text]) - expected)) < 1e-5


def test_a_huge_query_keeps_memory_bounded(minilm, home: Path) -> None:
    # 12 MB of prose: tokenized whole, its tokens and offsets took 1.7 GB more than the loaded model.
    script = (
        "import resource, sys; from pathlib import Path; from vsearch.onnx_text import text_encoder\n"
        f"encoder = text_encoder({MODEL!r}, Path(sys.argv[1])); encoder.encode_texts(['warm up'])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "encoder.encode_texts([('The quick brown fox jumps over the lazy dog. ' * 270_000)[:12_000_000]])\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True, env=env,
                          check=True, timeout=120)
    assert int(done.stdout) < 150  # MB above the model's own footprint: the text itself is 12 MB (24 as str)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_any_text_embeds_like_sentence_transformers(minilm, reference, texts: list[str]) -> None:
    assert np.max(np.abs(minilm[0].encode_texts(texts) - reference.encode_texts(texts))) < 1e-5


def test_first_use_exports_once_and_says_so(minilm, home: Path) -> None:
    encoder, stderr = minilm
    assert stderr.startswith("vsearch: preparing a fast query model")
    assert len(stderr.splitlines()) == 1
    assert leftovers(home) == [export_path(home, MODEL).name]
    assert (encoder.name, encoder.dim, encoder.modalities) == (MODEL, 384, frozenset({"text"}))
    assert encoder.encode_texts([]).shape == (0, 384)
    with pytest.raises(ModelError, match="cannot embed images"):
        encoder.encode_images([])


def test_both_names_of_the_bundled_model_share_one_export(minilm, home: Path) -> None:
    other = f"sentence-transformers/{MODEL}"
    assert model_fingerprint(other) == model_fingerprint(MODEL)
    encoder = text_encoder(other, home)
    assert encoder is not None and encoder.name == other
    assert leftovers(home) == [export_path(home, MODEL).name]


def test_query_in_a_fresh_process_needs_no_torch(minilm, reference, home: Path) -> None:
    script = (
        "import json, sys; from pathlib import Path; from vsearch.onnx_text import text_encoder\n"
        f"vector = text_encoder({MODEL!r}, Path(sys.argv[1])).encode_texts(['red dress'])[0]\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'vector': vector.tolist()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True, env=env,
                          check=True)
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert done.stderr == ""  # the export was already there: nothing to prepare, nothing to say
    assert np.max(np.abs(np.array(result["vector"]) - reference.encode_texts(["red dress"])[0])) < 1e-5


def test_fingerprint_follows_the_model_files(tmp_path: Path) -> None:
    # A copy of the bundled model made of links, so that one config file can differ without copying weights.
    source = Path(_bundled_text_model_path())
    copy = tmp_path / "model"
    for path in source.rglob("*"):
        if path.is_file():
            (copy / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(source)).symlink_to(path)
    assert model_fingerprint(str(copy)) == model_fingerprint(MODEL)
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((source / "config.json").read_text().replace('"gelu"', '"relu"'))
    assert model_fingerprint(str(copy)) != model_fingerprint(MODEL)
    with pytest.raises(ModelError, match="not a local model directory"):
        model_fingerprint(str(tmp_path / "absent"))


def test_mean_pooling_without_normalize_exports_and_matches(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = tiny_bert(tmp_path, "mean", normalize=False)
    encoder = text_encoder(str(model), tmp_path / "home")
    assert isinstance(encoder, OnnxTextEncoder)
    texts = TEXT_GROUPS["padded batch"] + TEXT_GROUPS["unicode"]
    expected = SentenceTransformer(str(model), device="cpu").encode(texts)
    assert abs(float(np.linalg.norm(expected[0])) - 1) > 0.01  # really not normalised
    assert np.max(np.abs(encoder.encode_texts(texts, batch_size=4) - expected)) < 1e-5


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_other_pooling_is_refused_and_falls_back(tmp_path: Path, pooling: str) -> None:
    model = tiny_bert(tmp_path, pooling, normalize=True)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert text_encoder(str(model), tmp_path / "home") is None
    assert stderr.getvalue() == ""
    with pytest.raises(NotExportable, match=f"pools by {pooling}, not by the mean"):
        export(str(model), tmp_path / "home" / "models" / "x")
    assert leftovers(tmp_path / "home") == []


def test_clip_is_refused(tmp_path: Path) -> None:
    from tests.e2e.tiny_clip import build_tiny_clip

    model = build_tiny_clip(tmp_path / "clip")
    assert text_encoder(str(model), tmp_path / "home") is None
    assert leftovers(tmp_path / "home") == []


def test_failed_export_leaves_nothing_and_falls_back(tmp_path: Path) -> None:
    model = tiny_bert(tmp_path, "mean", normalize=True)
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert text_encoder(str(model), tmp_path / "home") is None
    preparing, warning = stderr.getvalue().splitlines()
    assert preparing.startswith("vsearch: preparing a fast query model")
    assert warning.startswith("vsearch: warning: cannot load model") and warning.endswith("using sentence-transformers")
    assert leftovers(tmp_path / "home") == []


def test_export_that_disagrees_is_not_kept(tmp_path: Path, monkeypatch) -> None:
    model = tiny_bert(tmp_path, "mean", normalize=True)
    monkeypatch.setattr(onnx_text, "AGREEMENT", 1.5)  # no cosine reaches it: every export disagrees
    dest = export_path(tmp_path / "home", str(model))
    with pytest.raises(ModelError, match="does not reproduce sentence-transformers"):
        export(str(model), dest)
    assert leftovers(tmp_path / "home") == []


def test_abandoned_scratch_is_cleaned_and_concurrent_exports_agree(tmp_path: Path) -> None:
    model = tiny_bert(tmp_path, "mean", normalize=True)
    home = tmp_path / "home"
    dest = export_path(home, str(model))
    dest.parent.mkdir(parents=True)
    # What an export killed midway leaves: a scratch folder named after a process that no longer exists.
    (dest.parent / f".{dest.name}.999999999-deadbeef.tmp").mkdir()
    script = ("import sys; from pathlib import Path; from vsearch.onnx_text import export; "
              "export(sys.argv[1], Path(sys.argv[2]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(model), str(dest)], env=env, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    assert [run.wait() for run in runs] == [0, 0], [run.stderr.read() for run in runs if run.stderr]
    assert leftovers(home) == [dest.name]
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx", "tokenizer.json", "vsearch-onnx.json",
                                                     "vsearch-verified.json"]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    """The same size and, by hand, the same mtime: a weight changed in place still loads, and embeds wrongly."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0x40]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


DAMAGE = {
    "model truncated": lambda dest: truncate(dest / "model.onnx"),
    "model changed in place": lambda dest: flip_a_byte(dest / "model.onnx"),
    "model missing": lambda dest: (dest / "model.onnx").unlink(),
    "tokenizer truncated": lambda dest: truncate(dest / "tokenizer.json"),
    "metadata truncated": lambda dest: truncate(dest / "vsearch-onnx.json"),
    "metadata not an object": lambda dest: (dest / "vsearch-onnx.json").write_text("[1, 2]"),
}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model and a good export of it, to copy and damage."""
    folder = tmp_path_factory.mktemp("tiny")
    model = tiny_bert(folder, "mean", normalize=True)
    dest = export(str(model), export_path(folder / "home", str(model)))
    return model, dest


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_export_is_made_again_with_one_warning(tiny_export, tmp_path: Path, damage: str) -> None:
    from sentence_transformers import SentenceTransformer

    model, good = tiny_export
    home = tmp_path / "home"
    dest = export_path(home, str(model))
    shutil.copytree(good, dest, copy_function=shutil.copy)  # a copy: new inodes, as after a backup's restore
    DAMAGE[damage](dest)
    text_encoder.cache_clear()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        encoder = text_encoder(str(model), home)
    (line,) = stderr.getvalue().splitlines()
    assert line.startswith(f"vsearch: warning: the ONNX export in {dest} is damaged (") and "Traceback" not in line
    assert isinstance(encoder, OnnxTextEncoder)
    texts = TEXT_GROUPS["short"] + TEXT_GROUPS["unicode"]
    expected = SentenceTransformer(str(model), device="cpu").encode(texts)
    assert np.max(np.abs(encoder.encode_texts(texts) - expected)) < 1e-5
    assert leftovers(home) == [dest.name]
    text_encoder.cache_clear()
    with contextlib.redirect_stderr(stderr := io.StringIO()):
        assert text_encoder(str(model), home) is not None
    assert stderr.getvalue() == ""  # made again for good


def test_a_damaged_export_that_cannot_be_made_again_falls_back(tiny_export, tmp_path: Path, monkeypatch) -> None:
    model, good = tiny_export
    home = tmp_path / "home"
    dest = export_path(home, str(model))
    shutil.copytree(good, dest)
    truncate(dest / "model.onnx")
    monkeypatch.setattr(onnx_text, "AGREEMENT", 1.5)  # the new export disagrees, so it is not kept
    text_encoder.cache_clear()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert text_encoder(str(model), home) is None
    damaged, fallback = stderr.getvalue().splitlines()
    assert damaged.startswith("vsearch: warning: the ONNX export in") and "Traceback" not in stderr.getvalue()
    assert fallback.startswith("vsearch: warning:") and fallback.endswith("using sentence-transformers")
    assert leftovers(home) == []


def test_unwritable_home_falls_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where vsearch's data directory should be")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert text_encoder(MODEL, home) is None
    warning = stderr.getvalue().splitlines()[-1]
    assert warning.startswith(f"vsearch: warning: cannot write the ONNX export of '{MODEL}'")
    assert warning.endswith("using sentence-transformers")
