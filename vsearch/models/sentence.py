"""Text (and CLIP) encoders through sentence-transformers; torch is imported only when one is made."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from vsearch.config import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL
from vsearch.errors import ModelError
from vsearch.models.base import Encoder, device_for, first_line, quiet_model_libraries, text_model_reads
from vsearch.models.names import BUNDLED_TEXT_MODELS, bundled_text_model_path

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


class SentenceTransformerEncoder:
    """Any sentence-transformers model: text models, and CLIP models that embed images and text alike."""

    def __init__(self, name: str, device: str | None = None) -> None:
        quiet_model_libraries()
        from sentence_transformers import SentenceTransformer

        source = bundled_text_model_path() if name in BUNDLED_TEXT_MODELS else name
        try:
            self.model = SentenceTransformer(source, device=device_for(device))
        except ModelError:
            raise
        except Exception as exc:  # the library raises OSError, ValueError, HF errors... for a bad name
            raise ModelError(
                f"cannot load model '{name}': {first_line(exc)} (models load offline: pass a local directory "
                "or a model installed with its package)"
            ) from exc
        self.name = name
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.modalities = frozenset(str(m) for m in self.model.modalities)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if "text" not in self.modalities:
            raise ModelError(f"model '{self.name}' cannot embed text")
        import numpy as np

        return np.asarray(self.model.encode([self.model_reads(t) for t in texts], batch_size=batch_size,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def model_reads(self, text: str) -> str:
        """The start of `text` that holds every token the model reads (see `text_model_reads`); the whole text
        for a model whose tokenizer gives no offsets."""
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if not limit or not getattr(tokenizer, "is_fast", False):
            return text

        def token_ends(prefix: str) -> list[int]:
            offsets = tokenizer(prefix, add_special_tokens=False,  # type: ignore[misc]
                                return_offsets_mapping=True)["offset_mapping"]
            return [end for _, end in offsets]

        budget = limit - tokenizer.num_special_tokens_to_add(pair=False)  # type: ignore[union-attr]
        return text_model_reads(text, budget, token_ends)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        if "image" not in self.modalities:
            raise ModelError(f"model '{self.name}' cannot embed images: pass a CLIP model or '{DEFAULT_IMAGE_MODEL}'")
        import numpy as np

        return np.asarray(self.model.encode(list(images), batch_size=batch_size, convert_to_numpy=True,
                                            show_progress_bar=False), dtype=np.float32)


@lru_cache(maxsize=8)
def load_text_encoder(name: str = DEFAULT_TEXT_MODEL, device: str | None = None) -> Encoder:
    return SentenceTransformerEncoder(name, device)
