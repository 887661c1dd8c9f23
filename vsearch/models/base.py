"""What every encoder shares: the Encoder protocol, the device rule, quiet model libraries, the text budget."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from vsearch.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# A first guess at how much text holds a model's token budget; model_reads doubles it when it falls short.
TEXT_CHARS_PER_TOKEN = 8
# Characters every tokenizer splits words at. Not all of str.isspace(): BERT's normaliser deletes
# some control characters (\x0b, \x1c...) that Python calls whitespace, joining the words around them.
_SPLITS = " \t\n\r"


class Purpose(Enum):
    """What an encoder is for, which decides the backend of a text model on the CPU."""

    BULK = "bulk"  # many texts: sentence-transformers, measured faster for big batches
    FEW = "few"  # a handful (`similarity`, a reload that embeds a few changed records): the ONNX export if made
    QUERY = "query"  # query texts: the ONNX export, made on first use (~20 s once) since every later query gains


class Encoder(Protocol):
    """What the rest of vsearch needs from a model."""

    name: str
    dim: int
    modalities: frozenset[str]  # "text", "image"

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray: ...


def quiet_model_libraries() -> None:
    """Keep stdout for data: no download bars, no 'Loading weights' chatter, no hub calls."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def device_for(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' asked for, but torch sees no CUDA GPU here: use --device cpu")
    return device


def text_model_reads(text: str, budget: int, token_ends: Callable[[str], Sequence[int]]) -> str:
    """The start of `text` that holds the first `budget` tokens: the same vector, without tokenizing (and
    holding the tokens of) a whole 50 MB text the model truncates at a few hundred tokens.

    Tokenizers split words at whitespace and never look across it, so the tokens that end before a
    whitespace run are the text's own first tokens. Take a prefix, and if the tokens ending before its
    last whitespace run (`token_ends` gives where each token of a text ends) fill the budget, that much
    text is enough; else double the prefix.
    """
    chars = max(budget, 1) * TEXT_CHARS_PER_TOKEN
    while chars < len(text):
        prefix = text[:chars]
        cut = len(prefix[:max(prefix.rfind(c) for c in _SPLITS) + 1].rstrip(_SPLITS))
        if cut > 0 and sum(1 for end in token_ends(prefix) if end <= cut) >= budget:
            return text[:cut]
        chars *= 2
    return text


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
