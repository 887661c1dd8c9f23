"""Build a tiny random-weight CLIP model as a sentence-transformers directory, entirely offline.

Tests need a model that embeds both text and images into one space, but the real CLIP checkpoints are
hundreds of megabytes and the test machines have no network. The weights here are random (seeded, so
runs are reproducible): the vectors mean nothing, they only have the right shape and differ by input.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

SEED = 0
# Text and image towers both end in a projection to this size, which is the embedding dimension.
PROJECTION_DIM = 16
IMAGE_SIZE = 32
# CLIP's usual context length; the tokenizer truncates to it so long texts cannot overflow positions.
MAX_TEXT_TOKENS = 77
# A few merges so the tokenizer exercises real BPE rather than only single characters.
MERGES: list[tuple[str, str]] = [
    ("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("r", "e"), ("e", "d</w>"),
]


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2's bytes_to_unicode).

    Having every byte in the vocabulary means any input text, accents and emoji included, tokenizes
    without falling back to the unknown token.
    """
    printable = {
        *range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)
    }
    symbols: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def _tokenizer() -> CLIPTokenizer:
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    # CLIP's BPE marks the last symbol of each word with "</w>", so both forms of every byte are needed.
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    for left, right in MERGES:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=MERGES, model_max_length=MAX_TEXT_TOKENS)


def _clip_model(vocab_size: int) -> CLIPModel:
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": vocab_size, "max_position_embeddings": MAX_TEXT_TOKENS,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**tower, "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=PROJECTION_DIM,
    )
    # Seeded right before the weights are drawn, so the model is the same on every call; the forked RNG
    # leaves the caller's random state as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return CLIPModel(config).eval()


def build_tiny_clip(directory: Path) -> Path:
    """Save a tiny CLIP sentence-transformers model into `directory` and return that directory.

    `SentenceTransformer(str(directory))` loads it offline; `.encode` accepts strings or PIL images and
    returns PROJECTION_DIM-long vectors for both.
    """
    tokenizer = _tokenizer()
    # Any image size is resized and centre-cropped to the square the vision tower was built for.
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model = _clip_model(vocab_size=len(tokenizer))

    # sentence-transformers' Transformer module only loads from a path, so the Hugging Face model goes
    # through a scratch directory; the module then picks get_text_features / get_image_features itself.
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch)
        processor.save_pretrained(scratch)
        SentenceTransformer(modules=[Transformer(scratch)], device="cpu").save(str(directory))
    return directory
