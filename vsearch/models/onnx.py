"""A torch-free text encoder: a sentence-transformers model exported once to ONNX, then run with onnxruntime.

Importing torch and sentence-transformers takes ~5 s on the target machines, which is most of what a
one-query command costs. A model whose pipeline is Transformer + mean Pooling [+ Normalize] is exported
once (that needs torch) into vsearch's data directory, checked against sentence-transformers, and from
then on embeds with only onnxruntime, tokenizers and numpy. Any other model (CLS pooling, CLIP, extra
Dense layers, ...) is "not exportable" and the caller keeps using sentence-transformers.

Only the exporter imports torch, and only inside `export`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vsearch.errors import ModelError, VsearchError
from vsearch.models.base import Encoder, first_line, quiet_model_libraries, text_model_reads
from vsearch.models.exports import META_FILE, make_export, sha256
from vsearch.models.names import model_dir, model_fingerprint

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


# Bumped whenever the exported files or the wrapper change, so that older exports are simply not found.
# 2: the metadata holds each file's size and sha256.
EXPORT_FORMAT = 2
OPSET = 17
# An export is kept only if every check text embeds this close to sentence-transformers (cosine).
AGREEMENT = 0.9999
# Input names a BERT-like model may take, in the order the ONNX graph declares them.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CHECKED_FILES = (MODEL_FILE, TOKENIZER_FILE)
# Texts the export must agree on: short, unicode, nearly empty, and one far past the usual 256-token
# limit, so that truncation is checked too. They run as one padded batch.
CHECK_TEXTS = (
    "red dress",
    "A man is playing a guitar on a stage in front of a large crowd.",
    "Ünïcödé café — naïve façade, 東京タワー, emoji 🚀🔥",
    " ",
    " ".join(["The quick brown fox jumps over the lazy dog while the cat watches from the fence."] * 40),
)


class NotExportable(ModelError):
    """The model's pipeline is not one the ONNX export reproduces; use sentence-transformers instead."""


def export_path(home: Path, model_name_or_path: str) -> Path:
    """Where the export of this model lives under vsearch's data directory."""
    return home / "models" / f"onnx{EXPORT_FORMAT}-{model_fingerprint(model_name_or_path)[:32]}"


def exported(home: Path, model_name_or_path: str) -> bool:
    """Whether the model's export is already made (by `vsearch models prepare`, a first load or a text query)."""
    try:
        return export_path(home, model_name_or_path).is_dir()
    except VsearchError:  # a model that cannot be found or read has no export
        return False


def exportable(model_name_or_path: str) -> bool:
    """Whether this module can export the model: a local sentence-transformers pipeline it reproduces."""
    directory = model_dir(model_name_or_path)
    return directory is not None and unsupported_reason(directory) is None


def unsupported_reason(directory: Path) -> str | None:
    """Why the model in `directory` cannot be exported, read off its config files (no torch), or None if it can."""
    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return f"its pipeline is {' + '.join(kinds)}, not Transformer + Pooling [+ Normalize]"
        if modules[0].get("path", "") != "":
            return "its Transformer module is not at the top of the model directory"
        pooling = json.loads((directory / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        if _pooling_modes(pooling) != ["mean"]:
            return f"it pools by {'+'.join(_pooling_modes(pooling)) or 'nothing'}, not by the mean"
        transformer = _transformer_config(directory)
        if transformer.get("do_lower_case"):
            return "it lowercases its input"
        if not (directory / TOKENIZER_FILE).is_file():
            return f"it has no {TOKENIZER_FILE} (a fast tokenizer)"
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"its sentence-transformers config cannot be read ({exc})"
    return None


def _pooling_modes(config: dict[str, Any]) -> list[str]:
    """The pooling modes a Pooling config turns on, in the new (`pooling_mode`) or legacy (flags) layout."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        return [mode] if isinstance(mode, str) else list(mode)
    return [key.removeprefix("pooling_mode_").removesuffix("_tokens")
            for key, on in config.items() if key.startswith("pooling_mode_") and on]


def _transformer_config(directory: Path) -> dict[str, Any]:
    path = directory / "sentence_bert_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export(model_name_or_path: str, dest: Path) -> Path:
    """Export the model to ONNX in `dest` (made atomically), check it against sentence-transformers, return `dest`.

    The files are written into a private temporary sibling of `dest` and renamed into place only once
    checked, so a failed or killed export leaves no `dest`, and of two concurrent exports one wins and the
    other's work is dropped. Raises NotExportable for a model this cannot reproduce.
    """
    directory = model_dir(model_name_or_path)
    if directory is None:
        raise NotExportable(f"model '{model_name_or_path}' is not a local model directory")
    reason = unsupported_reason(directory)
    if reason:
        raise NotExportable(f"model '{model_name_or_path}' cannot be exported to ONNX: {reason}")
    make_export(model_name_or_path, dest, CHECKED_FILES,
                lambda folder: _write_export(model_name_or_path, directory, folder))
    for older in range(1, EXPORT_FORMAT):  # what an older vsearch exported of this model, now never read
        shutil.rmtree(dest.parent / f"onnx{older}-{dest.name.split('-', 1)[1]}", ignore_errors=True)
    return dest


def _write_export(name: str, directory: Path, out: Path) -> None:

    quiet_model_libraries()
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(directory), device="cpu")
    except Exception as exc:  # the library raises OSError, ValueError, safetensors errors... for a broken model
        raise ModelError(f"cannot load model '{name}' to export it: {first_line(exc)}") from exc
    transformer = model[0]
    tokenizer = transformer.tokenizer
    max_length = int(model.max_seq_length or tokenizer.model_max_length)
    inputs = [n for n in INPUT_NAMES if n in tokenizer.model_input_names]
    normalize = len(model) == 3
    wrapper = _MeanPooled(transformer.auto_model, inputs, normalize).eval()
    # A padded sample: traced on a batch without padding, transformers may leave the attention mask out.
    sample = tokenizer(["a b c", "a"], padding=True, return_tensors="pt")
    # The tracer's warnings are about branches that are constant for this model (checked below): not news.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, tuple(sample[n] for n in inputs), str(out / MODEL_FILE), dynamo=False, opset_version=OPSET,
            input_names=inputs, output_names=["sentence_embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in inputs}, "sentence_embedding": {0: "batch"}},
        )
    # The backend tokenizer is exactly what sentence-transformers ran; its truncation and padding are
    # set again at load time from the metadata, so whatever state it was saved in does not matter.
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    meta = {
        "model": name, "source": str(directory), "dim": int(model.get_embedding_dimension() or 0),
        "max_length": max_length, "pad_id": int(tokenizer.pad_token_id), "pad_token": str(tokenizer.pad_token),
        "inputs": inputs, "normalize": normalize,
        "files": {name: {"size": (out / name).stat().st_size, "sha256": sha256(out / name)} for name in CHECKED_FILES},
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    import numpy as np

    expected = np.asarray(model.encode(list(CHECK_TEXTS), convert_to_numpy=True), dtype=np.float32)
    got = OnnxTextEncoder(out).encode_texts(CHECK_TEXTS)
    cosine = np.sum(expected * got, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1))
    if got.shape != expected.shape or not np.all(cosine > AGREEMENT):
        raise ModelError(f"the ONNX export of '{name}' does not reproduce sentence-transformers "
                         f"(lowest cosine {float(np.min(cosine)):.6f}): not kept")


def _MeanPooled(model: Any, inputs: list[str], normalize: bool) -> Any:
    """The transformer followed by sentence-transformers' mean pooling (and normalisation), as one module."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = dict(zip(inputs, tensors))
            # Keyword arguments: transformers' forward takes more positional parameters than these.
            tokens = self.model(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled

    return MeanPooled()


class OnnxTextEncoder:
    """Embeds texts with an exported model; imports only onnxruntime, tokenizers and numpy."""

    modalities = frozenset({"text"})

    def __init__(self, export_dir: Path, name: str | None = None, threads: int | None = None) -> None:
        try:
            self._load(export_dir, name, threads)
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for a file they cannot read
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the ONNX export in {export_dir}: {reason}") from exc

    def _load(self, export_dir: Path, name: str | None, threads: int | None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        meta = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
        # Several names can mean one model (the bundled one has two): report the one asked for.
        self.name: str = name or meta["model"]
        self.dim: int = int(meta["dim"])
        self.inputs: list[str] = list(meta["inputs"])
        self.tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(max_length=int(meta["max_length"]))
        self.budget = int(meta["max_length"]) - self.tokenizer.num_special_tokens_to_add(False)
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        self.session = onnxruntime.InferenceSession(str(export_dir / MODEL_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, batched by length like sentence-transformers: far less padding on mixed texts.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            encodings = self.tokenizer.encode_batch([self.model_reads(texts[i]) for i in chosen])
            arrays = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            (vectors,) = self.session.run(None, {name: arrays[name] for name in self.inputs})
            out[chosen] = vectors
        return out

    def model_reads(self, text: str) -> str:
        """The start of `text` that holds every token the model reads, as sentence-transformers' encoder takes it
        (`models.base.text_model_reads`): a 12 MB query is not tokenized whole to keep its first 256 tokens."""
        def token_ends(prefix: str) -> list[int]:
            encoding = self.tokenizer.encode(prefix, add_special_tokens=False)
            return [end for (_, end), real in zip(encoding.offsets, encoding.attention_mask) if real]

        return text_model_reads(text, self.budget, token_ends)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        raise ModelError(f"text model '{self.name}' cannot embed images: pass a CLIP model for that")


def default_threads() -> int:
    """One intra-op thread per core this process may use (measured in bench/query_latency.py)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@lru_cache(maxsize=8)
def text_encoder(name: str, home: Path) -> Encoder | None:
    """The ONNX encoder for a text model, exporting it first if needed; None if the model is not exportable.

    The first use of a model exports it, which loads torch (seconds, once); later processes only load
    the export.
    """
    if not exportable(name):
        return None
    dest = export_path(home, name)
    if not dest.exists():
        # An export happens once per model, so this line shows once; it explains the pause.
        print("vsearch: preparing a fast query model (once per model)…", file=sys.stderr)
    try:
        return OnnxTextEncoder(export(name, dest), name)  # export: checks an existing export, remakes a damaged one
    except ModelError as exc:
        # sentence-transformers still runs the model, only slower: say why once, then fall back.
        print(f"vsearch: warning: {exc}; using sentence-transformers", file=sys.stderr)
        return None
