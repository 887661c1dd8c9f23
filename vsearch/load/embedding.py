"""The embedding step of a load: only the candidates that need a vector, on the backend that suits the run.

Encoders load on first use, so a reload with nothing new to embed never loads a model. A record whose image
cannot be read is rejected here; the rest of its batch goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from vsearch.config import Settings
from vsearch.errors import InputError, UsageError, VsearchError
from vsearch.load.diff import Candidate
from vsearch.load.plan import dimension_message
from vsearch.models import (Encoder, EncoderSource, Purpose, needs_query_export, open_images,
                            prepare_image_query_encoder, prepare_query_encoder)
from vsearch.passages import Passage, PassageSettings, count_tokens, load_tokenizer, settings_for_model, split_passages
from vsearch.schema import IndexSpec, VectorField

ALIKE_TRACKED = 100_000  # image vectors compared for identical ones; past that memory matters more


class Embedder:
    """The model step of one run (~160 lines, on purpose: the encoders it has loaded, the identical-image count and
    the passage and cut-text counts are state that lives as long as the run; each method is short)."""

    def __init__(self, target: IndexSpec, settings: Settings, source: EncoderSource,
                 model_for: Callable[[VectorField], str], override_for: Callable[[VectorField], str | None],
                 reject: Callable[..., None], warn: Callable[[str], None], dry_run: bool = False) -> None:
        self.target, self.settings, self.source = target, settings, source
        self.model_for, self.override_for = model_for, override_for
        self.reject, self.warn, self.dry_run = reject, warn, dry_run
        self.encoders: dict[str, Encoder] = {}
        self.incremental: bool | None = None  # set by the run from its first batch that needs a model
        self.vectors_seen: dict[bytes, tuple[str, str]] = {}  # an image vector's digest -> (its file's, its id)
        self.alike = 0
        self.passages = 0  # passages embedded
        self.cut = 0  # texts embedded without passages that run past the model's window
        self.alike_example: tuple[str, str] | None = None

    def embed(self, candidates: Sequence[Candidate]) -> None:
        """Compute the missing vectors; a record whose image cannot be read is rejected, the rest go on."""
        for vector in self.target.vectors:
            wanting = [c for c in candidates if vector.name in c.missing and not c.rejected]
            for c in wanting:
                c.embedded = True
            given = [c for c in wanting if isinstance(c.contents[vector.name], np.ndarray)]
            for c in given:
                c.vectors[vector.name] = c.contents[vector.name]
            wanting = [c for c in wanting if not isinstance(c.contents[vector.name], np.ndarray)]
            for c in wanting:
                c.modelled = True
            if not wanting or self.dry_run:
                for c in wanting:
                    c.vectors[vector.name] = np.zeros(vector.dim, dtype=np.float32)  # never written
                continue
            encoder = self.encoder(vector)
            if vector.embeds == "image":
                self._embed_images(encoder, vector, wanting)
            elif vector.passages is not None:
                self._embed_passages(encoder, vector, wanting)
            else:
                texts = [c.contents[vector.name] for c in wanting]
                self.cut += self._count_cut(vector, texts)
                for c, vec in zip(wanting, encoder.encode_texts(texts)):
                    c.vectors[vector.name] = vec

    def _embed_passages(self, encoder: Encoder, vector: VectorField, wanting: list[Candidate]) -> None:
        """Each text split into passages that fit the model's window, all embedded in one call: the candidate's
        vector is one row a passage, in order, with the passages' offsets beside it."""
        texts: list[str] = []
        kept: list[tuple[Candidate, int]] = []
        for c in wanting:
            passages = self.passages_of(vector, c.contents[vector.name])
            if not passages:
                c.rejected = True
                self.reject(c.record, "nothing to embed: the text has no words the model reads")
                continue
            c.spans[vector.name] = [(p.start, p.end) for p in passages]
            texts += [p.text for p in passages]
            kept.append((c, len(passages)))
        if not texts:
            return
        vectors = encoder.encode_texts(texts)
        self.passages += len(texts)
        start = 0
        for c, count in kept:
            c.vectors[vector.name] = vectors[start:start + count]
            start += count

    def passages_of(self, vector: VectorField, text: str) -> list[Passage]:
        settings = vector.passages or PassageSettings()
        return split_passages(text, load_tokenizer(self.model_for(vector)), settings.max_tokens, settings.overlap)

    def add_spans(self, candidates: Sequence[Candidate]) -> None:
        """The passage offsets of candidates whose passage vectors were reused from Redis (only their other fields
        changed): the same text and settings (their fingerprint says so) split the same way, with no model."""
        for vector in self.target.vectors:
            if vector.passages is None:
                continue
            for c in candidates:
                # A vector given whole (--vector-column) has no text, and so no passages.
                if (vector.name in c.vectors and vector.name not in c.spans
                        and isinstance(c.contents.get(vector.name), str)):
                    c.spans[vector.name] = [(p.start, p.end) for p in self.passages_of(vector, c.contents[vector.name])]

    def _count_cut(self, vector: VectorField, texts: Sequence[str]) -> int:
        """How many texts run past what the model reads (embedded without passages: their ends are not in the
        vector). Counted with the model's tokenizer; 0 where it has none on this machine."""
        try:
            tokenizer, limit = load_tokenizer(self.model_for(vector)), settings_for_model(self.model_for(vector)).max_tokens
        except VsearchError:
            return 0
        return sum(1 for text in texts if len(text) > limit and count_tokens(text, tokenizer) > limit)

    def _embed_images(self, encoder: Encoder, vector: VectorField, wanting: list[Candidate]) -> None:
        images, kept = [], []
        for c, image in zip(wanting, open_images([c.contents[vector.name] for c in wanting])):
            if isinstance(image, InputError):
                c.rejected = True
                self.reject(c.record, str(image))
            else:
                images.append(image)
                kept.append(c)
        if kept:
            for c, vec in zip(kept, encoder.encode_images(images)):
                c.vectors[vector.name] = vec
                self._note_alike(c, vector.name, vec)

    def encoder(self, vector: VectorField) -> Encoder:
        if vector.name not in self.encoders:
            # A few texts: the torch-free ONNX export (where made) starts in ~0.1 s against ~5 s for torch, which
            # would dominate a nightly reload; a bulk load keeps sentence-transformers, faster for big batches.
            purpose = Purpose.FEW if self.incremental else Purpose.BULK
            encoder = self.source.encoder(vector, self.override_for(vector), self.settings, purpose)
            if encoder.dim != vector.dim:
                raise UsageError(dimension_message(self.target, vector, encoder.name, encoder.dim))
            self.encoders[vector.name] = encoder
        return self.encoders[vector.name]

    def _note_alike(self, candidate: Candidate, name: str, vec: np.ndarray) -> None:
        """Count images of different files that embed identically: blank or transparent ones look alike to the
        model, and a folder of them would answer every query with all of them."""
        if len(self.vectors_seen) >= ALIKE_TRACKED:
            return
        key = hashlib.blake2b(np.asarray(vec, dtype="<f4").tobytes(), digest_size=16).digest()
        first = self.vectors_seen.setdefault(key, (candidate.fingerprint[name], candidate.id))
        if first[0] != candidate.fingerprint[name]:
            self.alike += 1
            self.alike_example = self.alike_example or (first[1], candidate.id)

    def warn_alike(self) -> None:
        if self.alike:
            a, b = self.alike_example or ("", "")
            self.warn(f"{self.alike} image(s) embedded exactly like another, different file (e.g. {a!r} and {b!r}): "
                      "blank, one-colour or transparent images all look alike to the image model")

    def prepare_query_model(self) -> None:
        """After a load that embedded in this process, export its models for queries where not yet: the first text
        query would otherwise spend ~20 s on it, in the middle of the user's query (measured 23 s); an image query
        would import torch (~2 s each)."""
        if self.dry_run or not self.source.local:
            return
        for vector in self.target.vectors:
            if vector.name not in self.encoders:
                continue
            name = self.model_for(vector)
            # A model the export cannot reproduce (CLIP) answers queries through torch, as before.
            if not needs_query_export(name, self.settings.home, vector.embeds):
                continue
            kind = "image" if vector.embeds == "image" else "query"
            self.warn(f"preparing the fast {kind} model for '{name}' (once, ~20 s), so that queries start in "
                      "under a second")
            try:
                if vector.embeds == "image":
                    prepare_image_query_encoder(name, self.settings.home)
                else:
                    prepare_query_encoder(name, self.settings.home)
            except VsearchError as exc:  # not exportable: queries use torch, only slower to start
                self.warn(f"no fast {kind} model: {exc}")
